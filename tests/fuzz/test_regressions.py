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
