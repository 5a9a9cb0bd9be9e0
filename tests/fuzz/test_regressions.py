"""One fast test per class of bug the fuzzer found (tests/fuzz/test_frontend_fuzz.py)."""
from __future__ import annotations

from kvmnet.cli import main


def test_an_error_quoting_a_multi_line_value_stays_one_located_line(tmp_path, capsys):
    # found: a number variable defaulting to a heredoc printed its newline raw, so
    # the second half of the message was a line without FILE:LINE
    (tmp_path / "main.hcl").write_text(
        'variable "s" {\n  type = number\n  default = (<<EOT\n\n  EOT\n)\n}\n')
    assert main(["-C", str(tmp_path), "validate"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].endswith('main.hcl:1: variable "s": a number is required, got "\\n"')


def test_a_deeply_nested_template_is_never_printed_whole(tmp_path, capsys):
    # found: str() of a parse-tree node (a nested interpolation) recursed through
    # lark's repr and raised RecursionError; a value 300 templates deep is now read
    # without ever rendering a tree
    n = 300
    (tmp_path / "main.hcl").write_text('resource "bridge" "b" {\n  name = '
                                       + '"${' * n + '"x"' + '}"' * n + "\n}\n")
    assert main(["-C", str(tmp_path), "validate"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "expression nested more than 64 levels deep" in err
