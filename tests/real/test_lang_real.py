"""Language features through the real ``kvmnet`` CLI against a real libvirtd in a
network namespace: ``dynamic`` blocks, ``moved`` blocks and ``state mv`` (the
network stays, its ownership mark follows), ``removed`` and ``import`` blocks."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import requires_root
from tests.e2e.helpers import run_kvmnet, write_config

pytestmark = [requires_root, pytest.mark.real]

DYNAMIC = """
variable "hosts" {
  type = map(string)
  default = {
    "10.73.0.11" = "52:54:00:73:00:11"
    "10.73.0.12" = "52:54:00:73:00:12"
  }
}

resource "network" "lab" {
  mode   = "nat"
  bridge = "kvlang0"
  ip {
    address = "10.73.0.1"
    prefix  = 24
    dynamic "dhcp_host" {
      for_each = var.hosts
      iterator = h
      content {
        ip  = h.key
        mac = h.value
      }
    }
  }
}
"""


class Env:
    def __init__(self, sb, tmp_path: Path):
        self.sb = sb
        self.cfg = tmp_path / "cfg"
        self.state = tmp_path / "kvmnet.state.db"
        self.cfg.mkdir(parents=True, exist_ok=True)     # -C enters it, as Terraform's -chdir

    def write(self, body: str) -> None:
        write_config(self.cfg, f'provider "libvirt" {{\n  uri = "{self.sb.uri}"\n}}\n' + body)

    def ok(self, *args, rc=0, env=None):
        code, out, err = run_kvmnet(self.cfg, "--no-color", *args, state=self.state,
                                    timeout=120, env=env)
        assert code == rc, f"kvmnet {' '.join(args)} exited {code}\n{out}\n{err}"
        return out, err


@pytest.fixture
def env(libvirt, tmp_path):
    return Env(libvirt, tmp_path)


def test_dynamic_dhcp_hosts_reach_the_live_network(env):
    env.write(DYNAMIC)
    env.ok("apply", "--auto-approve")
    xml = env.sb.virsh("net-dumpxml", "lab").stdout
    assert "mac='52:54:00:73:00:11' ip='10.73.0.11'" in xml.replace('"', "'")
    assert "mac='52:54:00:73:00:12' ip='10.73.0.12'" in xml.replace('"', "'")
    out, _ = env.ok("plan", "--detailed-exitcode")
    assert "No changes" in out
    # one host more through the environment: an in-place update, no replace
    more = '{"10.73.0.11" = "52:54:00:73:00:11", "10.73.0.13" = "52:54:00:73:00:13"}'
    out, _ = env.ok("plan", "--detailed-exitcode", rc=2, env={"KVMNET_VAR_hosts": more})
    assert "must be replaced" not in out and "10.73.0.13" in out


def _net(label: str, extra: str = "") -> str:
    return f"""
resource "network" "{label}" {{
  name   = "lang-mv"
  mode   = "nat"
  bridge = "kvlang1"
  ip {{
    address = "10.74.0.1"
    prefix  = 24
  }}
{extra}}}
"""


def _mark_address(sb) -> str:
    xml = sb.virsh("net-dumpxml", "--inactive", "lang-mv").stdout
    import re
    m = re.search(r"kvmnet:[0-9a-f-]+:([^<\s]+)", xml)
    assert m, xml
    return m.group(1)


def _uuid(sb) -> str:
    return sb.virsh("net-uuid", "lang-mv").stdout.strip()


def test_moved_block_keeps_the_network_and_rewrites_its_mark(env):
    env.write(_net("old"))
    env.ok("apply", "--auto-approve")
    uuid = _uuid(env.sb)
    assert _mark_address(env.sb) == "network.old"
    env.write(_net("new") + "\nmoved {\n  from = network.old\n  to   = network.new\n}\n")
    out, _ = env.ok("plan", "--detailed-exitcode", rc=2)
    assert "# network.old has moved to network.new" in out
    assert "0 to add, 0 to change, 0 to destroy" in out
    env.ok("apply", "--auto-approve")
    assert _uuid(env.sb) == uuid                       # the same network, not a new one
    assert _mark_address(env.sb) == "network.new"
    out, _ = env.ok("state", "list")
    assert out.split() == ["network.new"]
    out, _ = env.ok("plan", "--detailed-exitcode")
    assert "No changes" in out


def test_state_mv_then_apply_rewrites_the_mark(env):
    env.write(_net("old"))
    env.ok("apply", "--auto-approve")
    uuid = _uuid(env.sb)
    out, _ = env.ok("state", "mv", "network.old", "network.renamed")
    assert "Moved network.old to network.renamed." in out
    assert _mark_address(env.sb) == "network.old"      # state mv touches nothing live
    env.write(_net("renamed"))
    out, _ = env.ok("plan")
    assert "ownership mark follows the new address" in out and "must be replaced" not in out
    env.ok("apply", "--auto-approve")
    assert _uuid(env.sb) == uuid and _mark_address(env.sb) == "network.renamed"


def test_state_mv_errors(env):
    env.write(_net("old"))
    env.ok("apply", "--auto-approve")
    for args, message in [
        (("network.nope", "network.x"), "network.nope is not in the state"),
        (("network.old", "bridge.x"), "cannot move a network to a bridge address"),
        (("network.old", "nope"), "'nope' is not a resource or module address"),
    ]:
        code, out, err = run_kvmnet(env.cfg, "--no-color", "state", "mv", *args, state=env.state)
        assert code == 1 and err.startswith("Error: ") and message in err, err
        assert len(err.strip().splitlines()) == 1


def test_removed_block_forgets_and_leaves_the_network(env):
    env.write(_net("old"))
    env.ok("apply", "--auto-approve")
    env.write("removed {\n  from = network.old\n  lifecycle {\n    destroy = false\n  }\n}\n")
    out, _ = env.ok("plan")
    assert "will no longer be managed by kvmnet" in out and "1 to forget" in out
    out, _ = env.ok("apply", "--auto-approve")
    assert "network.old: Forgotten (removed block; the live object was left as it is)" in out
    out, _ = env.ok("state", "list")
    assert out.strip() == ""
    assert "lang-mv" in env.sb.virsh("net-list", "--all", "--name").stdout


def test_import_block_adopts_a_live_network_untouched(env):
    xml = ("<network><name>lang-mv</name><forward mode='nat'/><bridge name='kvlang1'/>"
           "<ip address='10.74.0.1' prefix='24'/></network>")
    path = env.cfg.parent / "net.xml"
    path.write_text(xml)
    env.sb.virsh("net-define", str(path))
    env.sb.virsh("net-start", "lang-mv")
    before = env.sb.virsh("net-dumpxml", "--inactive", "lang-mv").stdout
    env.write(_net("lab", '  autostart = false\n') + '\nimport {\n  to = network.lab\n  id = "lang-mv"\n}\n')
    out, _ = env.ok("plan", "--detailed-exitcode", rc=2)
    assert "# network.lab will be imported (id lang-mv)" in out
    assert "Plan: 1 to import, 0 to add, 0 to change, 0 to destroy." in out
    env.ok("apply", "--auto-approve")
    assert env.sb.virsh("net-dumpxml", "--inactive", "lang-mv").stdout == before
    out, _ = env.ok("plan", "--detailed-exitcode")
    assert "No changes" in out


DATA = """
data "network" "default" {
  name = "default"
}

data "domain" "web" {
  name = "lang-web"
}

resource "network" "lab" {
  name   = "lang-data"
  mode   = "nat"
  bridge = "kvlang2"
  ip {
    address = "10.75.0.1"
    prefix  = 24
    dhcp_host {
      mac = data.domain.web.macs[0]
      ip  = "10.75.0.10"
    }
  }
}

output "default_bridge" {
  value = data.network.default.bridge
}
"""


@pytest.fixture
def web_domain(libvirt):
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 is not installed (a domain needs an emulator to be defined)")
    from kvmnet.sandbox.guest import domain_xml
    libvirt.define_default_network()
    conn = libvirt.connect()
    try:
        conn.defineXML(domain_xml("lang-web", "/nonexistent/vmlinuz", "/nonexistent/initrd",
                                  "/nonexistent/console.log", network="default",
                                  mac="52:54:00:75:00:10"))
    finally:
        conn.close()
    yield libvirt


def test_data_sources_read_live_objects(env, web_domain):
    env.write(DATA)
    out, _ = env.ok("plan")
    assert 'default_bridge = "virbr0"' in out
    env.ok("apply", "--auto-approve")
    xml = env.sb.virsh("net-dumpxml", "lang-data").stdout.replace('"', "'")
    assert "mac='52:54:00:75:00:10' ip='10.75.0.10'" in xml
    out, _ = env.ok("plan", "--detailed-exitcode")
    assert "No changes" in out


def test_a_missing_data_object_is_one_error_with_its_line(env, web_domain):
    env.write(DATA.replace('name = "lang-web"', 'name = "nope"'))
    code, out, err = run_kvmnet(env.cfg, "--no-color", "plan", state=env.state, timeout=120)
    assert code == 1
    assert 'main.hcl:9: data.domain.web: no libvirt domain named "nope"' in err, err


def _define_lang_mv(sb, tmp: Path) -> None:
    path = tmp / "net.xml"
    path.write_text("<network><name>lang-mv</name><forward mode='nat'/><bridge name='kvlang1'/>"
                    "<ip address='10.74.0.1' prefix='24'/></network>")
    sb.virsh("net-define", str(path))


def test_plan_generate_config_out_writes_the_block_and_plans_the_import(env):
    _define_lang_mv(env.sb, env.cfg.parent)
    env.write('import {\n  to = network.lab\n  id = "lang-mv"\n}\n')
    out, err = env.ok("plan", "-generate-config-out=generated.hcl")
    text = (env.cfg / "generated.hcl").read_text()
    assert 'resource "network" "lab" {' in text and '"lang-mv"' in text
    assert "generated.hcl" in err
    assert "# network.lab will be imported (id lang-mv)" in out
    env.ok("apply", "--auto-approve")
    out, _ = env.ok("plan", "--detailed-exitcode")
    assert "No changes" in out
    code, _, err = run_kvmnet(env.cfg, "--no-color", "plan", "--generate-config-out", "generated.hcl",
                              state=env.state)
    assert code == 1 and "the file already exists" in err
    env.write('import {\n  to = network.nope\n  id = "nope"\n}\n')
    code, _, err = run_kvmnet(env.cfg, "--no-color", "plan", "--generate-config-out=other.hcl",
                              state=env.state)
    assert code == 1 and "main.hcl:4: import: no network with ID 'nope' exists" in err, err
    assert not (env.cfg / "other.hcl").exists()


SENSITIVE = """
variable "bridge" {
  type      = string
  sensitive = true
}

resource "network" "lab" {
  name   = "lang-sens"
  mode   = "nat"
  bridge = var.bridge
  ip {
    address = "10.76.0.1"
    prefix  = 24
  }
}
"""


def test_a_sensitive_variable_never_shows_in_clear(env):
    env.write(SENSITIVE)
    secret = "kvsecret7"
    planfile = env.cfg.parent / "saved.plan"
    out, _ = env.ok("plan", "--var", f"bridge={secret}", f"--out={planfile}")
    assert secret not in out and "(sensitive value)" in out
    assert secret not in planfile.read_text()
    code, _, err = run_kvmnet(env.cfg, "--no-color", "apply", str(planfile), state=env.state)
    assert code == 1 and "give it again (kvmnet apply --var bridge=... PLANFILE)" in err, err
    code, _, err = run_kvmnet(env.cfg, "--no-color", "apply", "--var", "bridge=other", str(planfile),
                              state=env.state)
    assert code == 1 and "--var bridge is not the value the plan was made with" in err, err
    out, _ = env.ok("apply", "--var", f"bridge={secret}", str(planfile))
    assert secret not in out
    assert f"<bridge name='{secret}'" in env.sb.virsh("net-dumpxml", "lang-sens").stdout.replace('"', "'")
    out, err = env.ok("state", "show", "network.lab", env={"KVMNET_VAR_bridge": secret})
    assert secret not in out + err and "(sensitive value)" in out
    out, _ = env.ok("state", "history", "--json", env={"KVMNET_VAR_bridge": secret})
    assert secret not in out
    # gone from the configuration: the state remembers what was sensitive
    env.write('variable "bridge" {\n  type      = string\n  sensitive = true\n}\n')
    out, _ = env.ok("plan", "--var", f"bridge={secret}")
    assert secret not in out and "(sensitive value)" in out and "destroy" in out
    out, _ = env.ok("apply", "--auto-approve", "--var", f"bridge={secret}")
    assert secret not in out
    assert "lang-sens" not in env.sb.virsh("net-list", "--all", "--name").stdout


def test_moved_sysctl_profile_moves_its_persist_file(ns, tmp_path):
    persist = tmp_path / "sysctl.d"
    cfg = tmp_path / "cfg"
    provider = f'provider "sysctl" {{\n  netns       = "{ns}"\n  persist_dir = "{persist}"\n}}\n'
    body = 'resource "sysctl_profile" "%s" {\n  settings = { "net.ipv4.ip_forward" = 1 }\n}\n'
    write_config(cfg, provider + body % "old")
    state = tmp_path / "s.db"
    code, out, err = run_kvmnet(cfg, "apply", "--auto-approve", state=state)
    assert code == 0, err
    (old_file,) = persist.iterdir()
    write_config(cfg, provider + body % "new" + "moved {\n  from = sysctl_profile.old\n  to = sysctl_profile.new\n}\n")
    code, out, err = run_kvmnet(cfg, "apply", "--auto-approve", state=state)
    assert code == 0, err
    assert "# sysctl_profile.old has moved to sysctl_profile.new" in out
    (new_file,) = persist.iterdir()                 # one file: the old one is gone
    assert new_file != old_file and "sysctl_profile.new" in new_file.read_text()
    code, out, err = run_kvmnet(cfg, "plan", "--detailed-exitcode", state=state)
    assert code == 0 and "No changes" in out, out + err


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lang-lab"


def test_the_lang_lab_example_applies(libvirt, tmp_path):
    """The example as a user runs it: the stock network imported untouched, the lab
    made with its dynamic DHCP hosts; then the move its moved block describes."""
    libvirt.define_default_network()
    cfg = tmp_path / "lang-lab"
    shutil.copytree(EXAMPLE, cfg)
    state = tmp_path / "s.db"
    uri = f"libvirt_uri={libvirt.uri}"

    def k(*args, rc=0):
        code, out, err = run_kvmnet(cfg, "--no-color", "--var", uri, *args, state=state, timeout=120)
        assert code == rc, f"{args}: {code}\n{out}\n{err}"
        return out

    out = k("plan")
    assert "# network.default will be imported (id default)" in out
    assert 'default_bridge = "virbr0"' in out and "kvlab0" not in out    # sensitive
    k("apply", "--auto-approve")
    xml = libvirt.virsh("net-dumpxml", "lang-lab").stdout.replace('"', "'")
    assert "mac='52:54:00:77:00:11' ip='10.77.0.11'" in xml
    assert "No changes" in k("plan", "--detailed-exitcode")
    # the state as it was before the rename: the moved block brings it back, no replace
    k("state", "mv", "network.lab", "network.lab_old")
    assert "# network.lab_old has moved to network.lab" in k("plan")
    k("apply", "--auto-approve")
    assert "No changes" in k("plan", "--detailed-exitcode")
    # the precondition reads the data source, live at plan time
    libvirt.virsh("net-destroy", "default")
    code, out, err = run_kvmnet(cfg, "--no-color", "--var", uri, "plan", state=state, timeout=120)
    assert code == 1 and "main.hcl:53: network.lab: precondition failed: the default network must be " \
        "running: the lab's guests use it too." in err, err


MOVED_KINDS = {
    "bridge": ('provider "iproute" {{\n  netns = "{ns}"\n}}\n',
               'resource "bridge" "{label}" {{\n  name = "br-lang"\n}}\n'),
    "port_forward": ('provider "nftables" {{\n  netns = "{ns}"\n}}\n',
                     'resource "port_forward" "{label}" {{\n  protocol   = "tcp"\n  host_port  = 8080\n'
                     '  to_address = "10.78.0.5"\n  to_port    = 80\n}}\n'),
}


def _live_marks(ns: str, kind: str) -> str:
    from kvmnet.sandbox.netns import in_ns
    if kind == "bridge":
        return in_ns(ns, "ip", "-d", "link", "show", "dev", "br-lang").stdout
    return in_ns(ns, "nft", "list", "ruleset").stdout


@pytest.mark.parametrize("kind", sorted(MOVED_KINDS))
def test_moved_link_and_forward_marks_follow(ns, tmp_path, kind):
    provider, body = MOVED_KINDS[kind]
    cfg, state = tmp_path / "cfg", tmp_path / "s.db"
    write_config(cfg, provider.format(ns=ns) + body.format(label="old"))
    code, out, err = run_kvmnet(cfg, "apply", "--auto-approve", state=state)
    assert code == 0, err
    assert f"{kind}.old" in _live_marks(ns, kind)
    write_config(cfg, provider.format(ns=ns) + body.format(label="new")
                 + f"moved {{\n  from = {kind}.old\n  to   = {kind}.new\n}}\n")
    code, out, err = run_kvmnet(cfg, "--no-color", "apply", "--auto-approve", state=state)
    assert code == 0, err
    assert f"# {kind}.old has moved to {kind}.new" in out and "0 to destroy" in out
    live = _live_marks(ns, kind)
    assert f"{kind}.new" in live and f"{kind}.old" not in live
    code, out, err = run_kvmnet(cfg, "plan", "--detailed-exitcode", state=state)
    assert code == 0 and "No changes" in out, out + err


TRIGGERED = """
resource "network" "up" {
  name      = "lang-up"
  mode      = "isolated"
  bridge    = "kvlang3"
  autostart = %s
}

resource "network" "down" {
  name   = "lang-down"
  mode   = "isolated"
  bridge = "kvlang4"
  lifecycle {
    replace_triggered_by = [network.up.autostart]
  }
}
"""


def test_replace_triggered_by_replaces_a_live_network(env):
    env.write(TRIGGERED % "true")
    env.ok("apply", "--auto-approve")
    uuid = env.sb.virsh("net-uuid", "lang-down").stdout.strip()
    env.write(TRIGGERED % "false")
    out, _ = env.ok("apply", "--auto-approve")
    assert "network.down must be replaced (replace triggered by network.up.autostart)" in out
    assert env.sb.virsh("net-uuid", "lang-down").stdout.strip() != uuid
    out, _ = env.ok("plan", "--detailed-exitcode")
    assert "No changes" in out


def test_replace_option_replaces_an_unchanged_live_network_in_both_spellings(env):
    env.write(_net("lab"))
    env.ok("apply", "--auto-approve")
    uuid = _uuid(env.sb)
    out, _ = env.ok("plan", "-replace=network.lab", "-detailed-exitcode", rc=2)
    assert "network.lab must be replaced (replace requested with --replace)" in out
    out, _ = env.ok("apply", "--auto-approve", "--replace", "network.lab")
    assert "1 added" in out and "1 destroyed" in out
    assert _uuid(env.sb) != uuid and _mark_address(env.sb) == "network.lab"
    out, _ = env.ok("plan", "--detailed-exitcode")
    assert "No changes" in out
