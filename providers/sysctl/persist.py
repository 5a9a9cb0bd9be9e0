"""The persistent file of a profile: ``<persist_dir>/90-kvmnet-<name>.conf``.

A sysctl.d(5) file whose first line is the ownership mark as a comment, then the
value each key had before kvmnet first set it as ``# original: key = value`` comment
lines (so a profile adopted after a crash, whose state record was never written,
can still be restored), then ``key = value`` lines. With ``persist = false`` the
file keeps only the comments (sysctl ignores it at boot): it is the record of the
originals, written before the first value is. Rendering and parsing are pure;
writing is atomic (a temp file in the same directory, then rename) with mode 0644.

File names are derived from the whole address so that two instances never share
one (:func:`file_name`); files named by older kvmnet versions
(:func:`legacy_file_name`) are still read, and replaced by the new name on the
profile's next change.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field

from kvmnet.sdk.ownership import Mark, parse_mark
from kvmnet.sdk.files import atomic_write, remove_leftovers

PREFIX = "90-kvmnet-"
SUFFIX = ".conf"
_KEY = r'(?:\[(?P<key>\d+|"(?:[^"\\]|\\.)*")\])?'
_MODULE_STEP = re.compile(r'module\.(?P<name>[A-Za-z0-9_-]+)' + _KEY + r'\.')
_ADDRESS = re.compile(r'^(?P<modules>(?:module\.[A-Za-z0-9_-]+(?:\[(?:\d+|"(?:[^"\\]|\\.)*")\])?\.)*)'
                      r'[A-Za-z0-9_-]+\.(?P<name>[A-Za-z0-9_-]+)(?:\[(?P<key>.*)\])?$')
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_KEEP = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ORIGINAL = "original:"
MAX_STEM = 180        # leaves room in NAME_MAX (255) for the prefix, suffix and temp name


@dataclass(frozen=True)
class PersistFile:
    path: str
    mark: Mark | None
    settings: dict[str, str]
    text: str
    original: dict[str, str] = field(default_factory=dict)


def _split(address: str) -> tuple[list[tuple[str, str | None]], str, str | None]:
    """(module steps as (name, key), resource name, key) of an address."""
    m = _ADDRESS.match(address)
    if not m:
        raise ValueError(f"not a resource address: {address!r}")
    steps = [(s.group("name"), s.group("key")) for s in _MODULE_STEP.finditer(m.group("modules"))]
    return steps, m.group("name"), m.group("key")


def _stem(name: str, key: str | None) -> str:
    if key is None:
        return name
    if key.isdigit():
        return f"{name}.{key}"
    return f"{name}.s-{_escape(_unquote(key))}"


def _unquote(key: str) -> str:
    return key[1:-1].replace('\\"', '"').replace("\\\\", "\\") if key.startswith('"') else key


def _escape(text: str) -> str:
    """Letters, digits, ``_`` and ``-`` as they are; every other byte as ``%XX``."""
    return "".join(chr(b) if b in _KEEP else f"%{b:02X}" for b in text.encode("utf-8"))


def file_name(address: str) -> str:
    """``90-kvmnet-<stem>.conf`` for a resource address, one stem per address.

    ``sysctl_profile.tuning`` → ``tuning``; ``…tuning[0]`` → ``tuning.0``;
    ``…tuning["web"]`` → ``tuning.s-web``; in a for_each key every byte other than
    a letter, digit, ``_`` or ``-`` becomes ``%XX`` (``["a b"]`` → ``.s-a%20b``). In
    a module, each module call of the path comes first, named the same way and
    followed by ``+`` (``module.net["a"].sysctl_profile.t`` → ``net.s-a+t``). A
    resource name has no ``.`` and no name or escaped key has a ``+``, so the stem is
    injective. A stem longer than :data:`MAX_STEM` is cut and ends in a hash of the
    address (the provider's plan check reports the collision such a cut could in
    theory make).
    """
    steps, name, key = _split(address)
    stem = "".join(_stem(n, k) + "+" for n, k in steps) + _stem(name, key)
    if len(stem) > MAX_STEM:
        digest = hashlib.sha256(address.encode("utf-8")).hexdigest()[:16]
        stem = f"{stem[:MAX_STEM - 17]}~{digest}"
    return f"{PREFIX}{stem}{SUFFIX}"


def legacy_file_name(address: str) -> str:
    """The name older kvmnet versions gave the file (``tuning-0``, ``tuning-web``;
    other characters of a key as ``-``; a module's path left out, as they never
    named a profile in a module): two addresses could share it."""
    _steps, name, key = _split(address)
    if key is not None:
        key = _UNSAFE.sub("-", _unquote(key)).strip("-.")
        if key:
            name = f"{name}-{key}"
    return f"{PREFIX}{name}{SUFFIX}"


def render(mark: str, settings: dict[str, str], original: dict[str, str] | None = None,
           *, persist: bool = True) -> str:
    """The file's text; with ``persist`` False only the comments (mark, originals)."""
    lines = [f"# {mark}", "# Managed by kvmnet: edits here are overwritten or reported as drift."]
    if not persist:
        lines.append("# persist = false: a record of the values from before kvmnet, nothing to apply.")
    lines += [f"# {_ORIGINAL} {k} = {v}".rstrip() for k, v in sorted((original or {}).items())]
    if persist:
        lines += [f"{k} = {v}" for k, v in sorted(settings.items())]
    return "\n".join(lines) + "\n"


def parse(text: str) -> tuple[Mark | None, dict[str, str]]:
    """The mark (from the first comment line that is one) and the settings."""
    mark = None
    settings: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line[0] in "#;":
            if mark is None:
                mark = parse_mark(line[1:])
            continue
        key, eq, value = line.partition("=")
        if eq:
            settings[key.strip().lstrip("-")] = " ".join(value.split())
    return mark, settings


def parse_original(text: str) -> dict[str, str]:
    """The ``# original: key = value`` comment lines: the values from before kvmnet."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("#"):
            continue
        body = line[1:].strip()
        if body.startswith(_ORIGINAL):
            key, eq, value = body[len(_ORIGINAL):].partition("=")
            if eq and key.strip():
                out[key.strip()] = " ".join(value.split())
    return out


def scan(directory: str) -> list[PersistFile]:
    """Every ``90-kvmnet-*.conf`` file in ``directory`` (none when it does not exist)."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    found = []
    for n in names:
        if n.startswith(PREFIX) and n.endswith(SUFFIX):
            pf = read(os.path.join(directory, n))
            if pf is not None:
                found.append(pf)
    return found


def read(path: str) -> PersistFile | None:
    """The file at ``path``, or None when there is none (or it is not a regular text
    file: a FIFO is not opened for reading, which would block for good)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    try:
        with os.fdopen(fd, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        return None
    mark, settings = parse(text)
    return PersistFile(path, mark, settings, text, parse_original(text))


def write(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically, mode 0644 (temp files a killed run
    left for it are removed first)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    remove_leftovers(path)
    atomic_write(path, text, 0o644)


def remove(path: str) -> None:
    remove_leftovers(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
