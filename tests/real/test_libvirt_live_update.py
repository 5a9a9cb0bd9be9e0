"""issue 11, item 4, through the real CLI and the real sandboxed libvirtd: a change
to what virNetworkUpdate can make (DHCP hosts and ranges on both ip blocks, DNS
hosts, SRV and TXT records, portgroups, forward interfaces) is planned as an
in-place update and applied live and saved: the network keeps its UUID and is not
restarted (its bridge keeps its ifindex; a DHCP host change keeps dnsmasq's pid,
libvirt only signals it), and the next plan is empty."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tests.e2e.helpers import run_kvmnet, write_config

NAT = """
resource "network" "lu" {{
  name = "lu"
  forward {{ mode = "nat" }}
  bridge {{ name = "kvlu0" }}
  dns {{
{dns}  }}
  ip {{
    address = "10.69.0.1"
    prefix  = 24
    dhcp {{
{v4}    }}
  }}
  ip {{
    family  = "ipv6"
    address = "fd69::1"
    prefix  = 64
    dhcp {{
{v6}    }}
  }}
{groups}}}

resource "network" "luf" {{
  name = "luf"
  forward {{
    mode = "bridge"
{ifaces}  }}
}}
"""

BEFORE = dict(
    dns="""    host {
      ip       = "10.69.0.5"
      hostname = ["a", "b"]
    }
    srv {
      service  = "ldap"
      protocol = "tcp"
      target   = "ldap.lab"
      port     = 389
    }
    txt {
      name  = "ex"
      value = "one"
    }
""",
    v4="""      range {
        start = "10.69.0.10"
        end   = "10.69.0.20"
      }
      host {
        mac  = "52:54:00:69:00:01"
        name = "web"
        ip   = "10.69.0.11"
      }
""",
    v6="""      range {
        start = "fd69::10"
        end   = "fd69::20"
      }
""",
    groups="""  portgroup {
    name    = "eng"
    default = true
  }
""",
    ifaces="""    interface { dev = "kvluf1" }
    interface { dev = "kvluf2" }
""",
)

# a DHCP host moved: libvirt signals dnsmasq (SIGHUP), it keeps running
HOST_MOVED = dict(BEFORE, v4=BEFORE["v4"].replace('"10.69.0.11"', '"10.69.0.12"'))

# everything else virNetworkUpdate changes
AFTER = dict(
    HOST_MOVED,
    dns="""    host {
      ip       = "10.69.0.5"
      hostname = ["a"]
    }
    host {
      ip       = "10.69.0.6"
      hostname = ["c"]
    }
    txt {
      name  = "ex"
      value = "two"
    }
    srv = []
""",
    v6="""      range {
        start = "fd69::30"
        end   = "fd69::40"
      }
      host {
        id   = "0:3:0:1:0:16:3e:11:22:33"
        name = "db"
        ip   = "fd69::11"
      }
""",
    # listed before the existing one (libvirt appends it): order is not a change;
    # default = false is how libvirt reads a portgroup without default; a bandwidth
    # (a vlan would need openvswitch: libvirt refuses it on a nat network's define)
    groups="""  portgroup {
    name = "ops"
  }
  portgroup {
    name    = "eng"
    default = false
    bandwidth {
      inbound { average = 4200 }
    }
  }
""",
    ifaces="""    interface { dev = "kvluf2" }
    interface { dev = "kvluf3" }
""",
)


class Env:
    def __init__(self, sb, tmp_path: Path):
        self.sb, self.cfg, self.state = sb, tmp_path / "cfg", tmp_path / "s.db"

    def write(self, parts: dict) -> None:
        write_config(self.cfg, f'provider "libvirt" {{\n  uri = "{self.sb.uri}"\n}}\n' + NAT.format(**parts))

    def k(self, *args):
        return run_kvmnet(self.cfg, "--no-color", *args, state=self.state, timeout=120)


def _ifindex(sb, dev: str) -> str:
    return sb.ip("-o", "link", "show", dev).stdout.split(":")[0]


def _dnsmasq_pid(sb, name: str) -> int:
    pids = [pid for pid in sb.netns_pids()
            if any(f"/{name}.conf" in a for a in _cmdline(pid)) and "dnsmasq" in " ".join(_cmdline(pid))]
    assert pids, f"no dnsmasq for {name}"
    return min(pids)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _plan_is_in_place(env: Env) -> str:
    rc, out, err = env.k("plan", "--detailed-exitcode")
    assert rc == 2, out + err
    assert "will be updated in-place" in out, out
    assert "must be replaced" not in out and "restarted" not in out, out
    return out


def test_live_updates_keep_the_network_running(libvirt, tmp_path):
    import libvirt as lv
    sb = libvirt
    env = Env(sb, tmp_path)
    env.write(BEFORE)
    rc, out, err = env.k("apply", "--auto-approve")
    assert rc == 0, out + err
    conn = sb.connect()
    try:
        uuids = {n: conn.networkLookupByName(n).UUIDString() for n in ("lu", "luf")}
        bridge, dnsmasq = _ifindex(sb, "kvlu0"), _dnsmasq_pid(sb, "lu")
        rc, out, err = env.k("plan", "--detailed-exitcode")
        assert rc == 0, out + err

        env.write(HOST_MOVED)
        _plan_is_in_place(env)
        rc, out, err = env.k("apply", "--auto-approve")
        assert rc == 0, out + err
        assert _dnsmasq_pid(sb, "lu") == dnsmasq       # not restarted, only signalled
        assert _ifindex(sb, "kvlu0") == bridge

        env.write(AFTER)
        out = _plan_is_in_place(env)
        assert "network.lu will be updated in-place" in out and "network.luf will be updated in-place" in out
        rc, out, err = env.k("apply", "--auto-approve")
        assert rc == 0, out + err
        for n, u in uuids.items():
            net = conn.networkLookupByName(n)
            assert net.UUIDString() == u and net.isActive()
        assert _ifindex(sb, "kvlu0") == bridge            # the same bridge: no restart
        net = conn.networkLookupByName("lu")
        for xml in (net.XMLDesc(0), net.XMLDesc(lv.VIR_NETWORK_XML_INACTIVE)):   # live and saved
            root = ET.fromstring(xml)
            assert sorted((h.get("ip"), [n.text for n in h.findall("hostname")]) for h in root.findall("dns/host")) \
                == [("10.69.0.5", ["a"]), ("10.69.0.6", ["c"])], xml
            assert root.findall("dns/srv") == [] and root.find("dns/txt").get("value") == "two", xml
            v4, v6 = root.findall("ip")
            assert v4.find("dhcp/host").get("ip") == "10.69.0.12", xml
            assert [(r.get("start"), r.get("end")) for r in v6.findall("dhcp/range")] == [("fd69::30", "fd69::40")]
            assert v6.find("dhcp/host").get("id") == "0:3:0:1:0:16:3e:11:22:33", xml
            groups = {g.get("name"): g for g in root.findall("portgroup")}
            assert sorted(groups) == ["eng", "ops"] and groups["eng"].get("default") is None, xml
            assert groups["eng"].find("bandwidth/inbound").get("average") == "4200", xml
        for xml in (conn.networkLookupByName("luf").XMLDesc(0),
                    conn.networkLookupByName("luf").XMLDesc(lv.VIR_NETWORK_XML_INACTIVE)):
            assert [i.get("dev") for i in ET.fromstring(xml).findall("forward/interface")] == ["kvluf2", "kvluf3"]
        rc, out, err = env.k("plan", "--detailed-exitcode")
        assert rc == 0, out + err
    finally:
        conn.close()
