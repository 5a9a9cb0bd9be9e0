"""The netplan file on disk: reading it and the other netplan files, validating a
new version with ``netplan generate`` in a scratch root, and replacing it atomically."""
from __future__ import annotations

import glob
import os
import shutil
import stat
import subprocess
import tempfile

from kvmnet.sdk.files import atomic_write, fsync_dir
from kvmnet.sdk.provider import ProviderError
from kvmnet.providers.netns import timed_out
from kvmnet.providers.timeouts import DEFAULT
from kvmnet.providers.netplan.render import FILE_NAME, defined_ids

NETPLAN_DIRS = ("lib/netplan", "etc/netplan", "run/netplan")   # netplan's search path


def file_path(root_dir: str) -> str:
    return os.path.join(root_dir, "etc", "netplan", FILE_NAME)


_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO (named pipe)",
          stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket"}


def read_text(path: str) -> str | None:
    """The file's text, None when there is none. Anything but a regular file is
    refused, unread: a FIFO would block kvmnet (holding the state lock) for good."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    kind = stat.S_IFMT(os.fstat(fd).st_mode)
    if kind != stat.S_IFREG:
        os.close(fd)
        raise ProviderError(f"{path} is {_KINDS.get(kind, 'not a regular file')}, not a "
                            "netplan file: move it away and run kvmnet again")
    with os.fdopen(fd, encoding="utf-8") as f:
        return f.read()


def other_files(root_dir: str) -> list[tuple[str, str]]:
    """The netplan YAML files under ``root_dir`` other than kvmnet's, as
    (path relative to root_dir, text)."""
    out = []
    ours = os.path.abspath(file_path(root_dir))
    for d in NETPLAN_DIRS:
        for path in sorted(glob.glob(os.path.join(root_dir, d, "*.yaml"))):
            if os.path.abspath(path) == ours:
                continue
            text = read_text(path)
            if text is not None:
                out.append((os.path.relpath(path, root_dir), text))
    return out


def ids_defined_elsewhere(root_dir: str) -> set[str]:
    ids: set[str] = set()
    for _rel, text in other_files(root_dir):
        ids |= defined_ids(text)
    return ids


def _write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def validate(root_dir: str, text: str, timeout: float = DEFAULT) -> None:
    """Run ``netplan generate --root-dir SCRATCH`` on the other netplan files of
    ``root_dir`` plus ``text`` as kvmnet's file; raise netplan's message on error.

    netplan's ``file:line:col`` points into the scratch copy; the message names the
    real path instead. ``netplan generate`` still running after ``timeout``
    seconds is killed.
    """
    scratch = tempfile.mkdtemp(prefix="kvmnet-netplan-")
    try:
        for rel, other in other_files(root_dir):
            os.makedirs(os.path.dirname(os.path.join(scratch, rel)), exist_ok=True)
            _write_private(os.path.join(scratch, rel), other)
        ours = file_path(scratch)
        os.makedirs(os.path.dirname(ours), exist_ok=True)
        _write_private(ours, text)
        try:
            cp = subprocess.run(["netplan", "generate", "--root-dir", scratch],
                                capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError as e:
            raise ProviderError("netplan: command not found (install netplan.io)") from e
        except subprocess.TimeoutExpired:
            raise timed_out(["netplan", "generate"], timeout) from None
        if cp.returncode != 0:
            real = os.path.normpath(root_dir).rstrip("/")
            msg = (cp.stderr or cp.stdout).strip().replace(scratch, real)
            raise ProviderError(f"netplan generate rejected the new {file_path(root_dir)} "
                                f"(the old file is kept):\n{msg}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def replace(path: str, text: str | None) -> None:
    """Replace ``path`` atomically (temp file, fsync, rename; mode 0600), or remove
    it when ``text`` is None."""
    directory = os.path.dirname(path)
    if text is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        fsync_dir(directory)
    else:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        atomic_write(path, text, 0o600)
