"""A throwaway PostgreSQL server: Debian's ``postgresql`` binaries, a cluster in a
temporary directory, reachable only through a Unix socket in that directory (no TCP
port, nothing in /etc), fsync off. The fleet and PostgreSQL-state tests' real server.

initdb refuses to run as root, so the cluster belongs to the ``postgres`` user and its
commands run through ``runuser``; every argument is a list element, never a shell
string."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "postgres"


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    return Path(found[-1]).parent


class PgCluster:
    """One running cluster; :meth:`conninfo` names a database in it."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="kvmnet-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.log = self.root / "server.log"
        self.bin = _bindir()
        self.running = False

    def _run(self, *argv: str | Path, timeout: float = 60) -> None:
        cmd = [str(a) for a in argv]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", SUPERUSER, "--", *cmd]
        subprocess.run(cmd, check=True, timeout=timeout, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> PgCluster:
        if os.geteuid() == 0:
            pw = pwd.getpwnam(SUPERUSER)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        os.chmod(self.root, 0o700)
        if not self.data.exists():
            self._run(self.bin / "initdb", "-D", self.data, "-A", "trust", "-U", SUPERUSER,
                      "-E", "UTF8", "--no-sync", "--no-instructions")
        self._run(self.bin / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-o",
                  f"-k {self.socket_dir} -c listen_addresses= -F -c max_connections=300",
                  "start")
        self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server, also one whose start was interrupted (its pid file is
        there though :meth:`start` never returned)."""
        if self.running or (self.data / "postmaster.pid").exists():
            self._run(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")
            self.running = False

    def restart(self) -> None:
        """Stop and start again (the data stays): a server restart mid-run."""
        self.stop()
        self.start()

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def conninfo(self, dbname: str = "postgres", user: str = SUPERUSER) -> str:
        return f"host={self.socket_dir} dbname={dbname} user={user}"

    def create_database(self, name: str) -> str:
        """A fresh database; its connection string."""
        self._run(self.bin / "createdb", "-h", self.socket_dir, "-U", SUPERUSER, name)
        return self.conninfo(name)
