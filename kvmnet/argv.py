"""Terraform's flag spellings, turned into kvmnet's before click parses them.

Terraform users type ``-out=F``, ``-var 'k=v'``, ``-auto-approve`` and put global
settings after the command name (``terraform plan -var-file=x``); kvmnet's own
spelling is ``--out F`` with global settings before the command. Both work:

- a single-dash word naming a long option that the command line knows
  (``-out``, ``-out=F``) becomes its double-dash form; short options (``-C``,
  ``-h``), negative numbers and option values are left alone;
- ``-chdir=DIR`` (Terraform's, before the command) is ``--chdir`` (= ``-C``: both change
  into DIR first, as Terraform does);
- a global option (``--var``, ``--var-file``, ``--state``, ``--no-color``,
  ``--lock-timeout``, ``-C``) found after the command name moves before it.

The rewrite is a pure function of the words and of the option table read from the
click command tree; nothing after a ``--`` word is touched.
"""
from __future__ import annotations

from dataclasses import dataclass

import click


@dataclass(frozen=True)
class OptionTable:
    """What the command line knows: every long option, which take a value, and the
    global ones (the group's own options)."""

    long: frozenset[str]              # "--out", "--var", ...
    takes_value: frozenset[str]       # long and short options that take a value
    global_opts: frozenset[str]       # the group's options (long and short)


def option_table(group: click.Group) -> OptionTable:
    """The option table of ``group`` and every command below it."""
    long: set[str] = set()
    takes_value: set[str] = set()
    global_opts: set[str] = set()

    def visit(cmd: click.Command, is_root: bool) -> None:
        for p in cmd.params:
            if not isinstance(p, click.Option):
                continue
            names = list(p.opts) + list(p.secondary_opts)
            long.update(n for n in names if n.startswith("--"))
            if not p.is_flag and not p.count:
                takes_value.update(p.opts)
            if is_root:
                global_opts.update(names)
        if isinstance(cmd, click.Group):
            for sub in cmd.commands.values():
                visit(sub, False)

    visit(group, True)
    global_opts.discard("--help")
    global_opts.discard("-h")
    global_opts.discard("--version")
    return OptionTable(frozenset(long), frozenset(takes_value), frozenset(global_opts))


def _double_dash(word: str, table: OptionTable) -> str:
    """``-out=F`` → ``--out=F`` when ``--out`` is a known long option; else ``word``."""
    if not word.startswith("-") or word.startswith("--") or len(word) <= 2:
        return word
    name = word.partition("=")[0]
    if "--" + name[1:] in table.long:
        return "-" + word
    return word


def _option_name(word: str) -> str:
    return word.partition("=")[0] if word.startswith("--") else word[:2] if word.startswith("-") else word


def _value_attached(word: str) -> bool:
    """``--out=F`` and ``-CDIR`` carry their value; ``--out`` and ``-C`` do not."""
    return "=" in word if word.startswith("--") else len(word) > 2


def normalize(argv: list[str], table: OptionTable) -> list[str]:
    """kvmnet's spelling of ``argv`` (see the module docstring)."""
    words: list[str] = []
    rest: list[str] = []
    for i, word in enumerate(argv):
        if word == "--":
            rest = argv[i:]
            break
        words.append(word)
    # pass 1: spellings; remember which words are option values
    out: list[str] = []
    is_value: list[bool] = []
    expect_value = False
    for word in words:
        if expect_value:
            out.append(word)
            is_value.append(True)
            expect_value = False
            continue
        w = _double_dash(word, table)
        out.append(w)
        is_value.append(False)
        name = _option_name(w)
        if name in table.takes_value and not _value_attached(w):
            expect_value = True
    # pass 2: global options after the first positional word (the command) move before it
    first_cmd = next((i for i, (w, v) in enumerate(zip(out, is_value, strict=True))
                      if not v and not w.startswith("-")), None)
    if first_cmd is None:
        return out + rest
    head, moved, tail = out[:first_cmd], [], []
    i = first_cmd
    while i < len(out):
        w = out[i]
        name = _option_name(w)
        if not is_value[i] and name in table.global_opts:
            moved.append(w)
            if i + 1 < len(out) and is_value[i + 1]:
                moved.append(out[i + 1])
                i += 1
        else:
            tail.append(w)
        i += 1
    return head + moved + tail + rest
