"""The parse cache (engine/config/cache.py, hcl.parse_files): plain marshal data in
a directory only the user can write, never an error, keyed by everything that
changes a parse."""
from __future__ import annotations

import os
import pickle
import stat

import pytest

from kvmnet.engine.config import cache, hcl
from kvmnet.engine.diagnostics import Diagnostic

GOOD = 'resource "bridge" "b" {\n  name = "br0"\n}\n'


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def parse(path):
    return hcl.parse_files([(path, path.name)])[0]


def entries(xdg):
    d = xdg / "kvmnet" / "parse"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def test_an_error_is_not_cached_so_it_does_not_outlive_its_cause(tmp_path, xdg, monkeypatch):
    """A parse that failed for a reason outside the file's bytes (here: a parser
    fault that goes away) must not be served from the cache afterwards."""
    f = tmp_path / "main.hcl"
    f.write_text(GOOD)
    real = hcl.parse_text
    monkeypatch.setattr(hcl, "parse_text", lambda text, file: hcl.ParsedFile(
        file, [], [Diagnostic("syntax error: transient", file=file, line=1)]))
    assert parse(f).errors
    assert entries(xdg) == []
    monkeypatch.setattr(hcl, "parse_text", real)
    pf = parse(f)
    assert pf.errors == [] and pf.blocks[0].labels == ("bridge", "b")
    assert len(entries(xdg)) == 1


def test_a_syntax_error_is_reported_again_and_not_stored(tmp_path, xdg):
    f = tmp_path / "main.hcl"
    f.write_text('resource "bridge" "b" {\n  name = \n}\n')
    for _ in range(2):
        (err,) = parse(f).errors
        assert (err.file, err.line) == ("main.hcl", 2)
    assert entries(xdg) == []


def test_a_hit_gives_the_same_blocks_with_this_runs_file_name(tmp_path, xdg):
    f = tmp_path / "main.hcl"
    f.write_text(GOOD + 'x "y" {\n  z = [1, var.a, {k = "v"}]\n  inner {\n    q = null\n  }\n}\n')
    first = hcl.parse_files([(f, "a.hcl")])[0]
    again = hcl.parse_files([(f, "b.hcl")])[0]
    assert len(entries(xdg)) == 1
    assert [(b.type, b.labels, b.line) for b in again.blocks] == \
        [(b.type, b.labels, b.line) for b in first.blocks]
    assert again.blocks[1].attrs["z"].value == [1, "${var.a}", {"k": "v"}]
    assert {b.file for b in again.blocks} | {again.blocks[1].blocks[0].file} == {"b.hcl"}


def test_directories_are_created_private(tmp_path, xdg):
    f = tmp_path / "main.hcl"
    f.write_text(GOOD)
    parse(f)
    for d in (xdg / "kvmnet", xdg / "kvmnet" / "parse"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    (entry,) = (xdg / "kvmnet" / "parse").iterdir()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert entry.read_bytes()[:1] != b"\x80"   # not a pickle


def _plant(xdg, f, payload: bytes):
    key = hcl._cache_key(f.read_bytes())
    d = xdg / "kvmnet" / "parse"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(xdg / "kvmnet", 0o700)
    (d / key).write_bytes(payload)
    os.chmod(d / key, 0o600)
    return d / key


class _Boom:
    def __reduce__(self):
        return (os.mkdir, ("/tmp/kvmnet-unpickled-marker",))


def test_a_pickle_in_the_cache_is_never_unpickled(tmp_path, xdg):
    f = tmp_path / "main.hcl"
    f.write_text(GOOD)
    _plant(xdg, f, pickle.dumps(_Boom()))
    pf = parse(f)
    assert not os.path.exists("/tmp/kvmnet-unpickled-marker")
    assert pf.errors == [] and pf.blocks[0].attrs["name"].value == "br0"


def test_an_entry_of_another_shape_is_a_miss(tmp_path, xdg):
    import marshal
    f = tmp_path / "main.hcl"
    f.write_text(GOOD)
    _plant(xdg, f, marshal.dumps({"not": "a parse"}))
    assert parse(f).blocks[0].attrs["name"].value == "br0"


@pytest.mark.parametrize("how", ["world-writable dir", "group-writable dir", "foreign dir",
                                 "foreign entry", "writable entry", "symlinked entry"])
def test_an_untrusted_cache_is_ignored(tmp_path, xdg, how):
    f = tmp_path / "main.hcl"
    f.write_text(GOOD)
    import marshal
    fake = ([("resource", ("bridge", "b"), 1, [("name", "planted", 2)], [])], [])
    entry = _plant(xdg, f, marshal.dumps(fake))
    parse_dir = xdg / "kvmnet" / "parse"
    if how == "world-writable dir":
        os.chmod(parse_dir, 0o777)
    elif how == "group-writable dir":
        os.chmod(xdg / "kvmnet", 0o770)
    elif how == "foreign dir":
        if os.geteuid() != 0:
            pytest.skip("needs root to chown")
        os.chown(parse_dir, 65534, 65534)
    elif how == "foreign entry":
        if os.geteuid() != 0:
            pytest.skip("needs root to chown")
        os.chown(entry, 65534, 65534)
    elif how == "writable entry":
        os.chmod(entry, 0o666)
    else:
        target = tmp_path / "elsewhere"
        target.write_bytes(entry.read_bytes())
        entry.unlink()
        entry.symlink_to(target)
    assert parse(f).blocks[0].attrs["name"].value == "br0"


def test_an_unwritable_cache_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    f = tmp_path / "main.hcl"
    f.write_text(GOOD)
    assert parse(f).errors == []


def test_the_key_changes_with_the_kvmnet_version(tmp_path, xdg, monkeypatch):
    import kvmnet
    f = tmp_path / "main.hcl"
    f.write_text(GOOD)
    before = hcl._cache_key(f.read_bytes())
    monkeypatch.setattr(hcl, "_fingerprint", None)
    monkeypatch.setattr(kvmnet, "__version__", "999.0")
    assert hcl._cache_key(f.read_bytes()) != before
    monkeypatch.setattr(hcl, "_fingerprint", None)


@pytest.fixture
def small_grammar(tmp_path, monkeypatch):
    """grammar.py on a tiny grammar (builds in milliseconds), in its own directory."""
    from kvmnet.engine.config import grammar
    d = tmp_path / "pkg"
    d.mkdir(mode=0o755)
    small = d / "small.lark"
    small.write_text('start: NAME "=" NAME\nexpr_only: NAME\ntemplate: NAME\n'   # the start rules
                     'NAME: /[a-z]+/\n%ignore " "\n')
    monkeypatch.setattr(grammar, "GRAMMAR", small)
    monkeypatch.setattr(grammar, "_parser", None)
    yield grammar, d
    monkeypatch.setattr(grammar, "_parser", None)


def test_grammar_tables_are_kept_as_data_beside_the_grammar(xdg, small_grammar, monkeypatch):
    grammar, d = small_grammar
    grammar.parser()
    (tables,) = d.glob(".small.lark.*.tables")
    assert tables.read_bytes()[:1] != b"\x80"   # marshal, not a pickle
    assert stat.S_IMODE(tables.stat().st_mode) == 0o600
    monkeypatch.setattr(grammar, "_parser", None)
    import lark

    def no_build(*args, **kwargs):
        raise AssertionError("built again")
    with monkeypatch.context() as m:
        m.setattr(lark.Lark, "__init__", no_build)
        assert grammar.parser().parse("a = b", start="start")   # loaded, not built
    # damaged tables are rebuilt, not an error
    tables.write_bytes(b"garbage")
    monkeypatch.setattr(grammar, "_parser", None)
    assert grammar.parser().parse("a = b", start="start")


def test_grammar_tables_go_to_the_user_cache_when_the_package_is_read_only(xdg, small_grammar):
    grammar, d = small_grammar
    key = grammar._key(grammar.GRAMMAR.read_bytes())
    (d / f".small.lark.{key[:24]}.tables").mkdir()   # cannot be written as a file
    grammar.parser()
    assert [p.name for p in (xdg / "kvmnet" / "grammar").iterdir()] == [key]


def test_untrusted_grammar_tables_are_not_read(xdg, small_grammar, monkeypatch):
    grammar, d = small_grammar
    grammar.parser()
    (tables,) = d.glob(".small.lark.*.tables")
    os.chmod(tables, 0o666)
    from kvmnet.engine.config import cache as c
    assert c.load_file(tables, owners=(0,)) is None
    os.chmod(tables, 0o600)
    os.chmod(d, 0o777)
    assert c.load_file(tables, owners=(0,)) is None
    os.chmod(d, 0o755)
    assert c.load_file(tables, owners=(0,)) is not None


def test_a_changed_front_end_does_not_read_entries_an_older_one_wrote(tmp_path, xdg, monkeypatch):
    """The key covers the reader's own code, not only its version number: an entry
    written by other front-end code is a miss, so the file is parsed again."""
    f = tmp_path / "main.hcl"
    f.write_text(GOOD)
    monkeypatch.setattr(hcl, "_fingerprint", None)
    monkeypatch.setattr(hcl, "_code_digest", lambda: "reader one")
    parse(f)
    assert len(entries(xdg)) == 1
    monkeypatch.setattr(hcl, "_fingerprint", None)
    monkeypatch.setattr(hcl, "_code_digest", lambda: "reader two")
    calls = []
    real = hcl.parse_text
    monkeypatch.setattr(hcl, "parse_text", lambda text, file: calls.append(file) or real(text, file))
    assert parse(f).blocks[0].labels == ("bridge", "b")
    assert calls and len(entries(xdg)) == 2

