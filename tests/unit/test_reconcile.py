"""The pure decision of engine/reconcile.py: one verdict per open intent."""
from __future__ import annotations

from kvmnet.sdk.ownership import parse_mark
from kvmnet.engine.reconcile import ADOPT, CONFLICT, FORGET, ROLLBACK, decide, decide_all, wanted_ids
from kvmnet.sdk.provider import LiveObject
from kvmnet.state import Intent

MARK = "kvmnet:0b6f6a52-2f8f-4c3a-9d0c-2f1f6d0e4a11:network.lab"
OTHER = "kvmnet:11111111-2222-3333-4444-555555555555:network.lab"


def intent(action="create", attrs=None, exclusive=True, **extra):
    ident = {"id": "lab", "mark": MARK, "exclusive": exclusive, **extra}
    if attrs is not None:
        ident["attrs"] = attrs
    return Intent("network.lab", action, "network", "libvirt", ident, id=7, created="then")


def obj(mark=MARK, **attrs):
    return LiveObject("lab", attrs, parse_mark(mark))


def test_nothing_live_rolls_back_whatever_was_half_made():
    assert decide(intent(), {}, in_state=False).verdict == ROLLBACK


def test_our_mark_and_the_chosen_uuid_adopt():
    d = decide(intent(attrs={"uuid": "u1", "active": True}),
               {"lab": obj(uuid="u1", active=True)}, in_state=False)
    assert d.verdict == ADOPT and d.obj.id == "lab"


def test_ours_but_not_whole_yet_rolls_back():
    """Defined but never started: the mark is ours, the intent wants it active."""
    d = decide(intent(attrs={"uuid": "u1", "active": True}),
               {"lab": obj(uuid="u1", active=False)}, in_state=False)
    assert d.verdict == ROLLBACK


def test_unmarked_object_with_the_chosen_identity_is_adopted():
    """A NIC attached with the MAC kvmnet chose, killed before its mark was set."""
    d = decide(intent(attrs={"mac": "52:54:00:aa:bb:cc"}),
               {"lab": obj(mark=None, mac="52:54:00:aa:bb:cc")}, in_state=False)
    assert d.verdict == ADOPT


def test_a_same_named_object_made_by_hand_is_a_conflict_not_adopted():
    d = decide(intent(attrs={"uuid": "u1", "active": True}),
               {"lab": obj(mark=None, uuid="u2", active=True)}, in_state=False)
    assert d.verdict == CONFLICT
    assert "not the object that an interrupted kvmnet create began (intent 7" in d.message
    assert "has no kvmnet mark" in d.message and "kvmnet import 'network.lab' 'lab'" in d.message


def test_a_same_named_unmarked_object_without_chosen_identity_is_a_conflict():
    """A bridge: only the mark can prove it is ours; a hand-made one has none."""
    assert decide(intent(), {"lab": obj(mark=None)}, in_state=False).verdict == CONFLICT


def test_another_states_mark_is_a_conflict():
    d = decide(intent(), {"lab": obj(mark=OTHER)}, in_state=False)
    assert d.verdict == CONFLICT and "carries another mark" in d.message


def test_non_exclusive_unmarked_object_rolls_back():
    """sysctl keys always exist: without our persist file the values are undone."""
    assert decide(intent(exclusive=False), {"lab": obj(mark=None)}, in_state=False).verdict == ROLLBACK


def test_updates_deletes_and_recorded_instances_are_forgotten():
    assert decide(intent("update"), {"lab": obj()}, in_state=True).verdict == FORGET
    assert decide(intent("delete"), {}, in_state=True).verdict == FORGET
    assert decide(intent(), {"lab": obj(mark=None)}, in_state=True).verdict == FORGET


def test_only_the_newest_intent_of_an_address_counts():
    old, new = intent(), Intent("network.lab", "create", "network", "libvirt",
                                {"id": "lab", "mark": MARK}, id=8)
    ds = decide_all([old, new], {("libvirt", "network"): {"lab": obj()}}, set())
    assert [d.verdict for d in ds] == [FORGET, ADOPT]


def test_wanted_ids_groups_by_provider_and_type():
    assert dict(wanted_ids([intent()])) == {("libvirt", "network"): {"lab"}}
