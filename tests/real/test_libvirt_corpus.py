"""The network XML corpus nobody on this project wrote, against a real libvirtd 9.0.

Every ``<network>`` example of libvirt-doc's formatnetwork.html (extracted from the
installed HTML at run time), libvirt-doc's examples/xml/test/testnet*.xml and
Debian's stock default.xml (libvirt-daemon-config-network; read from the installed
file or, when that package is absent, from its .deb unpacked into a cache: installing
it would give every sandbox an autostarted ``default``, since the sandbox copies
/etc/libvirt). Each example libvirt can define (VIR_NETWORK_DEFINE_VALIDATE) is:

- defined (renamed, its bridge renamed, so all coexist), then adopted with
  ``kvmnet import`` and its config written from the imported state by the small
  renderer below; ``kvmnet plan`` shows no change for all of them together;
- read back into attributes that lose nothing (or named as lost: then kvmnet must
  refuse it; none of the corpus needs that today);
- changed in place (autostart, and a DHCP host where it has DHCP) and replaced
  (defined again from its attributes) with its XML otherwise identical, element by
  element, ignoring only what libvirt itself fills in (IGNORED).

An example libvirt refuses is listed in REFUSED with the message naming the feature.
Fragments of the page that are not whole documents (a ``...`` placeholder) are
counted and skipped.
"""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kvmnet.engine.resources import canonical
from kvmnet.providers.libvirt import netxml
from kvmnet.providers.libvirt.netshape import NETWORK, El
from tests.e2e.helpers import run_kvmnet, write_config

DOC = Path("/usr/share/doc/libvirt-doc")
FORMAT_PAGE = DOC / "html/formatnetwork.html"
TESTNETS = DOC / "examples/xml/test"
DEFAULT_XML = Path("/usr/share/libvirt/networks/default.xml")
CACHE = Path("/var/cache/kvmnet-corpus")

# what libvirt fills in itself: never compared (uuid and mac are generated per
# definition; kvmnet's mark lives in <metadata>)
IGNORED = ("uuid", "mac", "metadata")
# the one spelling kvmnet normalizes (as v1 did): an IPv4 netmask is written back as its prefix
SAME = {("netmask", "255.255.255.0"): ("prefix", "24"), ("netmask", "255.255.0.0"): ("prefix", "16"),
        ("netmask", "255.0.0.0"): ("prefix", "8"), ("netmask", "255.255.255.128"): ("prefix", "25")}
# examples libvirt 9.0 itself refuses (label → words of its message naming the feature)
REFUSED = {
    # an IPv6 address written as a placeholder ("fdXX:XXXX:XXXX:NNNN::")
    "formatnetwork[18]": "failed to validate against schema",
    # the page's DHCPv6 range lies outside its own /64
    "formatnetwork[21]": "is not entirely within network",
}


def corpus() -> dict[str, str]:
    if not FORMAT_PAGE.exists():
        pytest.skip("libvirt-doc is not installed (scripts/install.sh installs it)")
    out: dict[str, str] = {}
    page = FORMAT_PAGE.read_text(encoding="utf-8")
    for i, pre in enumerate(re.findall(r"<pre[^>]*>(.*?)</pre>", page, re.S)):
        text = html.unescape(re.sub(r"<[^>]+>", "", pre)).strip()
        if text.startswith("<network"):
            out[f"formatnetwork[{i}]"] = text
    for p in sorted(TESTNETS.glob("testnet*.xml")):
        out[p.name] = p.read_text(encoding="utf-8")
    out["debian default.xml"] = debian_default_xml()
    return out


def debian_default_xml() -> str:
    if DEFAULT_XML.exists():
        return DEFAULT_XML.read_text(encoding="utf-8")
    cached = CACHE / "default.xml"
    if not cached.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        work = CACHE / "deb"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        dl = subprocess.run(["apt-get", "download", "libvirt-daemon-config-network"], cwd=work,
                            capture_output=True, text=True)
        if dl.returncode != 0:
            pytest.fail(f"apt-get download libvirt-daemon-config-network: {dl.stderr.strip()}")
        (deb,) = work.glob("*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x")], check=True)
        shutil.copy(work / "x/usr/share/libvirt/networks/default.xml", cached)
        shutil.rmtree(work)
    return cached.read_text(encoding="utf-8")


def whole(text: str) -> bool:
    try:
        ET.fromstring(text)
    except ET.ParseError:
        return False
    return "..." not in text


_IPV4 = re.compile(r"\b\d{1,3}\.\d{1,3}\.(\d{1,3})\.(\d{1,3})\b")


def renamed(text: str, n: int) -> tuple[str, set[str]]:
    """The example as network ``corpus{n}`` on bridge ``kc{n}`` (libvirt refuses two
    networks on one bridge), its IPv4 addresses moved to 10.{n+100}.x.y, and the
    host devices it needs made in the sandbox."""
    root = ET.fromstring(text)
    root.find("name").text = f"corpus{n}"
    uuid = root.find("uuid")
    if uuid is not None:
        root.remove(uuid)
    mode = root.find("forward").get("mode", "nat") if root.find("forward") is not None else "isolated"
    devices = set()
    br = root.find("bridge")
    if mode in ("nat", "route", "open", "isolated"):
        if br is not None and br.get("name"):
            br.set("name", f"kc{n}")
    elif br is not None and br.get("name"):
        devices.add(br.get("name"))
    for el in root.iter():     # renumbered, so that kvmnet's subnet claims let all coexist
        for k, v in el.attrib.items():
            if k != "netmask":
                el.set(k, _IPV4.sub(lambda m: f"10.{n + 100}.{m.group(1)}.{m.group(2)}", v))
    fwd = root.find("forward")
    if fwd is not None:
        devices |= {d for d in [fwd.get("dev")] + [i.get("dev") for i in fwd.findall("interface")] if d}
    return ET.tostring(root, encoding="unicode"), devices


# -- the HCL of imported attributes (until import --generate-config lands) ---------------
def hcl_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(hcl_value(x) for x in v) + "]"
    return json.dumps(str(v)).replace("${", "$${").replace("%{", "%%{")


def hcl_block(attrs: dict, spec: El, indent: str) -> list[str]:
    lines = []
    for k, v in attrs.items():
        c = next((x for x in spec.children if x.key == k), None)
        if c is None or c.text:
            lines.append(f"{indent}{k} = {hcl_value(v)}")
            continue
        for item in (v if c.many else [v]):
            lines.append(f"{indent}{k} {{")
            lines += hcl_block(item, c, indent + "  ")
            lines.append(f"{indent}}}")
    return lines


def hcl_network(label: str, attrs: dict) -> str:
    a = {k: v for k, v in attrs.items() if k not in ("uuid", "kept") and v is not None}
    return "\n".join([f'resource "network" "{label}" {{'] + hcl_block(a, NETWORK, "  ") + ["}", ""])


# -- comparing XML element by element --------------------------------------------------
def items(xml: str) -> list[tuple]:
    """(path, sorted attributes, text) of every element, what libvirt fills in left out."""
    out = []

    def walk(el, path):
        for c in el:
            if not isinstance(c.tag, str) or (path == "network" and c.tag in IGNORED):
                continue
            p = f"{path}/{c.tag}"
            attrs = tuple(sorted(SAME.get(kv, kv) for kv in c.attrib.items()))
            out.append((p, attrs, (c.text or "").strip()))
            walk(c, p)

    root = ET.fromstring(xml)
    walk(root, "network")
    out.append(("network@", tuple(sorted((k, v) for k, v in root.attrib.items() if k != "connections")), ""))
    return sorted(out)


def saved_xml(conn, name: str) -> str:
    import libvirt as lv
    return conn.networkLookupByName(name).XMLDesc(lv.VIR_NETWORK_XML_INACTIVE)


def test_the_corpus_round_trips_through_kvmnet(libvirt, tmp_path):
    import libvirt as lv
    from kvmnet.providers.libvirt import LibvirtProvider
    from kvmnet.sdk.provider import Change

    examples = corpus()
    assert len(examples) >= 15, sorted(examples)
    conn = libvirt.connect()
    made_devices: set[str] = set()
    defined: dict[str, tuple[str, str]] = {}       # label → (network name, XML as libvirt saved it)
    refused: dict[str, str] = {}
    fragments = []
    try:
        for n, (label, text) in enumerate(sorted(examples.items())):
            if not whole(text):
                fragments.append(label)
                continue
            xml, devices = renamed(text, n)
            for dev in sorted(devices - made_devices):
                libvirt.ip("link", "add", dev, "type", "bridge", check=False)
                made_devices.add(dev)
            try:
                net = conn.networkDefineXMLFlags(xml, lv.VIR_NETWORK_DEFINE_VALIDATE)
            except lv.libvirtError as e:
                refused[label] = e.get_error_message()
                continue
            defined[label] = (net.name(), saved_xml(conn, net.name()))
        assert set(refused) == set(REFUSED), refused
        for label, words in REFUSED.items():
            assert words in refused[label]
        # the page's first example (metadata, then "...") and its dnsmasq:options one
        # (an xmlns declared with a placeholder, "...") are not whole documents
        assert fragments == ["formatnetwork[0]", "formatnetwork[15]"], fragments
        assert len(defined) >= 13, sorted(defined)

        # read back: nothing lost, and the attributes render to the same XML
        prov = LibvirtProvider({"uri": libvirt.uri})
        for label, (name, xml) in defined.items():
            attrs, _, lost = netxml.parse_full(xml)
            assert lost == [], (label, lost)
            again = netxml.render_network(attrs, uuid=None)
            assert items(again) == items(xml), label

        # kvmnet import of each, its config from the imported state: the plan shows no change
        cfg, state = tmp_path / "cfg", tmp_path / "state.db"
        body = [f'provider "libvirt" {{\n  uri = "{libvirt.uri}"\n}}\n']
        for label, (name, _) in defined.items():
            obj = prov.import_object("network", name)
            body.append(hcl_network(name, obj.attrs))
        write_config(cfg, "\n".join(body))
        for label, (name, _) in defined.items():
            rc, out, err = run_kvmnet(cfg, "--no-color", "import", f"network.{name}", name, state=state, timeout=120)
            assert rc == 0, (label, out, err)
        rc, out, err = run_kvmnet(cfg, "--no-color", "plan", "--detailed-exitcode", state=state, timeout=120)
        assert rc == 0, f"{out}\n{err}"

        # in place (autostart; a DHCP host where there is DHCP), then a replace: XML otherwise identical
        for label, (name, xml) in defined.items():
            before = prov.read("network", [name])[name].attrs
            want = dict(before, autostart=not before["autostart"])
            dhcp_ip = next((i for i, ip in enumerate(want.get("ip") or [])
                            if ip.get("dhcp") and ip.get("family") != "ipv6"), None)
            if dhcp_ip is not None:
                ips = [dict(ip) for ip in want["ip"]]
                ip = ips[dhcp_ip]
                hosts = list(ip["dhcp"].get("host") or [])
                base = ip["address"].rsplit(".", 1)[0]
                ip["dhcp"] = dict(ip["dhcp"], host=hosts + [{"mac": "52:54:00:c0:ff:ee", "ip": f"{base}.250"}])
                want["ip"] = ips
            assert prov.replace_paths("network", before, canonical("network", want)) == [], label
            list(prov.apply([Change("update", "network", f"network.{name}", before, want)]))
            changed = saved_xml(conn, name)
            extra = [x for x in items(changed) if x not in items(xml)]
            assert [x for x in items(xml) if x not in items(changed)] == [], label
            assert all("52:54:00:c0:ff:ee" in str(x) for x in extra), (label, extra)
            # replace: undefine and define again from the attributes
            after = prov.read("network", [name])[name].attrs
            conn.networkLookupByName(name).undefine()
            conn.networkDefineXMLFlags(netxml.render_network(after), lv.VIR_NETWORK_DEFINE_VALIDATE)
            assert items(saved_xml(conn, name)) == items(changed), label
    finally:
        for name, _ in defined.values():
            try:
                net = conn.networkLookupByName(name)
                if net.isActive():
                    net.destroy()
                net.undefine()
            except lv.libvirtError:
                pass
        conn.close()
        for dev in made_devices:
            libvirt.ip("link", "del", dev, check=False)
