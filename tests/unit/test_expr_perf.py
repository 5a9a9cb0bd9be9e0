"""Compiling and evaluating a 10,000-resource configuration gives the right values
(its speed is a benchmark: benchmarks/bench_engine.py, `make bench`)."""
from __future__ import annotations

from kvmnet.engine.expr import Scope, compile_value


def _bodies(n: int) -> list[dict]:
    return [{
        "name": f"net{i}",
        "mode": "nat",
        "bridge": f"virbr${{count.index}}x{i}",
        "autostart": "${var.autostart}",
        "mtu": "${var.mtu}",
        "depends_on": [f"${{network.n{i % 100}}}"],
        "ip": [{"address": f"${{cidrhost(var.subnets[{i % 50}], count.index + 1)}}",
                "prefix": 24,
                "dhcp_range": [{"start": f"${{cidrhost(var.subnets[{i % 50}], 10)}}",
                                "end": "${local.end}"}]}],
        "tags": "${merge(local.tags, {idx = count.index})}",
        "net": f"${{network.n{i % 100}.name}}",
        "label": f'${{format("vm-%02d-{i}", count.index)}}',
    } for i in range(n)]


def test_ten_thousand_resources_compile_and_evaluate():
    bodies = _bodies(10_000)
    scope = Scope(
        variables={"mtu": 1500, "autostart": True,
                   "subnets": [f"10.{k}.0.0/24" for k in range(50)]},
        locals={"end": "10.0.0.200", "tags": {"a": 1}},
        resolve_resource=lambda t, n: {"name": n},
    )
    compiled = [compile_value(b) for b in bodies]
    refs = [c.references() for c in compiled]
    values = [c.evaluate(scope.with_count(0)) for c in compiled]
    assert values[7]["ip"][0]["address"] == "10.7.0.1"
    assert values[7]["label"] == "vm-00-7" and values[7]["net"] == "n7"
    assert [r.parts for r in refs[7]][:2] == [("count", "index"), ("var", "autostart")]
    assert len(values) == 10_000 and values[-1]["name"] == "net9999"
