"""What a NIC replace carries over verbatim (``kept``) and what it would lose (pure)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from kvmnet.engine.plan.diff import merge_planned
from kvmnet.providers.libvirt.nicxml import PART, kept_parts, lost_parts, render_interface
from kvmnet.sdk.values import UNKNOWN

LIVE = ET.fromstring("""<interface type='network'><mac address='52:54:00:00:00:01'/>
<source network='n' portid='0c2f' bridge='virbr0'/><target dev='vnet3'/><model type='virtio'/>
<boot order='1'/><rom bar='off'/><alias name='net0'/>
<address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/></interface>""")


def test_unmodelled_elements_are_kept_and_libvirt_fills_are_not():
    assert kept_parts(LIVE) == ['<boot order="1" />', '<rom bar="off" />',
                                '<address type="pci" domain="0x0000" bus="0x00" slot="0x07" function="0x0" />']
    user_alias = ET.fromstring("<interface type='bridge'><alias name='ua-x'/><target dev='tap-mine'/></interface>")
    assert kept_parts(user_alias) == ['<alias name="ua-x" />', '<target dev="tap-mine" />']
    assert lost_parts(LIVE) == []


def test_unmapped_attributes_and_children_of_mapped_elements_are_kept_as_parts():
    el = ET.fromstring("<interface type='network' managed='no'><source network='n' portgroup='eng'/>"
                       "<driver name='vhost' packed='on'><host csum='off' future='1'/><future/></driver></interface>")
    parts = kept_parts(el)
    assert [ET.fromstring(p).get(PART) for p in parts] == ["", "source", "driver", "driver/host"]
    assert lost_parts(el) == []
    new = ET.fromstring(render_interface({"network": "m", "model": "virtio", "kept": parts,
                                          "driver": {"name": "qemu", "host": {"csum": True}}}))
    assert new.get("managed") == "no" and new.get(PART) is None
    assert new.find("source").attrib == {"network": "m", "portgroup": "eng"}
    # what the model sets wins; the rest comes back where it was
    assert new.find("driver").get("name") == "qemu" and new.find("driver").get("packed") == "on"
    assert new.find("driver/future") is not None
    assert new.find("driver/host").attrib == {"csum": "on", "future": "1"}
    # a mapped element the new interface lacks is made for its part
    bare = ET.fromstring(render_interface({"network": "m", "model": "e1000", "kept": parts}))
    assert bare.find("driver").get("packed") == "on" and bare.find("driver/host").get("future") == "1"


def test_unmapped_parts_of_a_repeated_mapped_element_are_lost():
    el = ET.fromstring("<interface type='bridge'><vlan trunk='yes'><tag id='5' future='x'/>"
                       "<tag id='6'><more/></tag></vlan></interface>")
    assert lost_parts(el) == ["<vlan><tag future>", "<vlan><tag><more>"]
    assert kept_parts(el) == []


def test_kept_parts_go_into_the_new_interface():
    xml = render_interface({"network": "n", "mac": "52:54:00:00:00:01", "kept": kept_parts(LIVE)})
    el = ET.fromstring(xml)
    assert el.find("boot").get("order") == "1" and el.find("address").get("slot") == "0x07"
    assert el.find("alias") is None and el.find("target") is None
    assert ET.fromstring(render_interface({"network": "n", "kept": UNKNOWN})).find("boot") is None


def test_a_replace_plans_kept_from_the_prior_object():
    prior = {"domain": "d", "network": "n", "mac": "52:54:00:00:00:01", "model": "virtio",
             "kept": ['<boot order="1" />']}
    desired = dict(prior, model="e1000", kept=None)
    assert merge_planned("nic_attachment", desired, prior, True)["kept"] == ['<boot order="1" />']
    assert merge_planned("nic_attachment", desired, None, True)["kept"] is UNKNOWN


def test_a_running_nics_element_attaches_again_without_what_libvirt_filled_in():
    from kvmnet.providers.libvirt.nicxml import restorable
    el = ET.fromstring(restorable(LIVE))
    assert el.find("alias") is None and el.find("target") is None
    assert el.find("source").attrib == {"network": "n"}
    assert el.find("boot").get("order") == "1" and el.find("address").get("slot") == "0x07"
