"""State faults through the real CLI: every one is one ``Error:`` line that says what
is wrong and what to do, exit 1, and nothing touched — no live change (the config
asks for a new bridge in a throw-away namespace; it must not appear) and the state
file as it was. Then recovery: the last good copy kept beside the state and
``kvmnet state restore``, and a run killed mid-way marked ``interrupted``.

Real components: the iproute provider against bridges in a namespace this module
creates, a small tmpfs (mounted and unmounted here) for a read-only mount and a
full disk, ``chattr +i`` for an immutable file, ``mkfifo``/``mknod``.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from kvmnet.sandbox.netns import in_ns, netns
from kvmnet.state import EXCLUSIVE, open_state
from kvmnet.state.sqlite import APPLICATION_ID
from tests.conftest import requires_root
from tests.e2e.helpers import run_kvmnet

pytestmark = [requires_root, pytest.mark.real]

STATE = "kvmnet.state.db"


def config(ns: str, *bridges: str) -> str:
    text = f'provider "iproute" {{\n  netns = "{ns}"\n}}\n'
    for b in bridges:
        text += (f'resource "bridge" "{b}" {{\n  provider = "iproute"\n'
                 f'  name     = "br-{b}"\n}}\n')
    return text


def bridges(ns: str) -> set[str]:
    links = json.loads(in_ns(ns, "ip", "-j", "link", "show", "type", "bridge").stdout or "[]")
    return {link["ifname"] for link in links}


def fingerprint(path: Path) -> tuple:
    """What 'unchanged' means for whatever sits at ``path`` (and SQLite side files)."""
    out = []
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")):
        if not os.path.lexists(p):
            out.append(None)
            continue
        st = os.lstat(p)
        body = p.read_bytes() if stat.S_ISREG(st.st_mode) else None
        out.append((stat.S_IFMT(st.st_mode), st.st_rdev, st.st_mtime_ns, body))
    return tuple(out)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("Error:")]


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                    str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


class Env:
    """A config directory and a state path for one test, in the module's namespace."""

    def __init__(self, ns: str, root: Path, state: Path | None = None) -> None:
        self.ns = ns
        self.dir = root / "cfg"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state = state or root / STATE

    def write(self, *names: str) -> None:
        (self.dir / "main.hcl").write_text(config(self.ns, *names))

    def k(self, *args: str, **kw) -> tuple[int, str, str]:
        return run_kvmnet(self.dir, *args, state=self.state, timeout=60, **kw)

    def history(self) -> list[dict]:
        rc, out, err = self.k("state", "history", "--json")
        assert rc == 0, err
        return json.loads(out)["history"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One namespace with bridge br-b applied; ``good`` is the state that apply
    left as its last good copy (a plain single-file SQLite state)."""
    root = tmp_path_factory.mktemp("faults")
    with netns("kvf") as ns:
        env = Env(ns, root)
        env.write("b")
        rc, _out, err = env.k("apply", "--auto-approve")
        assert rc == 0, err
        good = root / "good.db"
        shutil.copyfile(f"{env.state}.backup", good)
        yield ns, good


@pytest.fixture
def env(world, tmp_path):
    """State = a copy of the good state; config = br-b (recorded) + br-c (to create)."""
    ns, good = world
    e = Env(ns, tmp_path)
    shutil.copyfile(good, e.state)
    e.write("b", "c")
    yield e
    in_ns(ns, "ip", "link", "del", "br-c", check=False)    # should a test have failed


def assert_refused(env: Env, *phrases: str, args=("apply", "--auto-approve")) -> str:
    """The run fails with one Error line containing ``phrases``; nothing changed."""
    before = fingerprint(env.state)
    rc, _out, err = env.k(*args)
    assert rc == 1, err
    assert "Traceback" not in err, err
    lines = error_lines(err)
    assert len(lines) == 1 and len(err.strip().splitlines()) == 1, err
    for p in phrases:
        assert p in lines[0], lines[0]
    assert "br-c" not in bridges(env.ns), "nothing live may change"
    assert fingerprint(env.state) == before, "the state must be left as it was"
    return lines[0]


# -- the state file is not a usable kvmnet state -------------------------------------------
def test_not_a_database(env):
    env.state.write_bytes(b"this is a plan file, not a state\n" * 40)
    line = assert_refused(env, "is not a kvmnet state (not an SQLite database)")
    assert "no backup" in line


@pytest.mark.parametrize("keep", [10_000, 8192], ids=["mid-page", "page-aligned"])
def test_truncated(env, keep):
    data = env.state.read_bytes()
    assert len(data) > keep
    env.state.write_bytes(data[:keep])
    assert_refused(env, "is truncated")


@pytest.mark.parametrize("table", ["instances", "history"])
def test_malformed_pages(env, table):
    conn = sqlite3.connect(env.state)
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?",
                           (table,)).fetchone()
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    with open(env.state, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)
    assert_refused(env, "is damaged", "malformed")


def test_a_directory_in_its_place(env):
    env.state.unlink()
    env.state.mkdir()
    assert_refused(env, "is a directory, not a state file", "move it away")


def test_a_fifo_in_its_place_does_not_hang(env):
    env.state.unlink()
    os.mkfifo(env.state)
    assert_refused(env, "is a FIFO (named pipe)")


def test_a_fifo_in_place_of_the_write_ahead_log(env):
    os.mkfifo(f"{env.state}-wal")
    assert_refused(env, "-wal, beside state", "is a FIFO")


def test_a_device_in_its_place(env):
    env.state.unlink()
    os.mknod(env.state, 0o600 | stat.S_IFCHR, os.makedev(1, 3))     # like /dev/null
    assert_refused(env, "is a character device")


def test_a_fifo_as_the_lock_file(env):
    os.mkfifo(f"{env.state}.lock")
    assert_refused(env, "lock", "is not a regular file")


def test_a_file_in_place_of_the_lock_records_directory(env):
    Path(f"{env.state}.lock.d").write_text("")
    assert_refused(env, "cannot lock", "lock holder record", "move")


def test_immutable_state(env):
    subprocess.run(["chattr", "+i", str(env.state)], check=True)
    try:
        assert_refused(env, "cannot write state", "chattr -i")
    finally:
        subprocess.run(["chattr", "-i", str(env.state)], check=True)


def test_state_on_a_read_only_mount(env, tmp_path):
    with tmpfs(tmp_path / "ro", "1m") as mnt:
        env.state = mnt / STATE
        shutil.copyfile(tmp_path / STATE, env.state)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        assert_refused(env, "read-only", "remount it read-write")


def test_a_state_written_by_a_newer_kvmnet(env):
    with sqlite3.connect(env.state) as conn:
        conn.execute("UPDATE meta SET format_version = 99")
    assert_refused(env, "written by a newer kvmnet (state format 99", "upgrade kvmnet")


@pytest.mark.parametrize("kind", ["other tables", "other application_id"])
def test_a_foreign_sqlite_file_is_refused_not_read_as_empty(env, kind):
    env.state.unlink()
    with sqlite3.connect(env.state) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        if kind == "other application_id":
            conn.execute("CREATE TABLE meta (x)")
            conn.execute("PRAGMA application_id = 1234")
    assert_refused(env, "an SQLite database of another program", "not a kvmnet state",
                   args=("apply", "--auto-approve") if kind == "other tables" else ("plan",))


@pytest.mark.parametrize("column,value,phrase", [
    ("attrs", "{not json", "the row of 'bridge.b' does not hold valid JSON"),
    ("attrs", "[1, 2]", "attrs is a JSON array, not a JSON object"),
    ("dependencies", '{"a": 1}', "dependencies is a JSON object, not a JSON array"),
    ("key", "1.5", "key is a number"),
    ("address", "network.x", "does not match type"),
])
def test_rows_whose_json_does_not_match_the_schema(env, column, value, phrase):
    with sqlite3.connect(env.state) as conn:
        conn.execute(f"UPDATE instances SET {column} = ?", (value,))
    assert_refused(env, "is damaged", phrase)


@pytest.mark.parametrize("edit,phrase", [
    ("json_set(attrs, '$.mtu', 'big')", "attrs.mtu: 'big' is not of type 'integer'"),
    ("json_set(attrs, '$.colour', 'red')", "attrs.colour: bridge has no such attribute"),
    ("json_set(attrs, '$.route', json('[{\"via\": \"10.0.0.1\"}]'))",
     "attrs.route[0]: 'to' is a required property"),
])
def test_a_row_whose_attributes_do_not_fit_its_type_schema(env, edit, phrase):
    """The row is checked against the bridge type's JSON Schema (from the iproute
    provider): one Error line naming the file, the row and the JSON path, with both
    ways out; plan and apply alike."""
    with sqlite3.connect(env.state) as conn:
        conn.execute(f"UPDATE instances SET attrs = {edit} WHERE address = 'bridge.b'")
    for args in (("plan",), ("apply", "--auto-approve")):
        line = assert_refused(env, f"state {env.state} is damaged: in the row of 'bridge.b', {phrase}",
                              "kvmnet state rm bridge.b", "no backup", args=args)
        assert "Traceback" not in line


def test_a_row_that_does_not_fit_is_recovered_by_state_rm(env):
    """state list / show / rm do not stop at the row they are there to repair; after
    the rm the live bridge (marked with this state's lineage) is adopted again."""
    with sqlite3.connect(env.state) as conn:
        conn.execute("UPDATE instances SET attrs = json_set(attrs, '$.stp', 'yes')")
    rc, out, err = env.k("state", "list")
    assert (rc, out.split()) == (0, ["bridge.b"]), err
    rc, out, err = env.k("state", "show", "bridge.b")
    assert rc == 0 and 'stp = "yes"' in out, out + err
    assert err.startswith("Warning: this row does not fit its type's schema (attrs.stp: 'yes' is not of type"), err
    rc, out, err = env.k("state", "rm", "bridge.b")
    assert rc == 0 and "Removed bridge.b" in out, err
    env.write("b")
    rc, out, err = env.k("apply", "--auto-approve")
    assert rc == 0 and "Error" not in err, out + err
    assert set(open_state(env.state).read().instances) == {"bridge.b"}


def test_a_row_that_does_not_fit_is_recovered_by_state_restore(env):
    """With a last good copy the message names state restore, and the restored
    state (checked the same way) is used."""
    shutil.copyfile(env.state, f"{env.state}.backup")
    with sqlite3.connect(env.state) as conn:
        conn.execute("UPDATE instances SET attrs = json_set(attrs, '$.mtu', 1)")
    assert_refused(env, "in the row of 'bridge.b', attrs.mtu: 1 is less than the minimum of 68",
                   "run 'kvmnet state restore'", "kvmnet state rm bridge.b")
    rc, out, err = env.k("state", "restore")
    assert rc == 0, err
    env.write("b")
    rc, out, err = env.k("plan", "--detailed-exitcode")
    assert rc == 0, out + err


def test_a_backup_whose_rows_do_not_fit_is_not_restored(env):
    shutil.copyfile(env.state, f"{env.state}.backup")
    with sqlite3.connect(f"{env.state}.backup") as conn:
        conn.execute("UPDATE instances SET attrs = json_set(attrs, '$.mtu', 'big')")
    assert_refused(env, "cannot be restored", "attrs.mtu: 'big' is not of type 'integer'",
                   "the state was left as it is", args=("state", "restore"))


def test_a_row_of_a_type_no_installed_provider_serves(env):
    """Not checked (no schema to check it against); the run stops at the provider
    that is not installed (start_providers' branch for a provider name no plugin
    serves): one Error line, nothing touched."""
    with sqlite3.connect(env.state) as conn:
        conn.execute("INSERT INTO instances (address, type, name, provider, attrs, private, "
                     "dependencies) VALUES ('gizmo.g', 'gizmo', 'g', 'gizmo', '{\"x\": 1}', "
                     "'{}', '[]')")
    for args in (("plan",), ("apply", "--auto-approve")):
        assert_refused(env, 'cannot start provider: no provider plugin "gizmo" is installed',
                       args=args)


def test_a_damaged_history_entry(env):
    with sqlite3.connect(env.state) as conn:
        conn.execute("UPDATE history SET changes = '[{oops'")
    assert_refused(env, "history entry #1 does not hold valid JSON",
                   args=("state", "history"))


# -- states that must still open -------------------------------------------------------------
def test_a_state_of_the_previous_release_opens_and_gets_the_application_id(env):
    """Written before application_id and the history liveness columns existed."""
    with sqlite3.connect(env.state) as conn:
        conn.execute("PRAGMA application_id = 0")
        conn.execute("ALTER TABLE history DROP COLUMN boot_id")
        conn.execute("ALTER TABLE history DROP COLUMN pid_start")
    env.write("b", "legacy")
    rc, _out, err = env.k("apply", "--auto-approve")
    assert rc == 0, err
    assert "br-legacy" in bridges(env.ns)
    with sqlite3.connect(env.state) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert [h["status"] for h in env.history()] == ["applied", "applied"]


def test_a_disk_already_full(env, tmp_path):
    with tmpfs(tmp_path / "full", "256k") as mnt:
        env.state = mnt / STATE
        shutil.copyfile(tmp_path / STATE, env.state)
        free = os.statvfs(mnt)
        (mnt / "filler").write_bytes(b"\0" * (free.f_bavail * free.f_frsize))
        assert_refused(env, "full", "free space")


# -- a full disk in the middle of an apply --------------------------------------------------
def test_disk_full_mid_apply_is_one_error_and_the_next_run_converges(world, tmp_path):
    ns, _good = world
    names = [f"f{i}" for i in range(8)]
    with tmpfs(tmp_path / "small", "1m") as mnt:
        env = Env(ns, tmp_path, state=mnt / STATE)
        env.write("d")
        rc, _out, err = env.k("apply", "--auto-approve")    # state, lock files, backup
        assert rc == 0, err
        env.write("d", *names)
        free = os.statvfs(mnt)
        filler = mnt / "filler"     # leaves room for a few of the 8 changes' writes
        filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 64 * 1024))

        rc, out, err = env.k("apply", "--auto-approve")
        assert rc == 1, out + err
        assert "Traceback" not in err, err
        (line,) = error_lines(err)
        assert "the disk is full" in line and "free space" in line, line
        made = {n for n in names if f"br-{n}" in bridges(ns)}
        assert made and made != set(names), "the disk must fill up in the middle"
        conn = sqlite3.connect(f"file:{env.state}?mode=ro", uri=True)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()

        filler.unlink()                                     # the operator frees space
        rc, out, err = env.k("apply", "--auto-approve")
        assert rc == 0, err
        assert {f"br-{n}" for n in names} <= bridges(ns)
        rc, out, _ = env.k("state", "list")
        assert set(out.split()) == {"bridge.d", *(f"bridge.{n}" for n in names)}
        assert env.k("plan", "--detailed-exitcode")[0] == 0
        # the cut-off run's entry ended: "failed" if the full disk still took that
        # write, else marked "interrupted" (with a warning) by the run that followed
        statuses = [h["status"] for h in env.history()]
        assert statuses[-3] == statuses[-1] == "applied", statuses
        assert statuses[-2] in ("failed", "interrupted"), statuses
        assert (statuses[-2] == "interrupted") == ("marked it interrupted" in err), err


# -- recovery: the last good copy and state restore -----------------------------------------
def test_restore_brings_back_the_last_good_state(env):
    env.write("b", "r")
    rc, _out, err = env.k("apply", "--auto-approve")
    assert rc == 0, err
    backup = Path(f"{env.state}.backup")
    good = open_state(backup).read()
    assert set(good.instances) == {"bridge.b", "bridge.r"}

    env.state.write_bytes(b"\xa5" * 5000)                   # overwritten
    line = assert_refused(env, "is not a kvmnet state", "kvmnet state restore")
    assert str(backup) in line

    rc, out, err = env.k("state", "restore")
    assert rc == 0, err
    assert f"serial {good.serial}, lineage {good.lineage}, 2 instances" in out
    assert Path(f"{env.state}.before-restore").stat().st_size == 5000
    rc, out, err = env.k("plan", "--detailed-exitcode")
    assert rc == 0, out + err
    assert env.history()[-1]["command"].endswith("state restore")


def test_restore_puts_the_state_back_in_place_of_a_directory(env):
    shutil.copyfile(env.state, f"{env.state}.backup")
    env.state.unlink()
    env.state.mkdir()
    rc, out, err = env.k("state", "restore")
    assert rc == 0, err
    assert "1 instance." in out and "kept as" in out
    assert Path(f"{env.state}.before-restore").is_dir()
    assert env.k("state", "list")[1].split() == ["bridge.b"]


def test_state_rm_and_import_keep_a_backup_and_one_not_written_is_a_warning(env):
    rc, _out, err = env.k("state", "rm", "bridge.b")
    assert rc == 0, err
    assert open_state(f"{env.state}.backup").read().instances == {}
    Path(f"{env.state}.backup").unlink()
    Path(f"{env.state}.backup").mkdir()                    # the copy cannot go there
    rc, out, err = env.k("import", "bridge.b", "br-b")
    assert rc == 0, out + err
    assert "Warning: the state was saved, but its backup copy was not" in err
    assert env.k("state", "list")[1].split() == ["bridge.b"]


def test_restore_refuses_while_the_state_is_locked(env):
    shutil.copyfile(env.state, f"{env.state}.backup")
    before = fingerprint(env.state)
    with open_state(env.state).lock(EXCLUSIVE, "test holder"):
        rc, _out, err = env.k("state", "restore")
    assert rc == 1 and "state is locked by test holder" in err, err
    assert fingerprint(env.state) == before


def test_restore_without_a_backup(env):
    assert_refused(env, "there is no backup", args=("state", "restore"))


def test_a_damaged_backup_is_not_restored(env):
    Path(f"{env.state}.backup").write_bytes(b"garbage" * 100)
    assert_refused(env, "the backup", "cannot be restored", "not a kvmnet state",
                   args=("state", "restore"))


# -- a run that died is marked interrupted ---------------------------------------------------
def test_a_killed_run_is_marked_interrupted_by_the_next_run(env):
    env.write("b", "k")
    rc, _out, _err = env.k("apply", "--auto-approve",
                           env={"KVMNET_TEST_KILL_AFTER_WRITES": "1"})
    assert rc == -9
    assert env.history()[-1]["status"] == "running"
    rc, _out, err = env.k("apply", "--auto-approve")
    assert rc == 0, err
    assert "marked it interrupted" in err
    last = env.history()[-1]
    assert last["status"] == "interrupted" and last["finished"], last
    assert "ended before the run did" in last["summary"]
