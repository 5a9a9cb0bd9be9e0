"""Every command the README shows, in kvmnet's and in Terraform's spelling, reaches
the same command with the same parameters (no root: click parses, nothing runs;
tests/real/test_readme_commands.py runs them)."""
from __future__ import annotations

from pathlib import Path

import click

from kvmnet.argv import normalize, option_table
from kvmnet.cli import cli
from tests.readme.commands import readme_commands, spell, split

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def invocation(argv: list[str]) -> list[tuple[str, dict]]:
    """(command name, parameters) from the group down to the command ``argv`` runs."""
    table = option_table(cli)
    words = normalize(list(argv), table)
    out = []
    cmd: click.Command = cli
    ctx = cmd.make_context("kvmnet", words, resilient_parsing=True)
    while True:
        out.append((cmd.name or "", dict(ctx.params)))
        if not isinstance(cmd, click.Group):
            return out
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]   # click 8.2: protected_args is deprecated
        if not rest:
            return out
        _name, sub, args = cmd.resolve_command(ctx, rest)
        assert sub is not None
        cmd, ctx = sub, sub.make_context(_name, args, parent=ctx, resilient_parsing=True)


def test_the_readme_shows_commands_with_flags():
    commands = readme_commands(README)
    assert len(commands) > 40
    assert "kvmnet plan --out tonight.plan" in commands
    assert "kvmnet graph --format dot" in commands               # cut at the pipe
    assert "kvmnet plan --detailed-exitcode" in commands         # cut at the comment


def test_both_spellings_of_every_readme_command_are_one_invocation():
    table = option_table(cli)
    for command in readme_commands(README):
        words = split(command)
        double, single = spell(words, table, False), spell(words, table, True)
        assert invocation(double) == invocation(single), (command, double, single)
        assert invocation(double) == invocation(words), command


def test_spellings():
    table = option_table(cli)
    words = split("kvmnet --var-file prod.tfvars -C infra plan --out p.bin --refresh=false")
    assert spell(words, table, True) == ["-chdir=infra", "plan", "-out=p.bin", "-refresh=false",
                                         "-var-file=prod.tfvars"]
    assert spell(words, table, False) == ["--var-file", "prod.tfvars", "--chdir", "infra", "plan",
                                          "--out", "p.bin", "--refresh", "false"]
    assert spell(split("kvmnet state show network.a"), table, True) == ["state", "show", "network.a"]
