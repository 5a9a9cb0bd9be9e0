"""The filesystem functions: paths relative to the module directory, Go's path
rules, templatefile's language, fileset's globbing, and every read recorded
for the config digest (a saved plan goes stale when a read file changes)."""
from __future__ import annotations

import os
import textwrap

import pytest

from kvmnet.engine.expr import ExprError, FileAccess, Scope, SetValue, parse_expression
from kvmnet.engine.prepare import prepare


@pytest.fixture
def mod(tmp_path):
    (tmp_path / "name.txt").write_text("lab\n")
    (tmp_path / "bin.dat").write_bytes(b"\xff\xfe")
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "hosts.tpl").write_text(
        "%{ for h in hosts ~}\n${h} ${upper(domain)}\n%{ endfor ~}\n")
    (tmp_path / "tpl" / "one.tpl").write_text("${x}")
    (tmp_path / "tpl" / "nested.tpl").write_text('${templatefile("one.tpl", {x = 1})}')
    (tmp_path / "tpl" / "bad.tpl").write_text("line one\n${nope}\n")
    (tmp_path / "tpl" / ".hidden").write_text("")
    (tmp_path / "tpl" / "sub").mkdir()
    (tmp_path / "tpl" / "sub" / "a.tpl").write_text("")
    return tmp_path


def ev(text, files):
    return parse_expression(text).evaluate(Scope(files=files))


def err(text, files) -> str:
    with pytest.raises(ExprError) as e:
        ev(text, files)
    return e.value.message


def test_file_reads_relative_to_the_module_and_records_it(mod):
    files = FileAccess(mod)
    assert ev('file("name.txt")', files) == "lab\n"
    assert ev(f'file("{mod}/name.txt")', files) == "lab\n"
    assert list(files.reads) == [f"file:{mod}/name.txt"]


def test_file_errors(mod):
    files = FileAccess(mod)
    assert 'no file exists at "nope.txt"' in err('file("nope.txt")', files)
    assert 'contents of "bin.dat" are not valid UTF-8' in err('file("bin.dat")', files)
    assert '"tpl" is a directory, not a file' in err('file("tpl")', files)
    assert "file functions can only be used in a configuration" in err('file("name.txt")', None)


def test_fileexists(mod):
    files = FileAccess(mod)
    assert ev('fileexists("name.txt")', files) is True
    assert ev('fileexists("nope")', files) is False
    assert '"tpl" is a directory' in err('fileexists("tpl")', files)
    assert files.reads[f"exists:{mod}/nope"] == "absent"


def test_fileset_globbing(mod):
    files = FileAccess(mod)
    assert ev('fileset("tpl", "*.tpl")', files) == SetValue(["bad.tpl", "hosts.tpl", "nested.tpl", "one.tpl"])
    assert ev('fileset("tpl", "**/a.tpl")', files) == SetValue(["sub/a.tpl"])
    assert ev('fileset(".", "tpl/**")', files) == SetValue(
        ["tpl/.hidden", "tpl/bad.tpl", "tpl/hosts.tpl", "tpl/nested.tpl", "tpl/one.tpl", "tpl/sub/a.tpl"])
    assert ev('fileset("tpl", "{one,bad}.tp?")', files) == SetValue(["bad.tpl", "one.tpl"])
    assert ev('fileset("tpl", "[^bh]*.tpl")', files) == SetValue(["nested.tpl", "one.tpl"])
    assert ev('fileset("tpl", "[!b]*.tpl")', files) == SetValue(["bad.tpl"])     # ! is no negation
    assert ev('fileset("tpl", "sub/")', files) == SetValue([])
    assert ev('fileset(".", "*.txt/")', files) == SetValue(["name.txt"])        # cleaned: *.txt
    assert ev('fileset("tpl/sub", "../o*")', files) == SetValue(["../one.tpl"])
    assert ev('fileset("nope", "*")', files) == SetValue([])
    assert "syntax error in pattern" in err('fileset("tpl", "[a")', files)


def test_templatefile(mod):
    files = FileAccess(mod)
    out = ev('templatefile("tpl/hosts.tpl", {hosts = ["a", "b"], domain = "lab"})', files)
    assert out == "a LAB\nb LAB\n"
    assert ev('templatefile("tpl/one.tpl", {x = [1, 2]})', files) == [1, 2]
    assert 'in template file "tpl/bad.tpl" line 2: unknown name "nope"' in err(
        'templatefile("tpl/bad.tpl", {})', files)
    assert "cannot recursively call templatefile" in err('templatefile("tpl/nested.tpl", {})', files)
    assert 'invalid template variable name "1a"' in err('templatefile("tpl/one.tpl", {"1a" = 1})', files)
    assert 'must be a map or object, got tuple' in err('templatefile("tpl/one.tpl", [1])', files)


def test_path_functions(mod):
    files = FileAccess(mod)
    assert ev('abspath("tpl/../name.txt")', files) == f"{mod}/name.txt"
    assert ev('abspath("/a//b/")', files) == "/a/b"
    for text, want in [('basename("/a/b/")', "b"), ('basename("")', "."), ('basename("///")', "/"),
                       ('basename("a")', "a"), ('dirname("/a/b/c")', "/a/b"), ('dirname("a")', "."),
                       ('dirname("/a/b/")', "/a/b"), ('dirname("//a")', "/"), ('dirname("")', ".")]:
        assert ev(text, None) == want, text


def _config(directory, text):
    (directory / "main.hcl").write_text(textwrap.dedent(text))


def test_config_digest_covers_files_read(tmp_path):
    _config(tmp_path, """
        locals {
          mode = trimspace(file("mode.txt"))
        }
        resource "network" "lab" {
          mode = local.mode
        }
        """)
    (tmp_path / "mode.txt").write_text("nat\n")
    first = prepare(str(tmp_path), use_cache=False)
    assert first.instances["network.lab"].attrs["mode"] == "nat"
    again = prepare(str(tmp_path), use_cache=False)
    assert again.config.digest == first.config.digest
    (tmp_path / "mode.txt").write_text("route\n")
    changed = prepare(str(tmp_path), use_cache=False)
    assert changed.config.digest != first.config.digest


def test_config_paths_are_relative_to_the_config_not_the_cwd(tmp_path, monkeypatch):
    _config(tmp_path, """
        resource "network" "lab" {
          mode = trimspace(file("mode.txt"))
        }
        """)
    (tmp_path / "mode.txt").write_text("route")
    monkeypatch.chdir(os.path.dirname(tmp_path))
    assert prepare(str(tmp_path), use_cache=False).instances["network.lab"].attrs["mode"] == "route"


def test_module_files_are_relative_to_the_module_and_join_the_root_digest(tmp_path):
    root, mod = tmp_path / "root", tmp_path / "modules" / "role"
    root.mkdir()
    mod.mkdir(parents=True)
    _config(root, """
        module "one" {
          source = "../modules/role"
        }
        resource "network" "top" {
          mode = trimspace(file("mode.txt"))
        }
        """)
    _config(mod, """
        resource "network" "net" {
          mode = trimspace(file("${path.module}/mode.txt"))
          name = trimspace(file("name.txt"))
          domain = trimspace(file("${path.root}/mode.txt"))
        }
        """)
    (root / "mode.txt").write_text("nat")
    (mod / "mode.txt").write_text("route")
    (mod / "name.txt").write_text("inner")
    first = prepare(str(root), use_cache=False)
    assert first.instances["network.top"].attrs["mode"] == "nat"
    inner = first.instances["module.one.network.net"].attrs
    assert (inner["mode"], inner["name"], inner["domain"]) == ("route", "inner", "nat")
    assert prepare(str(root), use_cache=False).config.digest == first.config.digest
    (mod / "name.txt").write_text("other")
    assert prepare(str(root), use_cache=False).config.digest != first.config.digest


def test_files_read_by_outputs_join_the_digest_at_prepare(tmp_path):
    root, mod = tmp_path / "root", tmp_path / "modules" / "motd"
    root.mkdir()
    mod.mkdir(parents=True)
    _config(root, """
        module "m" {
          source = "../modules/motd"
        }
        output "motd" {
          value = module.m.text
        }
        """)
    _config(mod, """
        output "text" {
          value = trimspace(file("motd.txt"))
        }
        """)
    (mod / "motd.txt").write_text("hello")
    first = prepare(str(root), use_cache=False).config.digest
    assert prepare(str(root), use_cache=False).config.digest == first
    (mod / "motd.txt").write_text("changed")
    assert prepare(str(root), use_cache=False).config.digest != first
