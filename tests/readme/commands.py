"""The ``kvmnet`` commands the README shows, and each one in both spellings.

``readme_commands`` finds every command: the ``$ kvmnet ...`` lines of its code
blocks and every inline code span that starts with ``kvmnet `` (the commands
table, the prose), in the order they appear, cut at a pipe, a redirection or a
comment. ``spell(words, table, terraform)`` writes one in kvmnet's double-dash
spelling (global options before the command, ``--out F``) or in Terraform's
(``-chdir=DIR`` first, then the command, then ``-flag=VALUE`` options, then the
arguments).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from kvmnet.argv import OptionTable

_INLINE = re.compile(r"`(kvmnet [^`]+)`")
_PROMPT = re.compile(r"^\$ (kvmnet .*)$", re.M)
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def readme_commands(text: str) -> list[str]:
    """Every command shown, in order of appearance, each once."""
    found: list[tuple[int, str]] = []
    for block in _FENCE.finditer(text):
        for m in _PROMPT.finditer(block.group(0)):
            found.append((block.start() + m.start(), m.group(1)))
    outside = _FENCE.sub(lambda m: " " * len(m.group(0)), text)
    for m in _INLINE.finditer(outside):
        found.append((m.start(), m.group(1)))
    seen, out = set(), []
    for _pos, cmd in sorted(found):
        cmd = " ".join(re.split(r"\s\\?\|\s|\s>\s|\s#\s|\s{2,}#", cmd)[0].split())
        if cmd not in seen:
            seen.add(cmd)
            out.append(cmd)
    return out


@dataclass
class Parsed:
    globals: list[tuple[str, str | None]] = field(default_factory=list)   # (long name, value)
    command: list[str] = field(default_factory=list)
    options: list[tuple[str, str | None]] = field(default_factory=list)
    args: list[str] = field(default_factory=list)


GROUPS = ("state", "sandbox", "fleet")
SHORT = {"-C": "--chdir"}


def parse(words: list[str], table: OptionTable) -> Parsed:
    """A command's words (after ``kvmnet``) split into global options, command,
    options and arguments, whatever the spelling."""
    p = Parsed()
    i = 0
    while i < len(words):
        w = words[i]
        if w.startswith("-") and not re.fullmatch(r"-\d+", w):
            name, eq, value = w.partition("=")
            name = SHORT.get(name, name)
            if not name.startswith("--"):
                name = "-" + name
            if not eq and (name in table.takes_value):
                i += 1
                value = words[i]
            entry = (name, value if (eq or name in table.takes_value) else None)
            (p.globals if name in table.global_opts else p.options).append(entry)
        elif not p.command or (p.command[0] in GROUPS and len(p.command) == 1):
            p.command.append(w)
        else:
            p.args.append(w)
        i += 1
    return p


def spell(words: list[str], table: OptionTable, terraform: bool) -> list[str]:
    """``words`` (after ``kvmnet``) in one spelling (see the module docstring)."""
    p = parse(words, table)
    if not terraform:
        out: list[str] = []
        for name, value in p.globals:
            out += [name] + ([value] if value is not None else [])
        out += p.command
        for name, value in p.options:
            out += [name] + ([value] if value is not None else [])
        return out + p.args

    def single(name: str, value: str | None) -> str:
        return name[1:] + (f"={value}" if value is not None else "")

    chdir = [single(n, v) for n, v in p.globals if n == "--chdir"]
    rest = [single(n, v) for n, v in p.options + [g for g in p.globals if g[0] != "--chdir"]]
    return chdir + p.command + rest + p.args


def split(command: str) -> list[str]:
    """The words after ``kvmnet`` of one README command."""
    words = shlex.split(command)
    assert words[0] == "kvmnet", command
    return words[1:]
