"""``kvmnet apply --confirm-timeout`` and ``kvmnet confirm`` end to end: the real CLI
in subprocesses (on a pipe, and on a real pseudo-terminal), real sysctls in a
throw-away network namespace, and the waiter outliving the apply's session."""
from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kvmnet.engine.confirmation import pending_path, read_pending
from kvmnet.state import open_state
from tests.conftest import requires_root
from tests.e2e.test_sysctl_cli import Env

pytestmark = [requires_root, pytest.mark.real]

FIN = "net.ipv4.tcp_fin_timeout"
SYN = "net.ipv4.tcp_syn_retries"


def profiles(fin: int, syn: int | None = None) -> str:
    text = f"""
resource "sysctl_profile" "a" {{
  settings = {{ "{FIN}" = {fin} }}
}}
"""
    if syn is not None:
        text += f"""
resource "sysctl_profile" "b" {{
  settings   = {{ "{SYN}" = {syn} }}
  depends_on = [sysctl_profile.a]
}}
"""
    return text


@pytest.fixture
def env(ns, tmp_path):
    e = Env(ns, tmp_path)
    yield e
    p = read_pending(str(e.state))        # never leave a waiter behind
    if p is not None:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def last_history(env: Env) -> dict:
    return json.loads(env.ok("state", "history", "--json"))["history"][-1]


def wait_for_status(env: Env, wanted: str, limit: float = 15) -> dict:
    end = time.monotonic() + limit
    while True:
        h = open_state(env.state).history(1)[0]
        if h.status == wanted or time.monotonic() > end:
            assert h.status == wanted, f"history #{h.id} is {h.status}, not {wanted}"
            return h
        time.sleep(0.1)


def wait_gone(pid: int, limit: float = 10) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.05)
    raise AssertionError(f"waiter {pid} still running")


def argv(env: Env, *args: str) -> list[str]:
    return [sys.executable, "-m", "kvmnet", "-C", str(env.cfg), "--state", str(env.state), *args]


def cli_env(env: Env) -> dict:
    e = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(env.tmp / ".cache"))
    e.pop("KVMNET_STATE", None)
    return e


# -- without a terminal ------------------------------------------------------------------
def test_confirmed_from_another_shell_the_changes_stay(env):
    default = env.get(FIN)
    env.write(profiles(33))
    out = env.ok("apply", "--auto-approve", "--confirm-timeout", "20")
    assert "waiting up to 20 s for confirmation in the background" in out
    assert f"--state {env.state} confirm" in out
    pending = read_pending(str(env.state))
    assert pending is not None and pending.history_id == last_history(env)["id"]
    assert last_history(env)["status"] == "awaiting-confirmation"
    assert env.get(FIN) == "33"
    # the waiter holds the exclusive lock: another apply is refused, naming it
    rc, _, err = env.k("apply", "--auto-approve")
    assert rc == 1 and "waiting for confirmation" in err and f"pid {pending.pid}" in err
    assert "kvmnet confirm --revert" in err
    # a wrong --id is refused and changes nothing
    rc, _, err = env.k("confirm", "--id", str(pending.history_id + 7))
    assert rc == 1 and f"#{pending.history_id} is" in err
    out = env.ok("confirm")
    assert f"Confirmed apply #{pending.history_id}" in out
    wait_gone(pending.pid)
    assert not os.path.exists(pending_path(str(env.state)))
    h = last_history(env)
    assert h["status"] == "applied" and h["finished"]
    assert env.get(FIN) == "33" != default
    assert env.addresses() == ["sysctl_profile.a"]
    # the lock is free again and nothing is left to do
    rc, out, _ = env.k("apply", "--auto-approve")
    assert rc == 0 and "0 added, 0 changed, 0 destroyed" in out


def test_not_confirmed_the_apply_is_rolled_back_to_the_previous_state(env):
    env.write(profiles(33))
    env.ok("apply", "--auto-approve")
    syn_default = env.get(SYN)
    before = open_state(env.state).read().instances["sysctl_profile.a"].attrs
    env.write(profiles(44, 3))                # update a, create b
    env.ok("apply", "--auto-approve", "--confirm-timeout", "2")
    assert (env.get(FIN), env.get(SYN)) == ("44", "3")
    pid = read_pending(str(env.state)).pid
    h = wait_for_status(env, "rolled back")
    assert h.summary.startswith("not confirmed within 2 s: rolled back 2 change(s)")
    wait_gone(pid)
    assert (env.get(FIN), env.get(SYN)) == ("33", syn_default)
    snap = open_state(env.state).read()
    assert sorted(snap.instances) == ["sysctl_profile.a"]
    assert snap.instances["sysctl_profile.a"].attrs == before
    assert not env.conf("b").exists()
    log = Path(str(env.state) + ".confirm.log").read_text()
    assert "not confirmed within 2 s; rolling back" in log
    assert "sysctl_profile.b: rolled back create (destroyed)" in log
    assert "sysctl_profile.a: rolled back update (restored)" in log
    # a confirm now is too late: nothing is pending
    rc, _, err = env.k("confirm")
    assert rc == 1 and "nothing is waiting for confirmation" in err


def test_confirm_with_nothing_pending_exits_1(env):
    env.write(profiles(33))
    rc, out, err = env.k("confirm")
    assert rc == 1
    assert "nothing is waiting for confirmation" in err
    assert not env.state.exists()


def test_confirm_revert_rolls_back_now(env):
    default = env.get(FIN)
    env.write(profiles(33))
    env.ok("apply", "--auto-approve", "--confirm-timeout", "30")
    assert env.get(FIN) == "33"
    t0 = time.monotonic()
    out = env.ok("confirm", "--revert")
    assert time.monotonic() - t0 < 10
    assert "Rolled back apply #" in out
    assert env.get(FIN) == default
    assert env.addresses() == []
    assert last_history(env)["summary"].startswith("rollback requested")


# -- the session that ran the apply goes away --------------------------------------------
def test_waiter_survives_sigkill_of_the_applys_process_group(env):
    """The apply runs in its own session and process group; the whole group is
    SIGKILLed right after applying. The waiter left that group (setsid): it reverts."""
    default = env.get(FIN)
    env.write(profiles(33))
    p = subprocess.Popen(argv(env, "apply", "--auto-approve", "--confirm-timeout", "2"),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=cli_env(env), start_new_session=True, text=True)
    line = ""
    while "waiting up to" not in line:
        line = p.stdout.readline()
        assert line, p.stderr.read()
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    p.stdout.close()
    p.stderr.close()
    assert env.get(FIN) == "33"
    wait_for_status(env, "rolled back")
    assert env.get(FIN) == default
    assert env.addresses() == []


def _spawn_on_pty(env: Env, *args: str) -> tuple[int, int]:
    """The CLI on a new pseudo-terminal as its controlling terminal (like an SSH
    session): (pid, master fd)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(sys.executable, argv(env, *args), cli_env(env))
        finally:
            os._exit(127)
    return pid, fd


def _read_until(fd: int, text: str, limit: float = 20) -> str:
    seen = b""
    end = time.monotonic() + limit
    while text.encode() not in seen:
        r, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        assert r, f"no {text!r} on the terminal; got: {seen.decode(errors='replace')}"
        try:
            chunk = os.read(fd, 4096)
        except OSError:          # EIO: the other side closed
            chunk = b""
        assert chunk, f"terminal closed before {text!r}; got: {seen.decode(errors='replace')}"
        seen += chunk
    return seen.decode(errors="replace")


def _drain(fd: int, limit: float = 20) -> str:
    seen = b""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    return seen.decode(errors="replace")


def _apply_on_pty(env: Env, confirm_timeout: int) -> tuple[int, int]:
    """``apply --auto-approve --confirm-timeout N`` on a new pseudo-terminal: (pid, master fd)."""
    return _spawn_on_pty(env, "apply", "--auto-approve", "--confirm-timeout", str(confirm_timeout))


def _exit_and_rest(pid: int, fd: int) -> tuple[int, str]:
    """Once the CLI has exited: its exit code and what its terminal showed meanwhile
    (the terminal is closed)."""
    rest = _drain(fd)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.WIFEXITED(status), rest
    return os.WEXITSTATUS(status), rest


def test_waiter_reverts_after_the_terminal_hangs_up(env):
    """The apply prompts on its terminal; the terminal goes away (master closed: the
    kernel sends SIGHUP to the apply). The waiter still reverts at the deadline."""
    default = env.get(FIN)
    env.write(profiles(33))
    pid, fd = _apply_on_pty(env, 3)
    _read_until(fd, "Type yes within 3 s to keep these changes")
    waiter = read_pending(str(env.state)).pid
    assert os.getsid(waiter) != os.getsid(pid)
    os.close(fd)                                  # hang up
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGHUP
    assert env.get(FIN) == "33"
    wait_for_status(env, "rolled back")
    wait_gone(waiter)
    assert env.get(FIN) == default
    assert env.addresses() == []


def test_yes_on_the_terminal_keeps_the_changes(env):
    env.write(profiles(33))
    pid, fd = _apply_on_pty(env, 20)
    _read_until(fd, "Keep the changes? ")
    os.write(fd, b"yes\n")
    code, rest = _exit_and_rest(pid, fd)
    assert code == 0, rest
    assert "Confirmed: the changes stay." in rest and "Apply complete!" in rest
    assert last_history(env)["status"] == "applied"
    assert env.get(FIN) == "33"
    assert read_pending(str(env.state)) is None


def test_no_answer_on_the_terminal_rolls_back_and_exits_1(env):
    default = env.get(FIN)
    env.write(profiles(33))
    pid, fd = _apply_on_pty(env, 1)
    prompt = _read_until(fd, "Keep the changes? ")
    code, rest = _exit_and_rest(pid, fd)
    rest = prompt + rest
    assert code == 1, rest
    assert "sysctl_profile.a: rolled back create (destroyed)" in rest
    assert "Not confirmed within 1 s" in rest
    assert env.get(FIN) == default
    assert last_history(env)["status"] == "rolled back"


def test_end_of_input_on_the_terminal_leaves_the_decision_to_the_waiter(env):
    """Ctrl-D (end of input) at the prompt: the apply exits 0 and says the waiter
    keeps waiting; a confirm from another shell then keeps the changes."""
    env.write(profiles(33))
    pid, fd = _apply_on_pty(env, 20)
    _read_until(fd, "Keep the changes? ")
    os.write(fd, b"\x04")
    code, rest = _exit_and_rest(pid, fd)
    assert code == 0, rest
    assert "keeps waiting" in rest
    assert last_history(env)["status"] == "awaiting-confirmation"
    assert "Confirmed apply #" in env.ok("confirm")
    assert last_history(env)["status"] == "applied"
    assert env.get(FIN) == "33"


def test_no_on_the_terminal_rolls_back_at_once(env):
    default = env.get(FIN)
    env.write(profiles(33))
    pid, fd = _apply_on_pty(env, 30)
    _read_until(fd, "Keep the changes? ")
    t0 = time.monotonic()
    os.write(fd, b"maybe\n")
    _read_until(fd, "Only yes keeps the changes")
    os.write(fd, b"no\n")
    code, rest = _exit_and_rest(pid, fd)
    assert time.monotonic() - t0 < 15
    assert code == 1, rest
    assert "sysctl_profile.a: rolled back create (destroyed)" in rest
    assert "Rolled back as asked" in rest
    assert env.get(FIN) == default
    assert last_history(env)["status"] == "rolled back"


def test_a_killed_waiter_is_reported_and_does_not_block(env):
    """SIGKILL of the waiter itself (the one thing it cannot survive): nothing is
    rolled back, confirm says so, and the next apply is not blocked by its lock."""
    env.write(profiles(33))
    env.ok("apply", "--auto-approve", "--confirm-timeout", "30")
    pending = read_pending(str(env.state))
    os.kill(pending.pid, signal.SIGKILL)
    wait_gone(pending.pid)
    rc, _, err = env.k("confirm")
    assert rc == 1
    assert f"apply #{pending.history_id} was waiting for confirmation, but its waiter" in err
    assert "its changes are still applied" in err
    rc, _, err = env.k("confirm")                 # reported once; then nothing is pending
    assert rc == 1 and "nothing is waiting for confirmation" in err
    assert env.get(FIN) == "33"
    rc, out, err = env.k("apply", "--auto-approve")
    assert rc == 0, out + err
    assert "cleared a stale lock left by a process that died" in err
    assert "0 added, 0 changed, 0 destroyed" in out


def test_a_waiter_that_cannot_start_means_the_apply_rolls_back_itself(env):
    """The waiter cannot open its log (a directory is in the way): the apply, still
    holding the lock, rolls its changes back in the foreground and exits 1."""
    default = env.get(FIN)
    env.write(profiles(33))
    Path(str(env.state) + ".confirm.log").mkdir(parents=True)
    rc, out, err = env.k("apply", "--auto-approve", "--confirm-timeout", "20")
    assert rc == 1, out + err
    assert "the confirmation waiter did not start" in err
    assert "sysctl_profile.a: rolled back create (destroyed)" in out
    assert env.get(FIN) == default
    assert env.addresses() == []
    assert last_history(env)["status"] == "rolled back"
    assert read_pending(str(env.state)) is None


def test_sigterm_to_the_waiter_rolls_back_now(env):
    default = env.get(FIN)
    env.write(profiles(33))
    env.ok("apply", "--auto-approve", "--confirm-timeout", "30")
    pending = read_pending(str(env.state))
    os.kill(pending.pid, signal.SIGTERM)
    h = wait_for_status(env, "rolled back", limit=10)
    assert h.summary.startswith("terminated (SIGTERM): rolled back 1 change(s)")
    wait_gone(pending.pid)
    assert env.get(FIN) == default
    assert env.addresses() == []


# -- libvirt: the waiter's own provider connection -----------------------------------------
@pytest.fixture(scope="module")
def libvirtd():
    import shutil
    if not shutil.which("libvirtd"):
        pytest.skip("libvirtd is not installed (apt-get install libvirt-daemon)")
    from kvmnet.sandbox.libvirtd import LibvirtSandbox
    with LibvirtSandbox() as sb:
        yield sb


def test_an_unconfirmed_libvirt_network_is_removed_by_the_waiter(libvirtd, tmp_path):
    """The waiter rolls back through its own libvirt connection (never the apply's,
    which does not survive a fork), against a real libvirtd in a sandbox."""
    from tests.e2e.helpers import run_kvmnet, write_config
    cfg, state = tmp_path / "cfg", tmp_path / "kvmnet.state.db"
    write_config(cfg, f'provider "libvirt" {{\n  uri = "{libvirtd.uri}"\n}}\n' + """
resource "network" "try" {
  mode   = "nat"
  bridge = "kvtry0"
  ip {
    address = "10.64.0.1"
    prefix  = 24
  }
}
""")
    rc, out, err = run_kvmnet(cfg, "apply", "--auto-approve", "--confirm-timeout", "2",
                              state=state, timeout=120)
    assert rc == 0, out + err
    assert "try" in libvirtd.virsh("net-list", "--all", "--name").stdout.split()
    pid = read_pending(str(state)).pid
    end = time.monotonic() + 30
    while open_state(state).history(1)[0].status != "rolled back" and time.monotonic() < end:
        time.sleep(0.1)
    log = Path(str(state) + ".confirm.log").read_text()
    assert "network.try: rolled back create (destroyed)" in log, log
    wait_gone(pid)
    assert "try" not in libvirtd.virsh("net-list", "--all", "--name").stdout.split()
    assert open_state(state).read().instances == {}


def test_confirm_timeout_must_be_positive(tmp_path):
    from tests.e2e.helpers import run_kvmnet, write_config
    write_config(tmp_path / "cfg", 'resource "sysctl_profile" "t" {\n  settings = { "net.core.somaxconn" = 1024 }\n}\n')
    rc, _out, err = run_kvmnet(tmp_path / "cfg", "apply", "--auto-approve", "--confirm-timeout", "0",
                               state=tmp_path / "s.db")
    assert rc == 1 and "--confirm-timeout" in err
    assert not (tmp_path / "s.db").exists()
