"""The pinned commit of the fleet repo, checked out for one agent with git (a local
path or a URL; every argument a list element, never a shell string)."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

_COMMIT = re.compile(r"[0-9a-f]{7,64}")


class CheckoutError(Exception):
    """git could not give the commit; the message says why."""


def _git(*argv: str, cwd: Path | None = None, timeout: float = 120) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        p = subprocess.run(["git", *argv], cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CheckoutError(f"git {argv[0]}: {e}") from None
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["exit status %d" % p.returncode])[-1]
        raise CheckoutError(f"git {argv[0]}: {last}")
    return p.stdout


def checkout(repo: str, commit: str, dest: Path) -> Path:
    """``dest`` holding ``commit`` of ``repo`` (cloned the first time, fetched after)."""
    if not _COMMIT.fullmatch(commit):
        raise CheckoutError(f'"{commit}" is not a commit id')
    dest = Path(dest)
    if not (dest / ".git").is_dir():
        dest.parent.mkdir(parents=True, exist_ok=True)
        _git("clone", "--quiet", "--no-checkout", "--", repo, str(dest))
    try:
        _git("cat-file", "-e", f"{commit}^{{commit}}", cwd=dest)
    except CheckoutError:
        _git("fetch", "--quiet", "--", "origin", cwd=dest)
        try:
            _git("cat-file", "-e", f"{commit}^{{commit}}", cwd=dest)
        except CheckoutError:
            raise CheckoutError(f"commit {commit} is not in {repo}") from None
    _git("-c", "advice.detachedHead=false", "checkout", "--quiet", "--force", "--detach", commit, cwd=dest)
    return dest
