"""A ``*.hcl`` entry that is not a regular file (a FIFO, a device, a socket, a
symbolic link to nothing) is one ``FILE: …`` error, in the root config and in a
module: skipped quietly, a FIFO main.hcl once made ``validate`` report "valid (0
resource instances)", so an apply would have planned every resource as removed.
A directory named ``*.hcl`` is no file and is left alone, as before."""
from __future__ import annotations

import os
import socket
import stat

import pytest

from kvmnet.cli import main

BRIDGE = 'resource "bridge" "b" {\n  name = "br0"\n}\n'
TAIL = ", not a configuration file: move it away (kvmnet reads every *.hcl file; " \
       "skipping it would plan its resources as removed)"


def validate(directory, capsys) -> tuple[int, str]:
    rc = main(["-C", str(directory), "--no-color", "validate"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def _fifo(p):
    os.mkfifo(p)


def _dangling(p):
    p.symlink_to(p.parent / "missing.hcl")


def _device(p):
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(p, 0o600 | stat.S_IFCHR, os.makedev(1, 3))


def _socket(p):
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()


@pytest.mark.parametrize("make, what", [
    (_fifo, "a FIFO (named pipe)"),
    (_dangling, "a symbolic link to a file that does not exist"),
    (_device, "a character device"),
    (_socket, "a socket"),
])
def test_an_hcl_entry_that_is_not_a_file_is_an_error(tmp_path, capsys, make, what):
    (tmp_path / "a.hcl").write_text(BRIDGE)
    make(tmp_path / "main.hcl")
    rc, err = validate(tmp_path, capsys)
    assert rc == 1
    assert err.splitlines() == [f"Error: main.hcl: {what}{TAIL}"], err


def test_in_a_module_too(tmp_path, capsys):
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "main.hcl").write_text(BRIDGE)
    os.mkfifo(tmp_path / "mod" / "more.hcl")
    (tmp_path / "main.hcl").write_text('module "m" {\n  source = "./mod"\n}\n')
    rc, err = validate(tmp_path, capsys)
    assert rc == 1 and f"Error: mod/more.hcl: a FIFO (named pipe){TAIL}" in err, err


def test_a_directory_named_hcl_is_left_alone(tmp_path, capsys):
    (tmp_path / "main.hcl").write_text(BRIDGE)
    (tmp_path / "old.hcl").mkdir()
    rc, err = validate(tmp_path, capsys)
    assert rc == 0, err
