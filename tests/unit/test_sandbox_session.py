"""kvmnet sandbox's record: the error paths that need no root (the real life cycle is
tests/real/test_sandbox_policy.py)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from kvmnet.sandbox.session import Session, SessionError, down, read_record, up


def test_up_refuses_when_a_record_exists(tmp_path):
    record = tmp_path / "rec.json"
    record.write_text("{}")
    with pytest.raises(SessionError, match="already up"):
        up(record)
    assert record.read_text() == "{}"


def test_a_missing_or_damaged_record_is_one_clear_error(tmp_path):
    with pytest.raises(SessionError, match="no sandbox is up"):
        down(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "kvl-1"')
    with pytest.raises(SessionError, match="cannot be read"):
        read_record(bad)
    bad.write_text('{"name": "kvl-1"}')
    with pytest.raises(SessionError, match="cannot be read"):
        read_record(bad)


def test_provider_blocks_point_every_provider_at_the_sandbox():
    s = Session(name="kvl-0000", root="/tmp/r", pid=1, uri="qemu+unix:///system?socket=/s",
                client_ns="klc-0000", tmp="/tmp/t")
    text = s.provider_blocks()
    for provider in ("libvirt", "iproute", "netplan", "nftables", "sysctl"):
        assert f'provider "{provider}"' in text
    assert text.count('"kvl-0000"') == 4 and "/tmp/t/sysctl.d" in text and "/tmp/t/netplan-root" in text


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to drop to nobody")
def test_sandbox_needs_root(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "NO_COLOR": "1"}
    probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            sys.executable, "-m", "kvmnet", "--version"], capture_output=True, env=env, cwd="/")
    if probe.returncode != 0:
        pytest.skip("the venv is not readable by nobody here")
    for verb in ("up", "down"):
        cp = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             sys.executable, "-m", "kvmnet", "sandbox", verb], capture_output=True, text=True,
                            env=env, cwd="/")
        assert cp.returncode == 1 and cp.stderr.startswith(f"Error: kvmnet sandbox {verb} needs root"), cp.stderr
