"""A name declared twice is one ``FILE:LINE`` error naming where the first one is, for
every kind of named block (engine/config/declared.py); the second one is dropped."""
from __future__ import annotations

import pytest

from kvmnet.engine.config.loader import load_config

BRIDGE = 'resource "bridge" "b" {\n  name = "br0"\n}\n'
VAR = 'variable "v" {\n  default = 1\n}\n'
NET = 'data "network" "n" {\n  name = "default"\n}\n'
MOD = 'module "m" {\n  source = "./m"\n}\n'


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)     # file names in messages are relative to the working directory


@pytest.mark.parametrize("block, message", [
    (BRIDGE, "b.hcl:1: bridge.b: resource bridge.b is defined twice (first in a.hcl:1)"),
    (VAR, 'b.hcl:1: variable "v" is declared twice (first in a.hcl:1)'),
    (NET, "b.hcl:1: data.network.n: data.network.n is declared twice (first in a.hcl:1)"),
    (MOD, 'b.hcl:1: module "m" is defined twice (first in a.hcl:1)'),
])
def test_second_declaration_is_an_error_naming_the_first(tmp_path, block, message):
    (tmp_path / "a.hcl").write_text(block)
    (tmp_path / "b.hcl").write_text(block)
    cfg = load_config(tmp_path, use_cache=False)
    assert [str(e) for e in cfg.diagnostics.errors] == [message]


def test_a_name_declared_once_is_kept(tmp_path):
    (tmp_path / "a.hcl").write_text(BRIDGE + VAR + NET)
    cfg = load_config(tmp_path, use_cache=False)
    assert not cfg.diagnostics.errors
    assert list(cfg.resources) == ["bridge.b"] and list(cfg.variables) == ["v"]
    assert list(cfg.data) == ["data.network.n"]
