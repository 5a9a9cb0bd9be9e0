"""Where a network's unknown XML can be, against the real libvirtd 9.0 (issue 11, item
2): libvirt's own network schema allows foreign content only in ``<metadata>``
(kept verbatim by kvmnet, netmodel.parse). An unknown attribute or element inside a
modelled element is refused by VIR_NETWORK_DEFINE_VALIDATE and, defined without it,
dropped by libvirt itself: the saved definition never holds one, so nothing
inside a modelled element is left for kvmnet to keep. (A newer libvirt that writes
one is met by the loss rule: the parser names it and a replace is refused unless
``--allow-loss``; tests/unit/test_netmodel.py.)"""
from __future__ import annotations

from kvmnet.providers.libvirt import netxml

NESTED = """<network>
  <name>nested</name>
  <forward mode='nat'><nat><port start='1024' end='65535' future='1'/><future/></nat></forward>
  <bridge name='kvnest0' future='1'/>
  <dns><host ip='10.77.0.5' future='1'><hostname>db</hostname><future/></host></dns>
  <ip address='10.77.0.1' prefix='24' future='1'>
    <dhcp><range start='10.77.0.10' end='10.77.0.20' future='1'/><future/></dhcp>
    <future/>
  </ip>
</network>"""


def test_libvirt_keeps_no_unknown_part_inside_a_modelled_element(libvirt):
    import libvirt as lv
    conn = libvirt.connect()
    try:
        try:
            conn.networkDefineXMLFlags(NESTED, lv.VIR_NETWORK_DEFINE_VALIDATE)
            raise AssertionError("libvirt accepted unknown parts with VIR_NETWORK_DEFINE_VALIDATE")
        except lv.libvirtError as e:
            assert "failed to validate against schema" in e.get_error_message()
        net = conn.networkDefineXML(NESTED)
        saved = net.XMLDesc(lv.VIR_NETWORK_XML_INACTIVE)
        assert "future" not in saved, saved
        attrs, _, lost = netxml.parse_full(saved)
        assert lost == [] and attrs["kept"] == []
        assert attrs["dns"]["host"][0]["hostname"] == ["db"]
        net.undefine()
    finally:
        conn.close()
