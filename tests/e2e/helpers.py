"""Helpers for end-to-end tests: the real ``kvmnet`` CLI in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def run_kvmnet(dir, *args: str, state=None, env: dict | None = None,
               input: str | None = None, timeout: float = 60) -> tuple[int, str, str]:
    """``python -m kvmnet -C DIR [--state S] ARGS...`` → (exit code, stdout, stderr).

    stdin is a pipe (never a terminal), colour is off, and the parse cache lives in
    the test's own directory so parallel sessions never share it.
    """
    argv = [sys.executable, "-m", "kvmnet", "-C", str(dir)]
    if state is not None:
        argv += ["--state", str(state)]
    argv += [str(a) for a in args]
    full_env = dict(os.environ)
    full_env.setdefault("XDG_CACHE_HOME", str(Path(dir).parent / ".kvmnet-cache"))
    full_env["NO_COLOR"] = "1"
    full_env.pop("KVMNET_STATE", None)
    if env:
        full_env.update(env)
    cp = subprocess.run(argv, capture_output=True, text=True, env=full_env,
                        input=input if input is not None else "", timeout=timeout)
    return cp.returncode, cp.stdout, cp.stderr


def write_config(dir, text: str, name: str = "main.hcl") -> Path:
    """Write one config file (dedented) into ``dir`` and return its path."""
    d = Path(dir)
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


def file_fingerprint(path) -> tuple | None:
    """(bytes, mtime_ns) of a file, or None when it does not exist: 'unchanged' checks.

    The state is SQLite in WAL mode, so a commit may sit in ``PATH-wal`` until a
    checkpoint: that file's non-empty contents are part of the fingerprint too.
    """
    p = Path(path)
    if not p.exists():
        return None
    wal = Path(str(p) + "-wal")
    wal_bytes = wal.read_bytes() if wal.exists() else b""
    return p.read_bytes(), p.stat().st_mtime_ns, wal_bytes or None


def selected_tests(request) -> set[str]:
    """Names of the collected tests of the requesting module (so a module fixture
    that runs scenarios up front runs only those ``-k`` selected)."""
    return {item.name for item in request.session.items
            if getattr(item, "module", None) is request.module}


def run_concurrently(jobs: dict, workers: int = 4) -> dict:
    """Run ``{name: callable}`` in threads; ``{name: exception or None}``.

    Each CLI call is a separate process, so threads give real parallelism; the
    exception keeps its traceback, so re-raising it in the test shows where it failed.
    """
    from concurrent.futures import ThreadPoolExecutor

    def guarded(fn):
        try:
            fn()
        except BaseException as e:   # noqa: BLE001 - reported by the test that owns it
            return e
        return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(guarded, fn) for name, fn in jobs.items()}
        return {name: f.result() for name, f in futures.items()}


class ConcurrentScenarios:
    """Scenarios of one test module that run side by side, each in a fresh environment
    made by ``run_in(fn, root)`` (a job for :func:`run_concurrently`), and are reported
    as one pytest test each, with the scenario's own traceback.

    Use as a decorator (``@scenario``) on the scenario functions, then call
    ``scenario.install(globals())`` at the end of the module.
    """

    def __init__(self, label: str, run_in):
        self.label = label
        self.run_in = run_in
        self.funcs: dict = {}

    def __call__(self, fn):
        self.funcs[fn.__name__] = fn
        return fn

    def install(self, namespace: dict) -> None:
        import pytest

        funcs, run_in, label = self.funcs, self.run_in, self.label

        @pytest.fixture(scope="module")
        def outcomes(request, tmp_path_factory) -> dict:
            wanted = {n[len("test_"):] for n in selected_tests(request)}
            root = tmp_path_factory.mktemp(label)
            return run_concurrently({n: run_in(fn, root) for n, fn in funcs.items() if n in wanted})

        def report(name: str):
            def test(outcomes):
                error = outcomes[name]
                if error is not None:
                    raise error
            test.__name__ = f"test_{name}"
            test.__doc__ = funcs[name].__doc__
            return test

        namespace["outcomes"] = outcomes
        for name in funcs:
            namespace[f"test_{name}"] = report(name)


class SandboxNetworkConfig:
    """A config directory with the sandbox libvirtd's provider block and one
    ``network`` (``template``: HCL with an ``{extra}`` slot for attributes one test
    adds), and the state file beside it."""

    template = ""

    def __init__(self, sb, tmp_path: Path):
        self.sb = sb
        self.cfg = tmp_path / "cfg"
        self.state = tmp_path / "kvmnet.state.db"
        self.cfg.mkdir(parents=True, exist_ok=True)     # -C enters it, as Terraform's -chdir

    def write(self, extra: str = "") -> None:
        write_config(self.cfg, f'provider "libvirt" {{\n  uri = "{self.sb.uri}"\n}}\n'
                     + self.template.format(extra=extra))

    def run(self, *args):
        return run_kvmnet(self.cfg, "--no-color", *args, state=self.state, timeout=120)
