"""Modules and provider aliases through the engine (load → expand → graph → plan →
apply) with the FAKE provider of test_engine_plan: addresses, inputs, outputs,
count/for_each, path.*, -target, marks; every error path with FILE:LINE."""
from __future__ import annotations

import textwrap

import pytest

from kvmnet.engine.diagnostics import DiagnosticError
from kvmnet.engine.plan.model import CREATE, NOOP
from kvmnet.engine.prepare import prepare
from kvmnet.sdk.addresses import parse_address, resource_of, within
from kvmnet.sdk.ownership import MAX_BYTES, format_mark, mark_address, parse_mark
from tests.unit.test_engine_plan import Harness, World, make_fake  # noqa: F401

MODULE = """
variable "name" {
  type = string
}
variable "mtu" {
  type    = number
  default = 1500
}
resource "bridge" "br" {
  name = var.name
  mtu  = var.mtu
}
resource "network" "net" {
  name   = "net-${var.name}"
  mode   = "bridge"
  bridge = bridge.br.name
}
output "bridge" {
  value = bridge.br.name
}
output "network_uuid" {
  value = network.net.uuid
}
output "where" {
  value = path.module
}
"""


@pytest.fixture
def world(monkeypatch):
    from kvmnet.engine import registry
    w = World()
    fake = make_fake(w)
    monkeypatch.setattr(registry, "_classes", {**registry._classes, "libvirt": fake, "iproute": fake,
                                               "libvirt.kvm02": fake})
    return w


@pytest.fixture
def h(tmp_path, world):
    h = Harness(tmp_path, world)
    h.module = lambda text, name="role": _write(tmp_path / "modules" / name, text)
    h.module(MODULE)
    return h


def _write(d, text):
    d.mkdir(parents=True, exist_ok=True)
    (d / "main.hcl").write_text(textwrap.dedent(text))


def errors(h) -> list[str]:
    with pytest.raises(DiagnosticError) as e:
        prepare(str(h.dir), use_cache=False)
    return [str(d) for d in e.value.diagnostics.errors]


# -- addresses ---------------------------------------------------------------------------

def test_addresses_parse_module_paths_and_keys_with_dots_and_brackets():
    a = parse_address('module.host["kvm.01[x]"].module.b[2].network.lab["a.b"]')
    assert a.module == (("host", "kvm.01[x]"), ("b", 2)) and (a.type, a.name, a.key) == ("network", "lab", "a.b")
    assert a.resource == 'module.host["kvm.01[x]"].module.b[2].network.lab'
    assert resource_of('module.a.network.lab[0]') == "module.a.network.lab"
    assert parse_address("module.a").type is None
    for bad in ("module", "module.", "network", "network.lab[", 'network.lab["x"', "network.lab.x", "module.a[b]"):
        with pytest.raises(ValueError):
            parse_address(bad)


def test_within_a_module_target_takes_every_instance_inside():
    assert within('module.h["a"].network.lab', "module.h")
    assert within('module.h["a"].module.x.network.lab[0]', 'module.h["a"]')
    assert not within('module.h["b"].network.lab', 'module.h["a"]')
    assert not within("module.hx.network.lab", "module.h")
    assert not within("network.lab", "module.h")
    assert within("module.h.network.lab[1]", "module.h.network.lab")
    assert not within("network.lab", "module.h.network.lab")


def test_long_addresses_give_marks_that_fit_an_nft_comment_and_name_their_address():
    lineage = "11111111-2222-3333-4444-555555555555"
    short = "module.kvm01.network.lab"
    assert format_mark(lineage, short).endswith(":" + short)
    long = 'module.host["' + "k" * 80 + '"].module.role.port_forward.web["http"]'
    mark = format_mark(lineage, long)
    assert len(mark.encode()) <= MAX_BYTES and mark == format_mark(lineage, long)
    m = parse_mark(mark)
    assert m.address == mark_address(long) and m.address.startswith('module.host["kkk') and "~" in m.address
    other = long.replace("http", "https")
    assert mark_address(other) != m.address
    # multi-byte characters are cut on a character boundary
    wide = 'module.h["' + "é" * 80 + '"].bridge.br'
    assert len(format_mark(lineage, wide).encode()) <= MAX_BYTES


# -- plan and apply ------------------------------------------------------------------------

def test_module_instances_plan_apply_and_state_under_full_addresses(h):
    h.config("""
    module "one" {
      source = "../modules/role"
      name   = "br-one"
    }
    module "many" {
      source = "../modules/role"
      count  = 2
      name   = "brm${count.index}"
      mtu    = 1400
    }
    module "each" {
      source   = "../modules/role"
      for_each = toset(["a", "b"])
      name     = "bre${each.key}"
    }
    resource "bridge" "top" {
      name = "top-${module.many[1].bridge}"
      mtu  = 1300
    }
    output "names" {
      value = [module.one.bridge, module.each["b"].bridge, module.one.where]
    }
    """)
    plan, prepared, _, _ = h.plan()
    assert not plan.errors, [str(e) for e in plan.errors]
    acts = h.actions(plan)
    assert acts["module.one.bridge.br"] == CREATE and acts['module.each["a"].network.net'] == CREATE
    assert acts["module.many[1].bridge.br"] == CREATE and acts["bridge.top"] == CREATE
    assert len(acts) == 11
    after = {c.address: c.after for c in plan.resource_changes}
    assert after["module.many[0].bridge.br"]["mtu"] == 1400 and after["module.one.bridge.br"]["mtu"] == 1500
    assert after["bridge.top"]["name"] == "top-brm1"
    assert plan.outputs["names"][:2] == ["br-one", "breb"]
    assert plan.outputs["names"][2].endswith("modules/role")
    # a module's network depends on its own bridge, the root's bridge on module.many
    g = prepared.graph
    assert g.has_edge("module.one.bridge.br", "module.one.network.net")
    assert g.has_edge("module.many[1].bridge.br", "bridge.top")
    rcs = {c["address"]: c for c in plan.to_json()["resource_changes"]}
    assert rcs['module.each["a"].bridge.br']["module_address"] == 'module.each["a"]'
    assert "module_address" not in rcs["bridge.top"]
    inst = prepared.instances['module.each["a"].bridge.br']
    assert inst.module == 'module.each["a"]' and inst.resource_address == 'module.each["a"].bridge.br'
    _, report = h.apply()
    assert report.ok
    st = h.state()
    assert 'module.each["b"].network.net' in st.instances
    rec = st.instances["module.many[0].network.net"]
    assert (rec.type, rec.name) == ("network", "net") and rec.attrs["bridge"]["name"] == "brm0"
    obj = h.world.objects[("network", "net-brm0")]
    assert obj.mark.address == "module.many[0].network.net"
    plan, _, _, _ = h.plan()
    assert all(a == NOOP for a in h.actions(plan).values())


def test_unknown_module_output_flows_into_the_caller_until_apply(h):
    h.config("""
    module "one" {
      source = "../modules/role"
      name   = "br1"
    }
    resource "bridge" "uses_uuid" {
      name = "u-${module.one.network_uuid}"
    }
    """)
    plan, prepared, _, _ = h.plan()
    assert prepared.graph.has_edge("module.one.network.net", "bridge.uses_uuid")
    top = next(c for c in plan.resource_changes if c.address == "bridge.uses_uuid")
    from kvmnet.sdk.values import UNKNOWN
    assert top.after["name"] is UNKNOWN
    _, report = h.apply()           # filled in once module.one's network exists
    assert report.ok
    assert h.state().instances["bridge.uses_uuid"].attrs["name"] == "u-uuid-net-br1"


def test_a_value_read_early_is_not_kept_stale(h):
    """A caller reads one output before another output's resource is planned: the
    later reader still sees the planned value (outputs and inputs are not memoised)."""
    h.module("""
    variable "n" {
      type = number
    }
    resource "bridge" "first" {
      mtu = var.n
    }
    resource "bridge" "second" {
      count = 2
      name  = "s${count.index}"
      mtu   = bridge.first.mtu + count.index
    }
    output "first" {
      value = bridge.first.mtu
    }
    output "seconds" {
      value = bridge.second[*].mtu
    }
    """, name="two")
    h.config("""
    module "m" {
      source = "../modules/two"
      n      = 1400
    }
    resource "bridge" "early" {
      mtu = module.m.first
    }
    resource "bridge" "late" {
      mtu = max(module.m.seconds...)
    }
    """)
    plan, _, _, _ = h.plan()
    after = {c.address: c.after for c in plan.resource_changes}
    assert after["bridge.early"]["mtu"] == 1400 and after["bridge.late"]["mtu"] == 1401


def test_target_a_module_takes_everything_in_it_and_its_dependencies(h):
    h.config("""
    module "a" {
      source = "../modules/role"
      name   = "bra"
    }
    module "b" {
      source = "../modules/role"
      for_each = toset(["x", "y"])
      name   = "b${each.key}-${module.a.bridge}"
    }
    resource "bridge" "lone" {
      mtu = 1400
    }
    """)
    plan, _, _, _ = h.plan(targets=['module.b["x"]'])
    assert sorted(h.actions(plan)) == ["module.a.bridge.br", 'module.b["x"].bridge.br',
                                       'module.b["x"].network.net']
    plan, _, _, _ = h.plan(targets=["module.b"])
    assert len(plan.resource_changes) == 5 and "bridge.lone" not in h.actions(plan)
    plan, _, _, _ = h.plan(targets=["module.a.network.net"])
    assert sorted(h.actions(plan)) == ["module.a.bridge.br", "module.a.network.net"]


def test_nested_modules_and_module_depends_on(h):
    h.module("""
    variable "prefix" {
      type = string
    }
    module "inner" {
      source = "../role"
      name   = "${var.prefix}-in"
    }
    output "inner_bridge" {
      value = module.inner.bridge
    }
    """, name="outer")
    h.config("""
    resource "bridge" "first" {
      mtu = 1400
    }
    module "o" {
      source     = "../modules/outer"
      prefix     = "x"
      depends_on = [bridge.first]
    }
    output "b" {
      value = module.o.inner_bridge
    }
    """)
    plan, prepared, _, _ = h.plan()
    assert not plan.errors
    assert "module.o.module.inner.network.net" in h.actions(plan)
    assert plan.outputs["b"] == "x-in"
    assert prepared.graph.has_edge("bridge.first", "module.o.module.inner.bridge.br")


def test_provider_alias_reference_and_string_forms_and_providers_map(h, world):
    h.config("""
    provider "libvirt" {
      alias = "kvm02"
      uri   = "test:///default"
    }
    resource "network" "ref" {
      provider = libvirt.kvm02
      mode     = "nat"
    }
    resource "network" "str" {
      provider = "libvirt.kvm02"
      mode     = "nat"
    }
    resource "network" "dflt" {
      mode = "nat"
    }
    module "m" {
      source    = "../modules/role"
      name      = "brm"
      providers = { libvirt = libvirt.kvm02 }
    }
    """)
    plan, prepared, _, _ = h.plan()
    assert not plan.errors
    prov = {c.address: c.provider for c in plan.resource_changes}
    assert prov["network.ref"] == prov["network.str"] == prov["module.m.network.net"] == "libvirt.kvm02"
    assert prov["network.dflt"] == "libvirt" and prov["module.m.bridge.br"] == "iproute"
    assert "libvirt.kvm02" in prepared.config.providers
    assert "alias" not in prepared.config.providers["libvirt.kvm02"].attrs


def test_saved_plan_digest_covers_module_directories(h):
    h.config("""
    module "one" {
      source = "../modules/role"
      name   = "br1"
    }
    """)
    before = prepare(str(h.dir), use_cache=False).config.digest
    h.module(MODULE.replace("default = 1500", "default = 1450"))
    assert prepare(str(h.dir), use_cache=False).config.digest != before


# -- errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("body, expect", [
    ('module "x" {\n  name = "a"\n}\n', 'main.hcl:1: module "x" needs a "source" attribute'),
    ('module "x" {\n  source = "github.com/a/b"\n}\n', "main.hcl:2: module \"x\": source 'github.com/a/b' is not a local path"),
    ('module "x" {\n  source = "./nope"\n}\n', "main.hcl:1: module \"x\": source directory './nope' does not exist"),
    ('module "x" {\n  source = "../modules/role"\n}\n', 'main.hcl:1: module "x" needs a value for its variable "name"'),
    ('module "x" {\n  source = "../modules/role"\n  name = "a"\n  colour = 1\n}\n',
     'main.hcl:4: module "x" has no variable "colour"'),
    ('module "x" {\n  source = "../modules/role"\n  name = "a"\n  version = "1.0"\n}\n',
     'main.hcl:4: module "x": "version" applies to registry modules'),
    ('module "x" {\n  source = "../modules/role"\n  name = "a"\n}\nmodule "x" {\n  source = "../modules/role"\n  name = "b"\n}\n',
     'main.hcl:5: module "x" is defined twice'),
    ('module "x" {\n  source = "../modules/role"\n  name = "a"\n  count = 1\n  for_each = {}\n}\n',
     'main.hcl:5: module.x: "count" and "for_each" cannot both be set'),
    ('module "x" {\n  source = "../modules/role"\n  name = "a"\n  providers = { libvirt = libvirt.nope }\n}\n',
     'main.hcl:4: module.x: providers: no provider "libvirt.nope" is configured'),
    ('module "x" {\n  source = "../modules/role"\n  name = "a"\n  providers = { libvirt = iproute }\n}\n',
     "main.hcl:4: module.x: providers: libvirt cannot be given iproute"),
    ('resource "network" "n" {\n  provider = libvirt.nope\n}\n',
     'main.hcl:2: network.n: provider "libvirt.nope" is not configured'),
    ('provider "libvirt" {\n  alias = "a b"\n}\n', "main.hcl:2: provider \"libvirt\": alias must be a literal name"),
    ('provider "libvirt" {\n  alias = "x"\n}\nprovider "libvirt" {\n  alias = "x"\n}\n',
     'main.hcl:4: provider "libvirt.x" is configured twice'),
    ('resource "bridge" "b" {\n  name = module.nope.x\n}\n', 'reference to undeclared module "module.nope"'),
    ('module "x" {\n  source = "../modules/role"\n  name = "a"\n}\nresource "bridge" "b" {\n  name = module.x.nope\n}\n',
     'object has no attribute "nope"'),
    ('resource "bridge" "b" {\n  name = path.nope\n}\n', 'the "path" object has only the attributes'),
    ('module "x" {\n  source = "../modules/role"\n  name = "a"\n  mtu = "big"\n}\n',
     'main.hcl:4: module.x: invalid value for variable "mtu" of module "x"'),
    ('module "x" {\n  source = "../modules/role"\n  name = "a"\n  count = bridge.b.mtu\n}\nresource "bridge" "b" {\n  mtu = 1\n}\n',
     "main.hcl:4: module.x: count depends on a value known only after apply, so kvmnet cannot "
     "predict how many instances will be created; a module's count is worked out before any "
     "resource or data source is planned, so it may read variables, locals and constants only"),
    ('data "network" "d" {\n  name = "default"\n}\nmodule "x" {\n  source = "../modules/role"\n'
     '  name = "a"\n  for_each = toset([data.network.d.bridge])\n}\n',
     "main.hcl:7: module.x: for_each depends on a value known only after apply, so kvmnet cannot "
     "predict how many instances will be created; a module's for_each is worked out before"),
    ('module "x" {\n  source = "../modules/role"\n  name = "a"\n  depends_on = [bridge.nope]\n}\n',
     'main.hcl:4: module.x: depends_on refers to undeclared resource "bridge.nope"'),
])
def test_module_errors_name_file_and_line(h, body, expect):
    (h.dir / "main.hcl").write_text(body)
    got = errors(h)
    assert any(expect in e for e in got), got


def test_errors_inside_a_module_name_the_module_file(h):
    h.module('resource "bridge" "b" {\n  mtu = var.nope\n}\n', name="bad")
    h.config('module "x" {\n  source = "../modules/bad"\n}\n')
    got = errors(h)
    assert any("modules/bad/main.hcl:2" in e and 'undeclared input variable "nope"' in e for e in got), got


def test_provider_blocks_inside_a_module_are_refused(h):
    h.module('provider "libvirt" {\n  uri = "test:///default"\n}\n', name="prov")
    h.config('module "x" {\n  source = "../modules/prov"\n}\n')
    got = errors(h)
    assert any("modules/prov/main.hcl:1" in e and "provider blocks belong in the root module" in e
               for e in got), got


def test_a_module_that_calls_itself_is_an_error(h):
    h.module('module "again" {\n  source = "../loop"\n}\n', name="loop")
    h.config('module "x" {\n  source = "../modules/loop"\n}\n')
    got = errors(h)
    assert any("modules/loop/main.hcl:1" in e and "a module cycle" in e for e in got), got


# -- the CLI on module addresses (no live system) ---------------------------------------

def test_state_list_show_rm_with_module_addresses(tmp_path):
    from kvmnet.state import InstanceRecord, open_state
    from tests.e2e.helpers import run_kvmnet
    state = tmp_path / "state.db"
    be = open_state(state)
    addrs = ['module.a["x.y"].bridge.br', "module.a[\"z\"].bridge.br", "module.ab.bridge.br",
             "bridge.top", "module.a[\"x.y\"].module.inner.vlan.v[0]"]
    with be.transaction() as w:
        for a in addrs:
            p = parse_address(a)
            w.put(InstanceRecord(address=a, type=p.type, name=p.name, key=p.key, provider="iproute",
                                 id=a, attrs={"name": "br", "mtu": 1500}))
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    listed = run_kvmnet(cfg, "state", "list", "module.a", state=state)[1].split()
    assert listed == sorted(['module.a["x.y"].bridge.br', 'module.a["x.y"].module.inner.vlan.v[0]',
                             'module.a["z"].bridge.br'])
    assert run_kvmnet(cfg, "state", "list", 'module.a["z"]', "bridge.top", state=state)[1].split() == \
        ["bridge.top", 'module.a["z"].bridge.br']
    code, out, _ = run_kvmnet(cfg, "state", "show", "module.ab.bridge.br", state=state)
    assert code == 0 and "# module.ab.bridge.br" in out
    code, _, err = run_kvmnet(cfg, "state", "list", "module.a[", state=state)
    assert code == 1 and err.startswith("Error: ") and "bad instance key" in err
    code, out, _ = run_kvmnet(cfg, "state", "rm", 'module.a["x.y"]', state=state)
    assert code == 0 and out.count("Removed ") == 2
    assert sorted(open_state(state).read().instances) == sorted(
        ['module.a["z"].bridge.br', "module.ab.bridge.br", "bridge.top"])
    code, _, err = run_kvmnet(cfg, "state", "rm", "module.nope", state=state)
    assert code == 1 and "module.nope is not in the state" in err


def test_import_generate_config_refuses_a_module_address(tmp_path):
    from tests.e2e.helpers import run_kvmnet
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    code, _, err = run_kvmnet(cfg, "import", "--generate-config", "gen.hcl", "module.a.network.n", "n",
                              state=tmp_path / "s.db")
    assert code == 1 and "is inside a module" in err
    assert not (cfg / "gen.hcl").exists()


def test_state_rows_with_module_addresses_are_checked_like_root_ones():
    from kvmnet.state.records import row_problem
    row = ['module.a["k"].network.lab[0]', "network", "lab", 0, "libvirt", None, {}, {}, [], None, None]
    assert row_problem(row) == ""
    row[0] = 'module.a["k"].network.other[0]'
    assert "does not match" in row_problem(row)
    row[0] = "module.a.bridge.lab"
    assert "does not match" in row_problem(row)


def test_path_module_root_and_cwd(h, monkeypatch):
    import os
    h.module('output "p" {\n  value = [path.module, path.root, path.cwd]\n}\n', name="paths")
    h.config("""
    module "p" {
      source = "../modules/paths"
    }
    output "all" {
      value = concat(module.p.p, [path.module])
    }
    """)
    monkeypatch.chdir(h.dir.parent)
    plan, _, _, _ = h.plan()
    assert plan.outputs["all"] == [os.path.join("modules", "paths"), "cfg", str(h.dir.parent), "cfg"]


def test_a_target_that_is_no_address_is_an_error(h):
    h.config('resource "bridge" "b" {\n  mtu = 1400\n}\n')
    plan, _, _, _ = h.plan(targets=["bridge"])
    assert any("--target: 'bridge' is not an address" in str(e) for e in plan.errors), plan.errors
    plan, _, _, _ = h.plan(targets=['module.x["a'])
    assert any("bad instance key" in str(e) for e in plan.errors), plan.errors


def test_same_names_in_two_namespaces_through_aliases_do_not_clash(h):
    body = """
    provider "iproute" {
      netns = "ns-a"
    }
    provider "iproute" {
      alias = "b"
      netns = "%s"
    }
    provider "libvirt" {
      alias = "b"
      uri   = "test:///b"
    }
    module "a" {
      source = "../modules/role"
      name   = "br0"
    }
    module "b" {
      source    = "../modules/role"
      name      = "br0"
      providers = { iproute = iproute.b, libvirt = libvirt.b }
    }
    """
    h.config(body % "ns-b")
    prepare(str(h.dir), use_cache=False)          # br0 in ns-a and br0 in ns-b
    h.config(body % "ns-a")
    got = errors(h)
    assert any("module.b.bridge.br" in e and "module.a.bridge.br" in e for e in got), got
