"""``sslmode`` in a connection string reaches libpq, for every way kvmnet connects:
the fleet commands, the agent, and the PostgreSQL state (PG_CONN_STR for a ``backend
"pg"`` block). The throwaway cluster listens on a Unix socket only, where libpq
ignores sslmode, so the server here is a TCP listener that answers libpq's
SSLRequest with "no SSL" as a server without SSL does: libpq then refuses to go on
under ``sslmode=require``, and says so; with ``sslmode=disable`` it sends no
SSLRequest at all."""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.real]

SSL_REQUEST = 80877103      # the protocol's SSLRequest code


@pytest.fixture
def no_ssl_server():
    """127.0.0.1:PORT answering an SSLRequest with 'N'; the first codes it received."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    seen: list[int] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            with c:
                c.settimeout(5)
                try:
                    head = c.recv(8)
                    if len(head) == 8:
                        code = struct.unpack("!II", head)[1]
                        seen.append(code)
                        if code == SSL_REQUEST:
                            c.sendall(b"N")
                            c.recv(1024)
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1], seen
    stop.set()
    t.join()
    srv.close()


def _kvmnet(*argv, env=None):
    return subprocess.run([sys.executable, "-m", "kvmnet", *argv], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "KVMNET_PG_RETRY_SECONDS": "0", **(env or {})}, timeout=60)


def test_sslmode_require_is_honoured_by_every_connection(no_ssl_server, tmp_path):
    port, seen = no_ssl_server
    conn = f"host=127.0.0.1 port={port} dbname=fleet user=kvm01 connect_timeout=3 sslmode=require"
    host = tmp_path / "hosts" / "kvm01"
    host.mkdir(parents=True)
    (host / "main.hcl").write_text('kvmnet {\n  backend "pg" {}\n}\n')
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    for argv, env in [(["fleet", "status", "--conn-str", conn], None),
                      (["fleet", "apply", "--commit", sha, "--repo", str(tmp_path), "--conn-str", conn], None),
                      (["agent", "run", "--repo", str(tmp_path), "--host", "kvm01", "--once",
                        "--workdir", str(tmp_path / "w"), "--conn-str", conn], None),
                      (["-C", str(host), "state", "list"], {"PG_CONN_STR": conn})]:
        r = _kvmnet(*argv, env=env)
        assert r.returncode == 1, argv
        assert r.stderr.count("Error:") == 1 and "SSL was required" in r.stderr, (argv, r.stderr)
    assert seen and set(seen) == {SSL_REQUEST}
    seen.clear()
    r = _kvmnet("fleet", "status", "--conn-str", conn.replace("sslmode=require", "sslmode=disable"))
    assert r.returncode == 1 and r.stderr.count("Error:") == 1
    assert seen and SSL_REQUEST not in seen         # the startup packet came first
