"""``data`` blocks as the loader reads them (the live reads are tested against the
namespaced libvirtd in tests/real/test_lang_real.py): every misuse is a FILE:LINE
error, and their values are unknown until a plan reads them."""
from __future__ import annotations

import pytest

from kvmnet.engine.diagnostics import DiagnosticError
from kvmnet.engine.plan.data import read_data_sources
from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.engine.prepare import prepare
from kvmnet.sdk.provider import ProviderError
from kvmnet.sdk.values import UNKNOWN


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _prep(tmp_path, text):
    (tmp_path / "main.hcl").write_text(text)
    return prepare(str(tmp_path))


def _errors(tmp_path, text):
    with pytest.raises(DiagnosticError) as e:
        _prep(tmp_path, text)
    return [str(d) for d in e.value.diagnostics.errors]


NET = 'data "network" "default" {\n  name = "default"\n}\n'


def test_values_are_unknown_before_the_plan(tmp_path):
    p = _prep(tmp_path, NET + 'resource "network" "lab" {\n mode = "nat"\n'
              ' bridge = "x${data.network.default.bridge}"\n}\n')
    assert p.instances["network.lab"].attrs["bridge"] is UNKNOWN
    assert p.evaluator.data_values == {"network": {"default": UNKNOWN}}


@pytest.mark.parametrize("text, message", [
    ('data "nope" "x" {\n}\n', 'main.hcl:1: data.nope.x: unknown data source "nope"; known: domain, network'),
    ('data "network" "x" {\n}\n', 'main.hcl:1: data.network.x: data source "network" needs "name"'),
    ('data "network" "x" {\n name = "a"\n colour = 1\n}\n', 'main.hcl:3: data.network.x: unknown argument "colour"'),
    ('data "network" "x" {\n name = "a"\n count = 2\n}\n', "count is not supported on data sources"),
    ('data "network" "x" {\n name = "a"\n depends_on = []\n}\n', "depends_on is not supported"),
    ('data "network" "x" {\n name = "a"\n sub {\n }\n}\n', 'main.hcl:3: data.network.x: unexpected block "sub"'),
    ('data "network" {\n}\n', 'main.hcl:1: a "data" block needs 2 label(s)'),
    (NET + NET, "data.network.default is declared twice (first in main.hcl:1)"),
    (NET + 'locals {\n b = data.network.other.bridge\n}\n',
     'main.hcl:5: reference to undeclared data source "data.network.other"'),
    (NET + 'output "b" {\n value = data.network\n}\n', "a data source reference is data.TYPE.NAME"),
])
def test_malformed_data_blocks(tmp_path, text, message):
    errs = _errors(tmp_path, text)
    assert any(message in e for e in errs), errs


class _Providers:
    def __init__(self, provider):
        self.provider = provider

    def get(self, name):
        assert name == "libvirt"
        return self.provider


class _Reader:
    def read_data(self, dtype, args):
        if args["name"] == "missing":
            raise ProviderError('no libvirt network named "missing"')
        return {"bridge": "virbr0", "name": args["name"]}


def test_read_sets_values_and_reports_errors_at_the_block(tmp_path):
    p = _prep(tmp_path, NET + 'data "network" "m" {\n name = "missing"\n}\n'
              'data "network" "p" {\n name = "x"\n provider = iproute\n}\n')
    diags = Diagnostics()
    read_data_sources(p, _Providers(_Reader()), diags)
    assert p.evaluator.data_values["network"]["default"] == {"bridge": "virbr0", "name": "default"}
    assert [str(d) for d in diags.errors] == [
        'main.hcl:4: data.network.m: no libvirt network named "missing"',
        "main.hcl:9: data.network.p: provider 'iproute' has no data source 'network'; "
        "use one of: libvirt",
    ]


def test_arguments_must_be_known_at_plan_time(tmp_path):
    p = _prep(tmp_path, 'resource "network" "lab" {\n mode = "nat"\n}\n'
              'data "network" "d" {\n name = network.lab.uuid\n}\n')
    diags = Diagnostics()
    read_data_sources(p, _Providers(_Reader()), diags)
    assert len(diags.errors) == 1 and "must be known at plan time" in str(diags.errors[0])
