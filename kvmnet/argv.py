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


def _own_options(cmd: click.Command, is_root: bool) -> OptionTable:
    """The options ``cmd`` itself declares."""
    long: set[str] = set()
    takes_value: set[str] = set()
    global_opts: set[str] = set()
    for p in cmd.params:
        if not isinstance(p, click.Option):
            continue
        names = list(p.opts) + list(p.secondary_opts)
        long.update(n for n in names if n.startswith("--"))
        if not p.is_flag and not p.count:
            takes_value.update(p.opts)
        if is_root:
            global_opts.update(n for n in names if n not in ("--help", "-h", "--version"))
    return OptionTable(frozenset(long), frozenset(takes_value), frozenset(global_opts))


def _merge(a: OptionTable, b: OptionTable) -> OptionTable:
    return OptionTable(a.long | b.long, a.takes_value | b.takes_value, a.global_opts | b.global_opts)


def option_table(group: click.Group, argv: list[str] | None = None) -> OptionTable:
    """The option table of ``group`` and of the commands below it: every one, or,
    given ``argv``, only the commands its words name (``fleet plan`` in ``kvmnet
    fleet plan -hosts=a*``), so that a group whose commands load lazily loads only
    the one being run."""
    if argv is None:
        return _tree_table(group)
    table = _own_options(group, True)
    cctx = click.Context(group)
    cmd: click.Command = group
    words = _before_double_dash(argv)
    while isinstance(cmd, click.Group):
        spelled, is_value = _spell(words, table)
        i = _first_positional(spelled, is_value)
        if i is None:
            break
        sub = cmd.get_command(cctx, spelled[i])
        if sub is None:
            break
        table = _merge(table, _own_options(sub, False))
        cmd, words = sub, words[i + 1:]
    return table


def _tree_table(group: click.Group) -> OptionTable:
    """The option table of ``group`` and every command below it (each loaded)."""
    table = _own_options(group, True)
    cctx = click.Context(group)
    pending: list[click.Command] = [group]
    while pending:
        cmd = pending.pop()
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(cctx):
                sub = cmd.get_command(cctx, name)
                if sub is not None:
                    table = _merge(table, _own_options(sub, False))
                    pending.append(sub)
    return table


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


def _before_double_dash(argv: list[str]) -> list[str]:
    return argv[:argv.index("--")] if "--" in argv else list(argv)


def _spell(words: list[str], table: OptionTable) -> tuple[list[str], list[bool]]:
    """Each word in kvmnet's spelling, and which words are option values."""
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
    return out, is_value


def _first_positional(words: list[str], is_value: list[bool]) -> int | None:
    """The index of the first word that is neither an option nor an option's value
    (the command's name), or None."""
    return next((i for i, (w, v) in enumerate(zip(words, is_value, strict=True))
                 if not v and not w.startswith("-")), None)


def normalize(argv: list[str], table: OptionTable) -> list[str]:
    """kvmnet's spelling of ``argv`` (see the module docstring)."""
    words = _before_double_dash(argv)
    rest = argv[len(words):]
    # pass 1: spellings; remember which words are option values
    out, is_value = _spell(words, table)
    # pass 2: global options after the first positional word (the command) move before it
    first_cmd = _first_positional(out, is_value)
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
