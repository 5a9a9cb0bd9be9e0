"""The persistent file of a profile: ``<persist_dir>/90-kvmnet-<name>.conf``.

A sysctl.d(5) file whose first line is the ownership mark as a comment, then the
value each key had before kvmnet first set it as ``# original: key = value`` comment
lines (so a profile adopted after a crash, whose state record was never written,
can still be restored), then ``key = value`` lines. Rendering and parsing are pure;
writing is atomic (a temp file in the same directory, then rename) with mode 0644.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from kvmnet.sdk.ownership import Mark, parse_mark
from kvmnet.sdk.files import atomic_write

PREFIX = "90-kvmnet-"
SUFFIX = ".conf"
_ADDRESS = re.compile(r'^[A-Za-z0-9_-]+\.(?P<name>[A-Za-z0-9_-]+)(?:\[(?P<key>.*)\])?$')
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_ORIGINAL = "original:"


@dataclass(frozen=True)
class PersistFile:
    path: str
    mark: Mark | None
    settings: dict[str, str]
    text: str
    original: dict[str, str] = field(default_factory=dict)


def file_name(address: str) -> str:
    """``90-kvmnet-<name>.conf`` for a resource address.

    ``sysctl_profile.tuning`` → ``tuning``; ``…tuning[0]`` → ``tuning-0``;
    ``…tuning["web"]`` → ``tuning-web``. Characters other than letters, digits, ``_``,
    ``.`` and ``-`` in a for_each key become ``-``.
    """
    m = _ADDRESS.match(address)
    if not m:
        raise ValueError(f"not a resource address: {address!r}")
    name, key = m.group("name"), m.group("key")
    if key is not None:
        key = key[1:-1].replace('\\"', '"').replace("\\\\", "\\") if key.startswith('"') else key
        key = _UNSAFE.sub("-", key).strip("-.")
        if key:
            name = f"{name}-{key}"
    return f"{PREFIX}{name}{SUFFIX}"


def render(mark: str, settings: dict[str, str], original: dict[str, str] | None = None) -> str:
    lines = [f"# {mark}", "# Managed by kvmnet: edits here are overwritten or reported as drift."]
    lines += [f"# {_ORIGINAL} {k} = {v}".rstrip() for k, v in sorted((original or {}).items())]
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
            path = os.path.join(directory, n)
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
                continue
            mark, settings = parse(text)
            found.append(PersistFile(path, mark, settings, text, parse_original(text)))
    return found


def write(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically, mode 0644."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    atomic_write(path, text, 0o644)


def remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
