"""The engine's side of a safe replace, with the FAKE provider of test_engine_plan:
``before_replace`` sees the new object and may stop the replace before the delete;
a ``Restored`` create failure keeps the old object in the state."""
from __future__ import annotations

import pytest

from kvmnet.engine import registry
from kvmnet.sdk.provider import ProviderError
from tests.unit.test_engine_plan import Harness, World, make_fake

NET = """
resource "network" "lab" {
  mode = "%s"
}
"""


@pytest.fixture
def world():
    return World()


@pytest.fixture
def h(tmp_path, world, monkeypatch):
    base = make_fake(world)

    class Safe(base):  # type: ignore[misc, valid-type]
        saved: dict = {}
        fail_create = False

        def create(self, rtype, address, after, mark):
            if Safe.fail_create:
                raise ProviderError(f"{address}: the new bridge name is taken")
            return super().create(rtype, address, after, mark)

        def before_replace(self, rtype, address, before, after):
            world.calls.append(("check", f"{address} {after['forward']['mode']}"))
            if after["forward"]["mode"] == "isolated":
                raise ProviderError(f"{address}: the new definition is refused")
            Safe.saved[address] = world.objects[(rtype, before["name"])]

        def restore_replaced(self, rtype, address):
            old = Safe.saved.pop(address)
            world.objects[(rtype, old.id)] = old
            return old.attrs, {"restored": True}

    monkeypatch.setattr(registry, "_classes", {**registry._classes, "libvirt": Safe})
    return Harness(tmp_path, world)


def test_a_refused_check_stops_before_the_delete(h, world):
    h.config(NET % "nat")
    h.apply()
    world.calls.clear()
    h.config(NET % "isolated")
    _plan, report = h.apply()
    assert report.failed and "refused" in report.failed[2]
    assert world.calls == [("check", "network.lab isolated")]          # no delete
    assert h.state().instances["network.lab"].attrs["forward"]["mode"] == "nat"


def test_a_restored_create_failure_keeps_the_old_object_in_the_state(h, world):
    h.config(NET % "nat")
    h.apply()
    registry._classes["libvirt"].fail_create = True
    world.calls.clear()
    h.config(NET % "route")
    _plan, report = h.apply()
    assert [a for a, _ in world.calls] == ["check", "delete"]
    assert report.failed and "the old object is back as it was" in report.failed[2]
    rec = h.state().instances["network.lab"]
    assert rec.attrs["forward"]["mode"] == "nat" and rec.private == {"restored": True}
