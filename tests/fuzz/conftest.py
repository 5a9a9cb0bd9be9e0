"""The fuzz suite's child process: one long-lived ``worker.py`` per module, fed one
input at a time, restarted after a crash or a hang."""
from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("worker.py")
TIMEOUT = 20.0   # seconds for one input; generous: the machine is shared


class Worker:
    def __init__(self, cache_home: Path):
        self.cache_home = cache_home
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, XDG_CACHE_HOME=str(self.cache_home), PYTHONHASHSEED="0")
        self.proc = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                     text=True, encoding="utf-8", errors="surrogateescape")

    def stop(self) -> str:
        """Stop the child; returns what it wrote to stderr."""
        if self.proc is None:
            return ""
        proc, self.proc = self.proc, None
        proc.kill()
        _, err = proc.communicate()
        return err or ""

    def run(self, files: dict[str, str], env: dict | None = None, args=None) -> dict:
        """The child's answer; ``{"dead": ...}`` when it died, ``{"hang": ...}`` on a timeout."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        request = {"files": files, "env": env or {}}
        if args is not None:
            request["args"] = args
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return {"dead": self.stop()}
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        if not ready:
            self.stop()
            return {"hang": f"no answer within {TIMEOUT} s"}
        line = self.proc.stdout.readline()
        if not line:
            return {"dead": self.stop()[-4000:]}
        return json.loads(line)


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    home = tmp_path_factory.mktemp("xdg")
    # the grammar's tables, if this user has them, spare the child a 1-10 s build
    src = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kvmnet" / "grammar"
    if src.is_dir():
        (home / "kvmnet").mkdir(mode=0o700)
        shutil.copytree(src, home / "kvmnet" / "grammar")
        os.chmod(home / "kvmnet" / "grammar", 0o700)
    w = Worker(home)
    yield w
    w.stop()
