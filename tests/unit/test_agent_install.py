"""``kvmnet agent install``: the service, the timer and the PG_CONN_STR env file
(mode 0600) written into a temp dir (never /etc), checked with ``systemd-analyze
verify`` (systemd is installed, not PID 1); its refusals write nothing."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

from kvmnet.cli import main
from kvmnet.engine.fleet import units

CONN = 'host=/run/pg dbname=fleet user=kvm01 password=a"b$c\\d`e %h'


def verify(*paths) -> subprocess.CompletedProcess:
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (scripts/install.sh installs systemd)")
    return subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, paths)],
                          capture_output=True, text=True, timeout=60)


def install(tmp_path, monkeypatch, *args, conn=CONN):
    if conn is None:
        monkeypatch.delenv("PG_CONN_STR", raising=False)
    else:
        monkeypatch.setenv("PG_CONN_STR", conn)
    return main(["agent", "install", "--unit-dir", str(tmp_path), "--env-file", str(tmp_path / "agent.env"),
                 *args])


def test_install_writes_units_that_systemd_accepts(tmp_path, monkeypatch, capsys):
    assert install(tmp_path, monkeypatch, "--repo", "https://git.example/fleet 100%.git", "--host", "kvm01",
                   "--interval", "2m") == 0
    service, timer, env = (tmp_path / units.SERVICE, tmp_path / units.TIMER, tmp_path / "agent.env")
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert env.read_text().splitlines()[1] == 'PG_CONN_STR="host=/run/pg dbname=fleet user=kvm01 ' \
                                              'password=a\\"b\\$c\\\\d\\`e %h"'
    text = service.read_text()
    assert "PG_CONN_STR" not in text and "password" not in text      # the secret is only in the env file
    assert f"EnvironmentFile={env}\n" in text
    assert '"agent" "run" "--repo" "https://git.example/fleet 100%%.git" "--host" "kvm01" "--once"' in text
    assert "OnUnitInactiveSec=120s" in timer.read_text()
    cp = verify(service, timer)
    assert cp.returncode == 0, cp.stderr
    assert "systemctl enable --now kvmnet-agent.timer" in capsys.readouterr().out


def test_labels_and_a_probe_file_are_passed_to_the_agent(tmp_path, monkeypatch):
    """A canary host installed as one: agent run gets its --label (and the probes)."""
    probes = tmp_path / "probes" / "user.probes"
    probes.parent.mkdir()
    probes.write_text('kvmnet {\n  probe "dns" {\n    command = ["true"]\n  }\n}\n')
    assert install(tmp_path, monkeypatch, "--repo", "/srv/fleet", "--host", "kvm01", "--label", "canary",
                   "--label", "rack 2", "--probe-file", str(probes)) == 0
    service = tmp_path / units.SERVICE
    assert f'"--once" "--label" "canary" "--label" "rack 2" "--probe-file" "{probes}"\n' in service.read_text()
    cp = verify(service, tmp_path / units.TIMER)
    assert cp.returncode == 0, cp.stderr


def test_verify_does_catch_a_broken_unit(tmp_path, monkeypatch):
    """The check above can fail: a relative ExecStart is refused by systemd."""
    assert install(tmp_path, monkeypatch, "--repo", "/srv/fleet", "--host", "kvm01") == 0
    service = tmp_path / units.SERVICE
    service.write_text(service.read_text().replace('ExecStart="/', 'ExecStart="'))
    assert verify(service).returncode != 0


def test_a_local_repository_is_written_as_an_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "fleet").mkdir()
    monkeypatch.chdir(tmp_path)
    assert install(tmp_path, monkeypatch, "--repo", "fleet", "--host", "kvm01") == 0
    assert f'"--repo" "{tmp_path}/fleet"' in (tmp_path / units.SERVICE).read_text()


def test_an_existing_env_file_is_kept_when_pg_conn_str_is_not_set(tmp_path, monkeypatch):
    env = tmp_path / "agent.env"
    env.write_text('PG_CONN_STR="host=/run/pg"\n')
    env.chmod(0o644)
    assert install(tmp_path, monkeypatch, "--repo", "/srv/fleet", conn=None) == 0
    assert env.read_text() == 'PG_CONN_STR="host=/run/pg"\n'
    assert stat.S_IMODE(env.stat().st_mode) == 0o600


@pytest.mark.parametrize("args, conn, message", [
    (["--repo", "/srv/fleet"], None, "PG_CONN_STR is not set"),
    (["--repo", "/srv/fleet\n[Service]"], CONN, "holds a control character"),
    (["--repo", "/srv/fleet"], "host=x\nExecStart=/bin/sh", "PG_CONN_STR 'host=x\\nExecStart=/bin/sh' holds a "),
    (["--repo", "/srv/fleet", "--interval", "0"], CONN, "the interval must be above zero"),
    (["--repo", "/srv/fleet", "--kvmnet", "/nonexistent/kvmnet"], CONN, "is not an executable file"),
    (["--repo", "/srv/fleet", "--env-file", "/nonexistent/dir/agent.env"], CONN, "is not a directory"),
    (["--repo", "/srv/fleet", "--env-file", "/tmp/with space/agent.env"], CONN, "without spaces"),
    (["--repo", "/srv/fleet", "--probe-file", "/nonexistent/probes"], CONN, "/nonexistent/probes"),
    (["--repo", "/srv/fleet", "--label", "a\tb"], CONN, "holds a control character"),
])
def test_refusals_write_nothing(tmp_path, monkeypatch, capsys, args, conn, message):
    assert install(tmp_path, monkeypatch, *args, conn=conn) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err
    assert os.listdir(tmp_path) == []


def test_exec_words_stay_literal():
    assert units.exec_arg("x", 'a b"c\\d%e$f') == '"a b\\"c\\\\d%%e$$f"'
    assert units.seconds(1.5) == "1500ms" and units.seconds(90) == "90s"
