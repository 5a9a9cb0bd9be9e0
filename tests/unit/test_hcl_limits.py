"""Limits (engine/limits.py): every input that could exhaust memory or Python's
stack is a ``FILE:LINE: message`` error with exit code 1 from ``kvmnet validate``,
never a traceback. Limits on expressions are checked while the file is read; their
errors name the block's address and the attribute (with its path in nested blocks)
as evaluation errors do. Each case once crashed or ran out of memory."""
from __future__ import annotations

import pytest

from kvmnet.cli import main
from kvmnet.engine import limits


def validate(tmp_path, capsys, text: str, *args: str) -> tuple[int, str]:
    (tmp_path / "main.hcl").write_text(text)
    rc = main(["-C", str(tmp_path), "--no-color", *args, "validate"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err.replace(str(tmp_path) + "/", "")


def bridge(attr: str, line: int = 3) -> str:
    """A bridge whose line ``line`` (3) holds ``attr``."""
    return f'resource "bridge" "b" {{\n  name = "br0"\n  {attr}\n}}\n'


def assert_error(tmp_path, capsys, text, expected: str, *args: str) -> None:
    rc, err = validate(tmp_path, capsys, text, *args)
    assert rc == 1
    assert expected in err, err
    for line in err.splitlines():
        assert line.startswith("Error: main.hcl:"), err


@pytest.mark.parametrize("text, expected", [
    # recursion: blocks, then each kind of expression nesting
    ('resource "bridge" "b" {\n' + "a {\n" * 300 + "}\n" * 300 + "}\n",
     "main.hcl:65: bridge.b: blocks are nested more than 64 deep"),
    (bridge("mtu = " + "(" * 500 + "1" + ")" * 500), "main.hcl:3: bridge.b: mtu: expression nested more than 64"),
    (bridge("mtu = " + "-" * 5000 + "1"), "main.hcl:3: bridge.b: mtu: expression nested more than 64"),
    (bridge("interfaces = " + "[" * 500 + "]" * 500),
     "main.hcl:3: bridge.b: interfaces: values are nested more than 64 deep"),
    (bridge("name2 = " + '"${' * 300 + "1" + '}"' * 300), "main.hcl:3: bridge.b: name2: expression nested"),
    (bridge('name2 = "' + "%{ if true }" * 300 + "x" + "%{ endif }" * 300 + '"'),
     "main.hcl:3: bridge.b: name2: expression nested"),
    (bridge("mtu = " + "upper(" * 300 + '"a"' + ")" * 300), "main.hcl:3: bridge.b: mtu: expression nested"),
    # numbers out of range
    ('resource "bridge" "b" {\n  count = 1e999\n  name = "b"\n}\n', "main.hcl:2: bridge.b: count: number out of range: 1e999"),
    (bridge("mtu = -1e999"), "main.hcl:3: bridge.b: mtu: number out of range"),
    (bridge("mtu = " + "9" * 400), "main.hcl:3: bridge.b: mtu: number out of range"),
    (bridge("mtu = [1e999]"), "main.hcl:3: bridge.b: mtu: number out of range"),
    (bridge("mtu = 1 + 1e999"), "main.hcl:3: bridge.b: mtu: number out of range: 1e999"),
    (bridge("mtu = 1e308 * 1e308"), "main.hcl:3: bridge.b: mtu: arithmetic result is out of range"),
    (bridge("mtu = 1.5e308 * -10.5e300"), "main.hcl:3: bridge.b: mtu: arithmetic result is out of range"),
    (bridge("mtu = 1 / 0"), "main.hcl:3: bridge.b: mtu: the value is an infinite number, which cannot be stored"),
    (bridge("mtu = 1e300 * 1e300 + 0.5"), "main.hcl:3: bridge.b: mtu: arithmetic result is out of range"),
    (bridge("mtu = " + "*".join(["100000000000000000000"] * 30)), "main.hcl:3: bridge.b: mtu: arithmetic result is out of range"),
    (bridge('mtu = tonumber("1e999")'), "main.hcl:3: bridge.b: mtu:"),
    # count and for_each
    ('resource "bridge" "b" {\n  count = 100000000\n  name = "b${count.index}"\n}\n',
     "main.hcl:2: bridge.b: count is 100000000; at most 10000 instances are allowed per resource "
     "(raise KVMNET_MAX_INSTANCES to allow more)"),
    ('resource "bridge" "b" {\n  count = 1e300\n  name = "b${count.index}"\n}\n',
     "main.hcl:2: bridge.b: count is 1"),
    ('resource "bridge" "b" {\n  for_each = {for i in range(1000) : "k${i}" => [for j in range(1000) : j]}\n'
     '  name = each.key\n}\n', "main.hcl:2: bridge.b: for_each: for expressions would run more than 100000"),
    # strings and escapes
    (bridge('name2 = "' + "x" * (limits.MAX_STRING_CHARS + 1) + '"'), "main.hcl:3: bridge.b: name2: string longer than"),
    (bridge('name2 = join("", [for i in range(1000) : "${i}' + "y" * 2000 + '"])'),
     "main.hcl:3: bridge.b: name2: call to function \"join\" failed: the result is longer than"),
    (bridge('name2 = format("%999999999d", 1)'), "main.hcl:3: bridge.b: name2: call to function \"format\" failed: width"),
    (bridge('name2 = "\\U00110000"'),
     'main.hcl:3: bridge.b: name2: invalid escape sequence "\\U00110000": not a Unicode character'),
    (bridge('name2 = "a${"\\ud800"}"'), "main.hcl:3: bridge.b: name2: invalid escape sequence"),
    (bridge('name2 = "two\nlines"'), "main.hcl:3: bridge.b: name2: a quoted string cannot span lines"),
])
def test_limit_is_an_error_at_its_line(tmp_path, capsys, text, expected):
    assert_error(tmp_path, capsys, text, expected)


def test_a_file_larger_than_the_limit_is_refused_unread(tmp_path, capsys):
    (tmp_path / "main.hcl").write_text("# " + "x" * limits.MAX_FILE_BYTES + "\n")
    assert main(["-C", str(tmp_path), "validate"]) == 1
    assert f"main.hcl: file larger than {limits.MAX_FILE_BYTES} bytes" in capsys.readouterr().err


def test_the_instance_ceiling_is_configurable(tmp_path, capsys, monkeypatch):
    text = 'resource "bridge" "b" {\n  count = 3\n  name = "b${count.index}"\n}\n'
    monkeypatch.setenv("KVMNET_MAX_INSTANCES", "3")
    assert validate(tmp_path, capsys, text)[0] == 0
    monkeypatch.setenv("KVMNET_MAX_INSTANCES", "2")
    assert_error(tmp_path, capsys, text, "main.hcl:2: bridge.b: count is 3; at most 2 instances")
    each = 'resource "bridge" "b" {\n  for_each = toset(["a", "b", "c"])\n  name = each.key\n}\n'
    assert_error(tmp_path, capsys, each, "main.hcl:2: bridge.b: for_each makes 3 instances; at most 2")


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1e3", "99999999999999999"])
def test_a_bad_instance_ceiling_is_an_error_not_the_default(tmp_path, capsys, monkeypatch, value):
    monkeypatch.setenv("KVMNET_MAX_INSTANCES", value)
    text = 'resource "bridge" "b" {\n  count = 1\n  name = "b"\n}\n'
    assert_error(tmp_path, capsys, text, f"main.hcl:2: bridge.b: count: KVMNET_MAX_INSTANCES={value!r} "
                                         "is not a whole number ≥ 1")


def test_a_number_variable_out_of_range_from_the_command_line(tmp_path, capsys):
    text = 'variable "n" {\n  type = number\n}\n' + bridge("mtu = var.n")
    rc, err = validate(tmp_path, capsys, text, "--var", "n=1e999")
    assert rc == 1 and 'main.hcl:1: invalid value for variable "n" (from --var n=...)' in err


def test_default_ceiling_is_documented():
    from pathlib import Path
    docs = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    assert "KVMNET_MAX_INSTANCES" in docs and f"{limits.DEFAULT_MAX_INSTANCES:,}" in docs


@pytest.mark.parametrize("text, expected", [
    ('resource "network" "n" {\n  ip {\n    dhcp {\n      range = [1e999]\n    }\n  }\n'
     '  ip {\n    address = "a\\qb"\n  }\n}\n',
     'main.hcl:4: network.n: ip[0].dhcp[0].range: number out of range: 1e999'),
    ('resource "network" "n" {\n  ip {\n  }\n  ip {\n    address = "a\\qb"\n  }\n}\n',
     'main.hcl:5: network.n: ip[1].address: invalid escape sequence "\\q"'),
    ('resource "bridge" "b" {\n  lifecycle {\n    ignore_changes = [' + "[" * 70 + "]" * 70 + ']\n  }\n}\n',
     "main.hcl:3: bridge.b: lifecycle[0].ignore_changes: values are nested more than 64 deep"),
    ('data "network" "d" {\n  name = 1e999\n}\n', "main.hcl:2: data.network.d: name: number out of range"),
    ('variable "v" {\n  default = "\\q"\n}\n', 'main.hcl:2: var.v: default: invalid escape sequence "\\q"'),
    ('module "m" {\n  source = "./m"\n  n = [[1e999]]\n}\n', "main.hcl:3: module.m: n: number out of range"),
    ('output "o" {\n  value = 1e999\n}\n', "main.hcl:2: output.o: value: number out of range"),
    ('provider "iproute" {\n  netns = "\\q"\n}\n', 'main.hcl:2: provider.iproute: netns: invalid escape'),
    ('locals {\n  big = 1e999\n}\n', "main.hcl:2: big: number out of range"),
])
def test_a_limit_broken_in_a_block_names_its_address_and_attribute(tmp_path, capsys, text, expected):
    """Where the file reader knows them: the top-level block's address and the
    attribute's path through nested blocks (numbered as plan and evaluation number
    them), so the error reads like an evaluation error of the same attribute."""
    assert_error(tmp_path, capsys, text, expected)


def test_a_limit_broken_in_a_variables_file_names_the_variable(tmp_path, capsys):
    (tmp_path / "main.hcl").write_text('variable "n" {\n  type = number\n}\n')
    (tmp_path / "x.tfvars").write_text("n = 1\nm = 9e9999\n")
    rc = main(["-C", str(tmp_path), "--no-color", "validate", "--var-file", str(tmp_path / "x.tfvars")])
    err = capsys.readouterr().err
    assert rc == 1 and "x.tfvars:2: m: number out of range: 9e9999" in err, err


def test_a_file_parsed_in_a_worker_process_keeps_address_and_attribute(tmp_path, capsys):
    """Several large files are parsed in a process pool; the error crosses back
    with its address and attribute."""
    from kvmnet.engine.config import hcl
    filler = "".join(f'resource "bridge" "f{i}" {{\n  name = "f{i}"\n}}\n'
                     for i in range(hcl.PARALLEL_MIN_CHARS // 40 + 1))
    (tmp_path / "a.hcl").write_text(f"# {tmp_path}: not in the parse cache\n" + filler)
    (tmp_path / "b.hcl").write_text(filler.replace('"f', '"g') + bridge("mtu = 1e999"))
    rc = main(["-C", str(tmp_path), "--no-color", "validate"])
    err = capsys.readouterr().err
    assert rc == 1 and "b.hcl:" in err and ": bridge.b: mtu: number out of range: 1e999" in err, err
