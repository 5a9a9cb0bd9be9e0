"""kvmnet.sdk.files.atomic_write: contents, mode, and nothing left behind on error."""
from __future__ import annotations

import os
import stat

import pytest

from kvmnet.sdk import files as fileutil
from kvmnet.sdk.files import atomic_write


def mode_of(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_creates_a_file_with_text_as_utf8(tmp_path):
    p = tmp_path / "a.conf"
    atomic_write(p, "héllo\n")
    assert p.read_bytes() == "héllo\n".encode()
    assert mode_of(p) == 0o644
    assert os.listdir(tmp_path) == ["a.conf"]


def test_bytes_and_str_path(tmp_path):
    p = str(tmp_path / "b.bin")
    atomic_write(p, b"\x00\x01")
    assert open(p, "rb").read() == b"\x00\x01"


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o755, 0o640])
def test_mode_is_exact_whatever_the_umask(tmp_path, mode):
    p = tmp_path / "m"
    old = os.umask(0o077)
    try:
        atomic_write(p, "x", mode)
    finally:
        os.umask(old)
    assert mode_of(p) == mode


def test_replaces_an_existing_file_and_takes_the_new_mode(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("old contents that are longer\n")
    os.chmod(p, 0o644)
    inode = os.stat(p).st_ino
    atomic_write(p, "new\n", 0o600)
    assert p.read_text() == "new\n"
    assert mode_of(p) == 0o600
    assert os.stat(p).st_ino != inode, "a new file renamed over the old one, not rewritten in place"
    assert os.listdir(tmp_path) == ["c.yaml"]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    p = tmp_path / "d.prom"
    p.write_text("old\n")

    def boom(fd):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(fileutil.os, "fsync", boom)
    with pytest.raises(OSError, match="Input/output error"):
        atomic_write(p, "new\n")
    assert p.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["d.prom"]


def test_a_failed_rename_leaves_no_temp_file(tmp_path):
    target = tmp_path / "e"
    target.mkdir()
    (target / "inside").write_text("x")           # a non-empty directory cannot be replaced
    with pytest.raises(OSError):
        atomic_write(target, "new")
    assert sorted(os.listdir(tmp_path)) == ["e"]


def test_a_bad_data_type_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "f", 42)          # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "nope" / "g", "x")


def test_temp_file_name_never_matches_the_targets_glob(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        real_replace(src, dst)
    monkeypatch.setattr(fileutil.os, "replace", spy)
    atomic_write(tmp_path / "90-kvmnet-x.conf", "x")
    (name,) = seen
    assert name.startswith(".90-kvmnet-x.conf.") and name.endswith(".tmp")


# -- the call sites keep their modes --------------------------------------------------

def test_fmt_keeps_the_files_mode(tmp_path):
    from kvmnet.commands.fmt_cmd import write_atomically
    p = tmp_path / "main.hcl"
    p.write_text("x = 1\n")
    os.chmod(p, 0o640)
    write_atomically(p, "x = 2\n")
    assert p.read_text() == "x = 2\n" and mode_of(p) == 0o640
    assert os.listdir(tmp_path) == ["main.hcl"]


def test_metrics_file_is_0644(tmp_path):
    from kvmnet.engine.render.metrics import _write
    p = tmp_path / "kvmnet.prom"
    _write(str(p), ["a 1", "b 2"])
    assert p.read_text() == "a 1\nb 2\n" and mode_of(p) == 0o644


def test_netplan_file_is_0600_and_removed_with_none(tmp_path):
    from kvmnet.providers.netplan.files import replace
    p = tmp_path / "etc" / "netplan" / "90-kvmnet.yaml"
    replace(str(p), "network: {version: 2}\n")
    assert p.read_text() == "network: {version: 2}\n" and mode_of(p) == 0o600
    assert os.listdir(p.parent) == ["90-kvmnet.yaml"]
    replace(str(p), None)
    assert not p.exists()
    replace(str(p), None)                     # already gone: nothing to do


def test_sysctl_persist_file_is_0644_in_a_new_directory(tmp_path):
    from kvmnet.providers.sysctl.persist import write
    p = tmp_path / "sysctl.d" / "90-kvmnet-x.conf"
    write(str(p), "net.core.somaxconn = 1\n")
    assert p.read_text() == "net.core.somaxconn = 1\n" and mode_of(p) == 0o644


def test_confirm_files_are_0600(tmp_path):
    from kvmnet.engine.confirmation import _read_json, _write_json
    p = str(tmp_path / "kvmnet.state.db.confirm")
    _write_json(p, {"action": "confirm"})
    assert _read_json(p) == {"action": "confirm"} and mode_of(p) == 0o600


def test_remove_leftovers_takes_only_the_temp_files_of_that_path(tmp_path):
    from kvmnet.sdk.files import remove_leftovers
    for name in (".a.conf.x1y2.tmp", ".a.conf.zz.tmp", ".b.conf.x1.tmp", "a.conf", ".a.conf.keep"):
        (tmp_path / name).write_text("x")
    remove_leftovers(tmp_path / "a.conf")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.conf.keep", ".b.conf.x1.tmp", "a.conf"]
    remove_leftovers(tmp_path / "missing-dir" / "a.conf")      # nothing to do, no error
