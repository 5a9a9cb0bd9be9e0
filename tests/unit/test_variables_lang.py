"""Variables as Terraform has them: validation blocks enforced, nullable, sensitive,
KVMNET_VAR_name from the environment (with Terraform's precedence)."""
from __future__ import annotations

import textwrap

import pytest

from kvmnet.engine.config.evaluate import VariableInputs
from kvmnet.engine.diagnostics import DiagnosticError
from kvmnet.engine.prepare import prepare


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)    # errors then name "main.hcl"


def _prep(tmp_path, text, inputs=None, vars_file=None):
    (tmp_path / "main.hcl").write_text(textwrap.dedent(text))
    if vars_file is not None:
        (tmp_path / "kvmnet.vars.hcl").write_text(textwrap.dedent(vars_file))
    return prepare(str(tmp_path), inputs or VariableInputs())


def _errors(tmp_path, text, **kw):
    with pytest.raises(DiagnosticError) as e:
        _prep(tmp_path, text, **kw)
    return [str(d) for d in e.value.diagnostics.errors]


PORT = '''
variable "port" {
  type = number
  default = 8080
  validation {
    condition     = var.port > 1024 && var.port < 65536
    error_message = "port must be unprivileged, got ${var.port}."
  }
}
'''


def test_validation_passes_for_a_good_value(tmp_path):
    assert _prep(tmp_path, PORT).evaluator.variables["port"] == 8080


def test_validation_stops_a_bad_value_with_its_message_and_line(tmp_path):
    errs = _errors(tmp_path, PORT, inputs=VariableInputs(vars=["port=22"]))
    assert len(errs) == 1
    assert errs[0].startswith("main.hcl:6: ")
    assert 'invalid value for variable "port": port must be unprivileged, got 22.' in errs[0]


def test_validation_stops_a_bad_default_and_a_vars_file_value(tmp_path):
    bad_default = PORT.replace("8080", "80")
    assert "got 80." in _errors(tmp_path, bad_default)[0]
    assert "got 21." in _errors(tmp_path, PORT, vars_file="port = 21\n")[0]


def test_every_validation_block_runs(tmp_path):
    text = '''
    variable "name" {
      default = "Lab"
      validation {
        condition     = length(var.name) <= 15
        error_message = "too long"
      }
      validation {
        condition     = lower(var.name) == var.name
        error_message = "must be lower case"
      }
    }
    '''
    errs = _errors(tmp_path, text)
    assert [e.split(": ", 2)[-1] for e in errs] == ["must be lower case"]


@pytest.mark.parametrize("cond, message", [
    ('var.port == var.other', "can refer only to the variable itself, as var.port (not var.other)"),
    ('true', "can refer only to the variable itself"),
])
def test_validation_must_refer_to_the_variable_alone(tmp_path, cond, message):
    text = f'''
    variable "other" {{ default = 1 }}
    variable "port" {{
      default = 1
      validation {{
        condition     = {cond}
        error_message = "x"
      }}
    }}
    '''
    errs = _errors(tmp_path, text)
    assert len(errs) == 1 and message in errs[0] and errs[0].startswith("main.hcl:6:")


@pytest.mark.parametrize("body, message", [
    ('condition = var.v == 1', 'needs "error_message"'),
    ('error_message = "m"', 'needs "condition"'),
    ('condition = var.v == 1\n error_message = "m"\n extra = 1', 'unknown attribute "extra"'),
])
def test_validation_block_shape(tmp_path, body, message):
    text = 'variable "v" {\n default = 1\n validation {\n' + body + '\n }\n}\n'
    errs = _errors(tmp_path, text)
    assert any(message in e for e in errs), errs


@pytest.mark.parametrize("cond, message", [
    ('var.v', "the condition must be true or false"),
    ('var.v == 1 ? null : true', "the condition is null"),
    ('var.v.nope', "invalid validation condition"),
])
def test_a_condition_that_is_not_a_bool_is_an_error(tmp_path, cond, message):
    text = f'variable "v" {{\n default = 1\n validation {{\n condition = {cond}\n error_message = "m"\n }}\n}}\n'
    errs = _errors(tmp_path, text)
    assert len(errs) == 1 and message in errs[0] and errs[0].startswith("main.hcl:4:"), errs


def test_error_message_must_be_a_string(tmp_path):
    text = 'variable "v" {\n default = 1\n validation {\n condition = var.v == 2\n error_message = [1]\n }\n}\n'
    errs = _errors(tmp_path, text)
    assert errs == ["main.hcl:5: error_message must be a string"]


NULLABLE = '''
variable "mode" {
  type     = string
  default  = "nat"
  nullable = false
}
'''


def test_non_nullable_null_takes_the_default(tmp_path):
    p = _prep(tmp_path, NULLABLE, vars_file="mode = null\n")
    assert p.evaluator.variables["mode"] == "nat"


def test_nullable_null_overrides_the_default(tmp_path):
    p = _prep(tmp_path, NULLABLE.replace("false", "true"), vars_file="mode = null\n")
    assert p.evaluator.variables["mode"] is None


def test_non_nullable_without_default_refuses_null(tmp_path):
    text = 'variable "mode" {\n nullable = false\n}\n'
    errs = _errors(tmp_path, text, vars_file="mode = null\n")
    assert errs == ['main.hcl:1: variable "mode" may not be null (nullable = false)']


def test_non_nullable_default_null_is_an_error(tmp_path):
    errs = _errors(tmp_path, 'variable "m" {\n default = null\n nullable = false\n}\n')
    assert errs == ['main.hcl:2: variable "m": the default cannot be null when nullable is false']


@pytest.mark.parametrize("attr", ["sensitive", "nullable"])
def test_sensitive_and_nullable_are_literal_bools(tmp_path, attr):
    errs = _errors(tmp_path, f'variable "m" {{\n default = 1\n {attr} = "yes"\n}}\n')
    assert errs == [f'main.hcl:3: variable "m": {attr} must be true or false (a literal)']


def test_sensitive_is_recorded(tmp_path):
    p = _prep(tmp_path, 'variable "m" {\n default = 1\n sensitive = true\n}\n')
    assert p.config.variables["m"].sensitive


def test_environment_values_and_precedence(tmp_path, monkeypatch):
    text = 'variable "a" { default = "d" }\nvariable "b" { default = "d" }\n' \
           'variable "n" { type = list(number) }\n'
    monkeypatch.setenv("KVMNET_VAR_a", "from-env")
    monkeypatch.setenv("KVMNET_VAR_b", "from-env")
    monkeypatch.setenv("KVMNET_VAR_n", "[1, 2]")
    monkeypatch.setenv("KVMNET_VAR_undeclared", "ignored")
    p = _prep(tmp_path, text, vars_file='b = "from-file"\n')
    assert p.evaluator.variables == {"a": "from-env", "b": "from-file", "n": [1, 2]}
    p = _prep(tmp_path, text, inputs=VariableInputs(vars=["a=from-cli"]))
    assert p.evaluator.variables["a"] == "from-cli"


def test_a_bad_environment_value_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("KVMNET_VAR_n", "nope")
    errs = _errors(tmp_path, 'variable "n" { type = number }\n')
    assert len(errs) == 1
    assert errs[0].startswith('main.hcl:1: invalid value for variable "n" (from KVMNET_VAR_n)')


def test_environment_value_is_validated(tmp_path, monkeypatch):
    monkeypatch.setenv("KVMNET_VAR_port", "22")
    assert "got 22." in _errors(tmp_path, PORT)[0]


def test_a_sensitive_variable_keeps_its_value_out_of_the_error(tmp_path):
    text = PORT.replace("  default = 8080\n", "  default = 8080\n  sensitive = true\n")
    errs = _errors(tmp_path, text, inputs=VariableInputs(vars=["port=22"]))
    assert errs == ['main.hcl:7: invalid value for variable "port": (the error message reads a '
                    "sensitive value, so it is not shown)"]
