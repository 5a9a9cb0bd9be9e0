"""Terraform's flag spellings become kvmnet's (kvmnet/argv.py), read off the real
click command tree."""
from __future__ import annotations

import pytest

from kvmnet.argv import normalize, option_table
from kvmnet.cli import cli

TABLE = option_table(cli)


@pytest.mark.parametrize("terraform, kvmnet", [
    (["plan", "-out=p.bin"], ["plan", "--out=p.bin"]),
    (["plan", "-out", "p.bin"], ["plan", "--out", "p.bin"]),
    (["apply", "-auto-approve"], ["apply", "--auto-approve"]),
    (["plan", "-detailed-exitcode", "-refresh-only"], ["plan", "--detailed-exitcode", "--refresh-only"]),
    (["plan", "-target=bridge.a", "-target", "bridge.b"], ["plan", "--target=bridge.a", "--target", "bridge.b"]),
    (["show", "-json", "p.bin"], ["show", "--json", "p.bin"]),
    # global settings after the command move before it
    (["plan", "-var", "a=b"], ["--var", "a=b", "plan"]),
    (["plan", "-var=a=b", "-var-file=x.tfvars", "-json"], ["--var=a=b", "--var-file=x.tfvars", "plan", "--json"]),
    (["apply", "-no-color", "-lock-timeout=10s", "-auto-approve"],
     ["--no-color", "--lock-timeout=10s", "apply", "--auto-approve"]),
    (["-chdir=/srv/repo", "plan"], ["--chdir=/srv/repo", "plan"]),
    (["state", "show", "bridge.a", "-no-color"], ["--no-color", "state", "show", "bridge.a"]),
    (["plan", "-C", "dir"], ["-C", "dir", "plan"]),
])
def test_terraform_spelling(terraform, kvmnet):
    assert normalize(terraform, TABLE) == kvmnet
    assert normalize(terraform, option_table(cli, terraform)) == kvmnet     # as main() reads it


@pytest.mark.parametrize("argv", [
    ["--var", "a=b", "plan", "--out", "p"],          # kvmnet's own spelling stays as it is
    ["-C", "dir", "validate"],
    ["-h"],
    ["plan", "--target", "-weird-but-a-value"],       # an option's value is never rewritten
    ["import", "network.x", "-1"],                    # nor is a positional that looks like a number
    ["plan", "-unknown-flag"],                        # unknown words are left for click to refuse
    ["state", "rm", "--", "-var"],                    # nothing after --
])
def test_left_alone(argv):
    assert normalize(argv, TABLE) == argv
    assert normalize(argv, option_table(cli, argv)) == argv


def test_global_value_is_moved_with_its_option():
    assert normalize(["plan", "--state", "s.db", "--json"], TABLE) == ["--state", "s.db", "plan", "--json"]


def test_table_reads_every_command():
    assert {"--out", "--auto-approve", "--json", "--var", "--chdir"} <= TABLE.long
    assert {"--var", "--var-file", "--state", "--no-color", "--lock-timeout", "-C"} <= TABLE.global_opts
    assert "--out" in TABLE.takes_value and "--json" not in TABLE.takes_value


def test_table_of_a_command_line_reads_only_the_commands_it_names():
    table = option_table(cli, ["-chdir=d", "fleet", "plan", "-hosts=a*"])
    assert "--hosts" in table.long and "--chdir" in table.global_opts
    assert "--auto-approve" not in table.long          # apply's: not named, not read
    assert option_table(cli, ["-h"]).long == option_table(cli, []).long
