"""``kvmnet import --generate-config``: the refusals decided before any provider
is asked (no daemon needed), each one ``Error:`` line, nothing written. The real
imports and the refusals that need libvirt are in tests/real/test_import_generate.py."""
from __future__ import annotations

import pytest

from kvmnet.cli import main

PROVIDER = 'provider "libvirt" {\n  uri = "test:///default"\n}\n'


@pytest.fixture
def cfg(tmp_path):
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "p.hcl").write_text(PROVIDER)
    return d


def refused(capsys, d, *args, state_made=False) -> str:
    assert main(["-C", str(d), "--no-color", "--state", str(d.parent / "s.db"), "import", *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: "), err
    state = d.parent / "s.db"
    if state_made:     # opened (and locked) to see what is managed: still empty
        from kvmnet.state import open_state
        assert not open_state(str(state)).read().instances
    else:
        assert not state.exists()
    return err[0]


def test_file_that_does_not_parse_is_left_alone(cfg, capsys, tmp_path):
    bad = tmp_path / "bad.hcl"
    bad.write_text('resource "network" "x" {\n  mode = \n')
    assert "does not parse (line" in refused(capsys, cfg, "--generate-config", str(bad), "network.y", "y")
    assert bad.read_text() == 'resource "network" "x" {\n  mode = \n'


def test_file_in_a_missing_directory_or_not_a_file(cfg, capsys, tmp_path):
    assert "does not exist" in refused(capsys, cfg, "--generate-config", str(tmp_path / "no" / "f.hcl"),
                                       "network.y", "y")
    assert "not a regular file" in refused(capsys, cfg, "--generate-config", str(tmp_path), "network.y", "y")


def test_address_declared_in_the_configuration(cfg, capsys):
    (cfg / "main.hcl").write_text('resource "network" "lab" {\n  mode = "nat"\n}\n')
    line = refused(capsys, cfg, "--generate-config", "gen.hcl", "network.lab", "lab")
    assert "network.lab is already declared in" in line and "main.hcl at line 1" in line
    assert not (cfg / "gen.hcl").exists()


def test_no_provider_block(tmp_path, capsys):
    d = tmp_path / "bare"
    d.mkdir()
    assert 'no provider "libvirt" block' in refused(capsys, d, "--all-networks", "--generate-config", "g.hcl")
    assert not (d / "g.hcl").exists()


def test_a_type_whose_provider_cannot_list_its_objects(tmp_path, capsys):
    d = tmp_path / "s"
    d.mkdir()
    (d / "p.hcl").write_text('provider "sysctl" {}\n')
    line = refused(capsys, d, "--all", "sysctl_profile", "--generate-config", "g.hcl", state_made=True)
    assert "cannot list the sysctl_profile objects" in line
    assert not (d / "g.hcl").exists()
