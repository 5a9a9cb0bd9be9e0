"""Which network changes restart rather than replace (pure), and how the engine shows
and guards a ``restart`` (plan rendering, JSON round trip, the consumer rule)."""
from __future__ import annotations

from kvmnet.engine.plan.model import UPDATE, Plan, ResourceChange
from kvmnet.engine.plan.planner import consumer_problems
from kvmnet.engine.render.human import render_plan
from kvmnet.engine.render.markdown import render_markdown
from kvmnet.providers.libvirt.network_restart import changed_leaves, restart_paths
from kvmnet.sdk.provider import Consumer, Provider

HAVE = {"name": "lab", "mode": "nat", "bridge": "virbr9", "uuid": "u",
        "ip": {"address": "10.0.0.1", "prefix": 24, "dhcp_range": [{"start": "10.0.0.9", "end": "10.0.0.20"}]}}


def _with_ip(**kw):
    return dict(HAVE, ip=dict(HAVE["ip"], **kw))


def test_changed_leaves_by_set_keys_and_index():
    assert changed_leaves({"a": 1, "b": None}, {"a": 2, "b": 3}) == ["a"]
    assert changed_leaves([{"x": 1}, {"x": 2}], [{"x": 1}, {"x": 3}], "ip") == ["ip[1].x"]
    assert changed_leaves([{"x": 1}], [{"x": 1}, {"x": 2}], "ip") == ["ip"]
    assert changed_leaves({"x": 1}, None, "ip") == ["ip"]


def test_address_and_prefix_restart_the_network():
    assert restart_paths(HAVE, _with_ip(address="10.0.1.1")) == ["ip.address"]
    assert restart_paths(HAVE, _with_ip(address="10.0.1.1", prefix=16)) == ["ip.address", "ip.prefix"]
    # a DHCP entry changing along changes in place, not a reason to restart
    assert restart_paths(HAVE, _with_ip(address="10.0.1.1", dhcp_range=[])) == ["ip.address"]
    new_shape_have = {"bridge": {"name": "v", "stp": True}, "ip": [{"address": "a", "prefix": 24}]}
    assert restart_paths(new_shape_have, {"bridge": {"name": "v", "stp": False},
                                          "ip": [{"address": "b", "prefix": 24}]}) == \
        ["bridge.stp", "ip[0].address"]


def test_anything_else_replaces_and_no_change_is_no_restart():
    assert restart_paths(HAVE, dict(_with_ip(address="10.0.1.1"), bridge="virbr8")) is None
    assert restart_paths(HAVE, dict(HAVE, mode="route")) is None
    assert restart_paths(dict(HAVE, ip=None), HAVE) is None          # an ip block added
    assert restart_paths(HAVE, dict(HAVE, autostart=False)) is None
    assert restart_paths(HAVE, _with_ip(dhcp_range=[])) is None


def _restart_change() -> ResourceChange:
    after = _with_ip(address="10.0.1.1")
    return ResourceChange("network.lab", "network", "lab", None, "libvirt", UPDATE, HAVE, after,
                          id="lab", changed_paths=["ip.address"], restart_paths=["ip.address"])


def test_restart_is_shown_as_such_and_survives_the_plan_file():
    plan = Plan(lineage=None, serial=0, config_digest="", resource_changes=[_restart_change()])
    text = render_plan(plan, color=False)
    assert "network.lab will be updated and restarted" in text
    assert "~/ resource" in text and "# forces restart" in text
    assert "🔁 update and restart | `network.lab` | `ip.address`" in render_markdown(plan)
    back = Plan.from_json(plan.to_json())
    assert back.resource_changes[0].is_restart and back.resource_changes[0].kind == "restart"
    assert plan.to_json()["resource_changes"][0]["action"] == "restart"


class _Users(Provider):
    name = "users"

    def __init__(self, running):
        super().__init__()
        self.running = running

    def consumers(self, rtype, attrs):
        return [Consumer("domain", "web", "running" if self.running else "shut off", running=self.running)]


class _Registry:
    def __init__(self, p):
        self.p = p

    def active(self):
        return [("users", self.p)]


def test_a_restart_is_refused_only_while_a_consumer_runs():
    assert [c.address for c, _ in consumer_problems([_restart_change()], _Registry(_Users(True)))] \
        == ["network.lab"]
    assert consumer_problems([_restart_change()], _Registry(_Users(False))) == []
    plain = _restart_change()
    plain.restart_paths = []
    assert consumer_problems([plain], _Registry(_Users(True))) == []


def test_a_restart_in_a_repeated_block_is_marked_on_that_attribute():
    have = {"name": "lab", "ip": [{"address": "10.0.0.1", "prefix": 24}]}
    want = {"name": "lab", "ip": [{"address": "10.0.1.1", "prefix": 24}]}
    c = ResourceChange("network.lab", "network", "lab", None, "libvirt", UPDATE, have, want,
                       changed_paths=["ip"], restart_paths=["ip[0].address"])
    plan = Plan(lineage=None, serial=0, config_digest="", resource_changes=[c])
    assert "# forces restart" in render_plan(plan, color=False)
    assert "**forces restart**" in render_markdown(plan)
