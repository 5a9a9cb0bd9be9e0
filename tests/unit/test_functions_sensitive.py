"""sensitive() makes a value sensitive where the engine follows sensitivity
statically (engine/config/sensitivity.py): an output made with it must say
sensitive = true, as Terraform requires; nonsensitive() takes the mark off."""
from __future__ import annotations

import textwrap

from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.engine.expr import parse_expression, uses_sensitive
from kvmnet.engine.prepare import prepare


def _outputs(tmp_path, text):
    (tmp_path / "main.hcl").write_text(textwrap.dedent(text))
    prepared = prepare(str(tmp_path), use_cache=False)
    diags = Diagnostics()
    return prepared, prepared.evaluator.output_values(diags), [str(d) for d in diags.errors]


def test_uses_sensitive_follows_the_tree():
    assert uses_sensitive(parse_expression('"x-${sensitive(1)}"'))
    assert uses_sensitive(parse_expression("[for x in [1] : {k = sensitive(x)}]"))
    assert not uses_sensitive(parse_expression('nonsensitive(sensitive("a"))'))
    assert not uses_sensitive(parse_expression('upper("a")'))


def test_an_output_made_with_sensitive_must_say_so(tmp_path):
    _, values, errors = _outputs(tmp_path, """
        output "a" {
          value = sensitive("secret")
        }
        output "b" {
          value = nonsensitive(sensitive("plain"))
        }
        """)
    assert values == {"b": "plain"}
    (error,) = errors
    assert error.endswith('main.hcl:3: output.a: output "a" refers to sensitive values; set sensitive '
                          "= true in it to show that this is intended (it is then masked)")


def test_a_local_made_with_sensitive_marks_what_reads_it(tmp_path):
    prepared, values, errors = _outputs(tmp_path, """
        locals {
          token = sensitive("t0k3n")
        }
        output "a" {
          value     = "x-${local.token}"
          sensitive = true
        }
        """)
    assert errors == [] and values == {"a": "x-t0k3n"}
    assert prepared.evaluator.sensitivity.reads_sensitive(prepared.config.outputs["a"].value)
