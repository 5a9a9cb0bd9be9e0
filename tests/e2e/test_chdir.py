"""``-chdir=DIR`` (and kvmnet's ``-C DIR`` / ``--chdir DIR``) changes into DIR first,
as Terraform does: the config, the default state, ``-var-file``, ``-out`` and
``apply PLANFILE`` are all read inside DIR. A config of variables and outputs only, so
no provider is started and no root is needed."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.helpers import write_config

CONFIG = """
variable "n" {
  type    = number
  default = 1
}

output "n" {
  value = var.n
}
"""


def kvmnet(cwd, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(cwd / ".cache"))
    env.pop("KVMNET_STATE", None)
    return subprocess.run([sys.executable, "-m", "kvmnet", *args], capture_output=True, text=True,
                          env=env, cwd=str(cwd), input="", timeout=60)


@pytest.mark.parametrize("chdir", [["-chdir=host"], ["-C", "host"], ["--chdir", "host"], ["--chdir=host"]])
def test_relative_paths_are_read_inside_dir(tmp_path, chdir):
    write_config(tmp_path / "host", CONFIG)
    (tmp_path / "host" / "prod.tfvars").write_text("n = 3\n")
    cp = kvmnet(tmp_path, *chdir, "plan", "-var-file=prod.tfvars", "-out=p.bin")
    assert cp.returncode == 0, cp.stderr
    assert (tmp_path / "host" / "p.bin").exists() and not (tmp_path / "p.bin").exists()
    assert "kvmnet -C host apply p.bin" in cp.stdout        # the suggested command works as printed
    cp = kvmnet(tmp_path, *chdir, "apply", "p.bin")
    assert cp.returncode == 0, cp.stderr
    assert (tmp_path / "host" / "kvmnet.state.db").exists()
    cp = kvmnet(tmp_path, *chdir, "output", "-json")
    assert cp.returncode == 0 and json.loads(cp.stdout) == {"n": {"sensitive": False, "type": "number",
                                                                "value": 3}}, cp.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["host"]


def test_chdir_after_the_command_and_with_relative_state(tmp_path):
    """``-C`` may stand after the command; ``-state`` is relative to DIR too."""
    write_config(tmp_path / "host", CONFIG)
    cp = kvmnet(tmp_path, "apply", "-auto-approve", "-state=s.db", "-C", "host")
    assert cp.returncode == 0, cp.stderr
    assert (tmp_path / "host" / "s.db").exists() and not (tmp_path / "s.db").exists()


def test_errors_name_files_relative_to_dir(tmp_path):
    write_config(tmp_path / "host", 'resource "bridge" "b" {\n  colour = 1\n}\n')
    cp = kvmnet(tmp_path, "-chdir=host", "validate")
    assert cp.returncode == 1 and cp.stderr.startswith('Error: main.hcl:2: bridge.b: unknown attribute "colour"')


def test_missing_directory_is_one_error(tmp_path):
    for chdir in (["-chdir=nope"], ["-C", "nope"]):
        cp = kvmnet(tmp_path, *chdir, "plan", "-out=p.bin")
        assert cp.returncode == 1 and cp.stdout == ""
        assert cp.stderr == ("Error: cannot change into the directory 'nope' (-chdir/-C): "
                             "No such file or directory\n"), cp.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == []
