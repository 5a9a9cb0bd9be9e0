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



def _ask(where: Path, *argv: str) -> tuple[str | None, str]:
    """What ``git ARGV`` prints in ``where``, or None and git's reason when it fails."""
    try:
        return _git(*argv, cwd=where, timeout=30).strip(), ""
    except CheckoutError as e:
        return None, str(e)


def resolve(repo: str | None, commit: str) -> str:
    """The full id of ``commit`` (a hex id, abbreviated to 7 digits or more) in the
    local git repository ``repo`` (None: the current directory, when it is a git
    work tree), so that a rollout names each commit one way only and never one
    its repository lacks."""
    if not _COMMIT.fullmatch(commit or ""):
        raise CheckoutError(f'--commit "{commit}" is not a commit id (7 to 64 lowercase hex digits)')
    if repo is None:
        where = Path.cwd()
        inside, why = _ask(where, "rev-parse", "--is-inside-work-tree")
        if inside != "true":
            raise CheckoutError(f"{where} is not a git work tree ({why or 'no work tree here'}): give --repo DIR, "
                                f"the fleet repository holding commit {commit}")
    else:
        where = Path(repo)
        if not where.is_dir():
            raise CheckoutError(f"--repo {repo}: no such directory")
        found, why = _ask(where, "rev-parse", "--git-dir")
        if found is None:
            raise CheckoutError(f"--repo {repo}: not a git repository ({why})")
    full, _ = _ask(where, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
    if full is None:
        raise CheckoutError(f"commit {commit} is not in {where}, or names more than one there "
                            f"(check it with git rev-parse {commit}; fetch it, or give more digits)")
    return full
