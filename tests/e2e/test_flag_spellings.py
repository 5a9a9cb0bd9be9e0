"""The same commands in Terraform's single-dash spelling and in kvmnet's double-dash
spelling give the same results, against real bridges in a namespace."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.e2e.helpers import write_config

pytestmark = [pytest.mark.real, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]

CONFIG = """
variable "mtu" {{
  type    = number
  default = 1500
}}

provider "iproute" {{
  netns = "{ns}"
}}

resource "bridge" "a" {{
  name = "br-spell"
  mtu  = var.mtu
}}
"""


def kvmnet(cwd, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(cwd.parent / "cache"))
    env.pop("KVMNET_STATE", None)
    return subprocess.run([sys.executable, "-m", "kvmnet", *args], capture_output=True, text=True,
                          env=env, cwd=str(cwd), input="", timeout=120)


def _run_all(cfg, dash: str):
    """validate, plan -out, show -json, apply PLANFILE, plan with a var (changes: exit 2),
    apply with the var, state list, destroy: what each printed and returned."""
    d = dash
    state = str(cfg / "s.db")
    steps = [
        [f"{d}chdir={cfg}", "validate"],
        ["plan", f"{d}state={state}", f"{d}out=p.bin", f"{d}no-color"],
        ["show", f"{d}json", "p.bin"],
        ["apply", f"{d}state", state, "p.bin"],
        ["plan", f"{d}var", "mtu=1400", f"{d}state={state}", f"{d}detailed-exitcode"],
        ["apply", f"{d}var=mtu=1400", f"{d}state={state}", f"{d}auto-approve", f"{d}lock-timeout=5s"],
        ["state", "list", f"{d}state={state}"],
        ["destroy", f"{d}state={state}", f"{d}auto-approve"],
    ]
    out = []
    for args in steps:
        cp = kvmnet(cfg, *args)
        out.append((cp.returncode, cp.stdout, cp.stderr))
    return out


def test_both_spellings_same_results(ns, tmp_path):
    results = {}
    for dash in ("-", "--"):
        cfg = tmp_path / f"cfg{len(dash)}"
        write_config(cfg, CONFIG.format(ns=ns))
        results[dash] = _run_all(cfg, dash)
    single, double = results["-"], results["--"]
    assert [r[0] for r in double] == [0, 0, 0, 0, 2, 0, 0, 0], double
    assert [r[0] for r in single] == [r[0] for r in double], single
    # outputs agree, once the per-run directory names and plan timestamps are taken out
    stamp = re.compile(r'"timestamp": ?"[^"]*"')
    for (_, out1, err1), (_, out2, err2) in zip(single, double):
        assert stamp.sub("T", out1.replace("cfg1", "cfgN")) == stamp.sub("T", out2.replace("cfg2", "cfgN"))
        assert err1.replace("cfg1", "cfgN") == err2.replace("cfg2", "cfgN")
    plan_doc = json.loads(double[2][1])
    assert any(c["address"] == "bridge.a" for c in plan_doc["resource_changes"])
    assert "bridge.a" in double[6][1]


def test_bad_duration_is_one_error(tmp_path):
    write_config(tmp_path / "c", 'variable "x" {\n  default = 1\n}\n')
    cp = kvmnet(tmp_path / "c", "validate", "-lock-timeout=soon")
    assert cp.returncode == 1
    assert cp.stderr.startswith("Error:") and "is not a duration" in cp.stderr
    assert "Traceback" not in cp.stderr
