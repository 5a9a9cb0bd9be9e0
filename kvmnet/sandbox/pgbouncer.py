"""A throwaway PgBouncer in front of a :class:`~kvmnet.sandbox.pgcluster.PgCluster`:
Debian's ``pgbouncer`` binary run as a child process (its system service is never
started or enabled), a config and an auth file in a temporary directory,
``pool_mode = transaction``, reachable only through a Unix socket in that directory
(no TCP port, nothing in /etc). It proves that the PostgreSQL state and the fleet
hold nothing in the server session: in transaction mode consecutive transactions of
one client connection may run on different server connections, and here they do
(``server_round_robin``, at least two server connections per pool: see :meth:`warm`),
so whatever leans on the session fails at once instead of by chance.

PgBouncer refuses to run as root, so it runs as the cluster's ``postgres`` user
(``subprocess.Popen(user=...)``, every argument a list element, never a shell
string). The server trusts local connections; PgBouncer trusts its clients too but
still admits only the user names of its auth file (:meth:`add_user`)."""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from kvmnet.sandbox.pgcluster import SUPERUSER, PgCluster

PORT = 6432     # names the socket file; the socket directory is private to this instance


def binary() -> str:
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists(
        "/usr/sbin/pgbouncer") else None)
    if not found:
        raise RuntimeError("PgBouncer is not installed (apt-get install pgbouncer)")
    return found


def version() -> tuple[int, ...]:
    """PgBouncer's version, e.g. (1, 18, 0)."""
    out = subprocess.run([binary(), "--version"], check=True, capture_output=True, text=True,
                         timeout=10, stdin=subprocess.DEVNULL).stdout
    words = out.split()
    return tuple(int(p) for p in words[1].split(".")) if len(words) > 1 else ()


def ini(socket_dir: Path, server_socket_dir: Path, auth_file: Path, log: Path,
        pool_size: int = 20) -> str:
    """The config: every database of the cluster (the ``*`` fallback), transaction
    pooling, Unix socket only."""
    return f"""[databases]
* = host={server_socket_dir} port=5432

[pgbouncer]
listen_addr =
listen_port = {PORT}
unix_socket_dir = {socket_dir}
unix_socket_mode = 0777
auth_type = trust
auth_file = {auth_file}
admin_users = {SUPERUSER}
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 2
server_round_robin = 1
max_client_conn = 1000
server_lifetime = 3600
logfile = {log}
"""


def auth_line(user: str) -> str:
    if '"' in user:
        raise ValueError(f"a PgBouncer user name cannot hold a double quote: {user!r}")
    return f'"{user}" ""\n'


class PgBouncer:
    """One running pooler; :meth:`conninfo` names a database of the cluster through it."""

    def __init__(self, cluster: PgCluster, root: Path | None = None, pool_size: int = 20):
        self.cluster = cluster
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="kvmnet-pgb-"))
        self.socket_dir = self.root
        self.ini = self.root / "pgbouncer.ini"
        self.auth_file = self.root / "users.txt"
        self.log = self.root / "pgbouncer.log"
        self.stderr = self.root / "stderr.log"
        self.pool_size = pool_size
        self.users: list[str] = [SUPERUSER]
        self.proc: subprocess.Popen[bytes] | None = None

    def _owned(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam(SUPERUSER)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _write_auth(self) -> None:
        self.auth_file.write_text("".join(auth_line(u) for u in self.users))
        self._owned(self.auth_file)

    def start(self, timeout: float = 15) -> PgBouncer:
        self._owned(self.root)
        os.chmod(self.root, 0o755)      # clients of any user reach the socket
        self.ini.write_text(ini(self.socket_dir, self.cluster.socket_dir, self.auth_file,
                                self.log, self.pool_size))
        self._owned(self.ini)
        self._write_auth()
        user = SUPERUSER if os.geteuid() == 0 else None
        with open(self.stderr, "wb") as err:     # a file, not a pipe nobody drains
            self.proc = subprocess.Popen([binary(), str(self.ini)], user=user, group=user,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, start_new_session=True)
        self._wait_listening(timeout)
        return self

    def _wait_listening(self, timeout: float) -> None:
        """Until this process logs that it is up (it listens by then): another
        PgBouncer's socket in the same place must not count."""
        assert self.proc is not None
        up = f"[{self.proc.pid}] LOG process up"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                err = " | ".join(self.stderr.read_text(errors="replace").strip().splitlines()[-3:])
                self.proc = None
                raise RuntimeError(f"pgbouncer exited at start: {err or self._log_tail()}")
            try:
                if up in self.log.read_text(errors="replace"):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pgbouncer did not start within {timeout} s: {self._log_tail()}")
            time.sleep(0.02)

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-3:])
        except OSError:
            return "(no log)"

    def _reloads(self) -> int:
        try:
            return self.log.read_text(errors="replace").count("re-reading config")
        except OSError:
            return 0

    def add_user(self, name: str, timeout: float = 5) -> None:
        """Admit ``name`` (a role of the cluster, e.g. an agent's): rewrite the auth
        file and reload (SIGHUP), waiting until PgBouncer has logged the reload."""
        if name in self.users:
            return
        self.users.append(name)
        self._write_auth()
        if self.proc is None or self.proc.poll() is not None:
            return
        before = self._reloads()
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self._reloads() <= before:
            if time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not reload within {timeout} s: {self._log_tail()}")
            time.sleep(0.01)

    def warm(self, conninfo: str, sessions: int = 2) -> str:
        """Make the pool of ``conninfo`` (a database and user through this pooler)
        hold ``sessions`` server connections now, by holding that many transactions
        open at once; with ``server_round_robin`` a client's consecutive
        transactions then run in different server sessions from the first one.
        Returns ``conninfo``."""
        import psycopg
        conns = [psycopg.connect(conninfo, autocommit=True, prepare_threshold=None)
                 for _ in range(sessions)]
        try:
            for c in conns:
                c.execute("BEGIN")
                c.execute("SELECT 1")
            for c in conns:
                c.execute("COMMIT")
        finally:
            for c in conns:
                c.close()
        return conninfo

    def stop(self) -> None:
        """SIGINT: PgBouncer's immediate shutdown (clients are disconnected)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def conninfo(self, dbname: str = "postgres", user: str = SUPERUSER) -> str:
        return f"host={self.socket_dir} port={PORT} dbname={dbname} user={user}"

    def pooled(self, conninfo: str) -> str:
        """``conninfo`` of the cluster (as :meth:`PgCluster.conninfo` writes it) made
        to go through this pooler: the same database and user."""
        from psycopg.conninfo import conninfo_to_dict
        d = conninfo_to_dict(conninfo)
        return self.conninfo(str(d.get("dbname") or "postgres"), str(d.get("user") or SUPERUSER))
