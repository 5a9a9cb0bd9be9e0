"""The probe library's pure parts (engine/fleet/probes.py, sdk/reach.py): user probe
files and their errors, which probes a host gets from its providers (the built-in
ones and a third-party one), the forward a local connection goes through, ICMP
packets; and the CLI's refusals of ``apply --probe``.
The probes against real namespaces are tests/real/test_probes*.py."""
from __future__ import annotations

import pytest

from kvmnet.cli import main
from kvmnet.engine.fleet import probes as pr
from kvmnet.engine.registry import ProviderSet
from kvmnet.providers.forward_probe import forward_target
from kvmnet.sdk import reach
from kvmnet.sdk import Probe
from kvmnet.state.records import InstanceRecord


def write(tmp_path, text: str) -> str:
    path = tmp_path / "probes.hcl"
    path.write_text(text)
    return str(path)


def test_user_probes_with_their_timeouts_and_netns(tmp_path):
    path = write(tmp_path, '''kvmnet {
  probe "dns" {
    command = ["dig", "+short", "example.test"]
    timeout = "500ms"
    netns   = "blue"
  }
  probe "plain" {
    command = ["true"]
  }
}
''')
    got = pr.load_probe_file(path)
    assert [(p.name, p.argv, p.timeout, p.netns) for p in got] == [
        ("command dns", ("dig", "+short", "example.test"), 0.5, "blue"),
        ("command plain", ("true",), pr.DEFAULT_TIMEOUT, None)]


@pytest.mark.parametrize("text, message", [
    ('probe "x" {\n  command = ["true"]\n}\n', ':1: expected a "kvmnet" block without labels, not "probe"'),
    ('kvmnet {\n  x = 1\n}\n', ':2: unexpected attribute "x" in the kvmnet block'),
    ('kvmnet {\n  check "x" {\n  }\n}\n', ':2: expected probe "NAME"'),
    ('kvmnet {\n  probe "x" {\n    command = "true"\n  }\n}\n', ':3: probe "x": command: must be a non-empty list'),
    ('kvmnet {\n  probe "x" {\n    command = []\n  }\n}\n', ':3: probe "x": command: must be a non-empty list'),
    ('kvmnet {\n  probe "x" {\n    command = ["${var.a}"]\n  }\n}\n', ':3: probe "x": command: must be'),
    ('kvmnet {\n  probe "x" {\n  }\n}\n', ':2: probe "x" needs a "command"'),
    ('kvmnet {\n  probe "x" {\n    command = ["true"]\n    timeout = "soon"\n  }\n}\n',
     ":4: probe \"x\": timeout: 'soon' is not a duration"),
    ('kvmnet {\n  probe "x" {\n    command = ["true"]\n    timeout = 0\n  }\n}\n', ':4: probe "x": timeout: 0'),
    ('kvmnet {\n  probe "x" {\n    command = ["true"]\n    netns = "../x"\n  }\n}\n',
     ':4: probe "x": netns: must be the name of a network namespace'),
    ('kvmnet {\n  probe "x" {\n    command = ["true"]\n    shell = true\n  }\n}\n', ':4: probe "x": shell: unknown'),
    ('kvmnet {\n  probe "x" {\n    command = ["true"]\n  }\n  probe "x" {\n    command = ["true"]\n  }\n}\n',
     ':5: probe "x" is defined twice'),
    ('top = 1\n', ':1: unexpected attribute "top"'),
    ('kvmnet {\n', ''),
])
def test_a_bad_probe_file_names_its_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(pr.ProbeConfigError) as e:
        pr.load_probe_file(path)
    assert str(e.value).startswith(path) and message in str(e.value)


def test_a_missing_probe_file():
    with pytest.raises(pr.ProbeConfigError, match="cannot read probe file /nonexistent/p.hcl"):
        pr.load_probe_file("/nonexistent/p.hcl")


def rec(address, type_, provider, **attrs):
    return InstanceRecord(address=address, type=type_, name=address.split(".")[1], key=None,
                          provider=provider, id=attrs.get("name", address), attrs=attrs)


class Snap:
    def __init__(self, *recs):
        self.instances = {r.address: r for r in recs}


def test_discover_the_probes_of_a_host():
    configs = {"iproute": {"netns": "h1"}, "nftables": {"netns": "h1"}, "sysctl": {},
               "libvirt": {"uri": "qemu:///session"}}
    snap = Snap(rec("port_forward.web", "port_forward", "nftables", protocol="tcp", host_port="8080-8090",
                    to_address="10.0.0.5", to_port=80),
                rec("port_forward.dns", "port_forward", "nftables", protocol="udp", host_port=53,
                    to_address="10.0.0.5", to_port=53),
                rec("port_forward.lan", "port_forward", "nftables", protocol="tcp", host_port=22,
                    to_address="10.0.0.5", to_port=22, in_interface="eth0"),
                rec("network.a", "network", "libvirt", name="a"),
                rec("network.off", "network", "libvirt", name="off", active=False),
                rec("bridge.gone", "bridge", "iproute.old", name="br"))
    user = [pr.Probe("command", "x", argv=("true",))]
    got = {p.name: p for p in pr.discover(ProviderSet(configs), snap, user, timeout=2)}
    assert sorted(got) == ["command x", "forward port_forward.web", "gateway", "gateway (netns h1)",
                           "network network.a"]
    assert {p.check.address for p in got.values() if p.check} == {None, "port_forward.web", "network.a"}
    assert [p.timeout for p in got.values()] == [2, 2, 2, 2, pr.DEFAULT_TIMEOUT]


def test_the_forward_a_local_connection_goes_through():
    assert forward_target({"protocol": "tcp", "host_port": "8080-8090", "to_address": "fd00::5"}) == \
        ("inet6", 8080)
    assert forward_target({"protocol": "tcp", "host_port": 80, "to_address": "10.0.0.5",
                           "source": "198.51.100.0/24"}) is None
    assert forward_target({"protocol": "tcp", "host_port": 80, "to_address": "nope"}) is None


def test_a_target_gone_after_the_change_is_skipped_not_failed():
    p = pr.Probe("provider", "forward port_forward.web",
                 check=Probe("forward port_forward.web", lambda t: "unreachable", "port_forward.web"))
    r = pr.run_once(p, Snap())
    assert r.ok and r.skipped and r.detail == "no longer configured"
    b = pr.Baseline([r, pr.Result(pr.Probe("command", "y"), False, "exit 1")])
    assert b.counted == [] and [x.probe.target for x in b.ignored] == ["y"]


def dummy_provider_set(tmp_path):
    """A ProviderSet holding the third-party provider (tests/thirdparty/kvmnet_dummy)."""
    from tests.thirdparty.kvmnet_dummy.provider import DummyProvider
    ps = ProviderSet({"dummy": {"directory": str(tmp_path)}})
    ps.instances["dummy"] = DummyProvider(ps.configs["dummy"], instance="dummy")
    return ps


def test_a_third_party_providers_probes_are_collected_and_run_again_after_the_change(tmp_path):
    (tmp_path / "a").write_text("mark\n")
    (tmp_path / "b").write_text("mark\n")
    ps = dummy_provider_set(tmp_path)
    snap = Snap(rec("dummy_file.a", "dummy_file", "dummy", name="a"),
                rec("dummy_file.b", "dummy_file", "dummy", name="b"),
                rec("dummy_file.c", "dummy_file", "dummy.other", name="c"))
    got = pr.discover(ps, snap, timeout=0.6)
    assert [(p.name, p.timeout) for p in got] == [("dummy file dummy_file.a", 0.6), ("dummy file dummy_file.b", 0.6)]
    before = pr.baseline(got, snap)
    assert [r.ok for r in before.results] == [True, True]
    # after the change: a's file is gone, b is no longer in the state (not offered: skipped)
    (tmp_path / "a").unlink()
    after = pr.check_after(before, Snap(snap.instances["dummy_file.a"]), ps)
    assert [(r.probe.name, r.ok, r.skipped, r.detail) for r in after] == [
        ("dummy file dummy_file.a", False, False, f"{tmp_path / 'a'} is missing"),
        ("dummy file dummy_file.b", True, True, "no longer configured")]


def test_a_provider_that_cannot_list_its_probes_fails_them_instead_of_the_run(tmp_path, monkeypatch):
    """A bug in a provider's ``probes()`` is a failing probe naming the provider;
    after the change, the probes it offered before fail with it rather than read as
    'no longer configured'."""
    (tmp_path / "a").write_text("mark\n")
    ps = dummy_provider_set(tmp_path)
    snap = Snap(rec("dummy_file.a", "dummy_file", "dummy", name="a"))
    before = pr.baseline(pr.discover(ps, snap, timeout=0.3), snap)
    assert [r.ok for r in before.results] == [True]

    def broken(managed):
        raise KeyError("name")
    monkeypatch.setattr(ps.instances["dummy"], "probes", broken)
    got = pr.discover(ps, snap, timeout=0.3)
    assert [p.name for p in got] == ["probes of provider dummy"]
    assert not pr.run_once(got[0], snap).ok
    (after,) = pr.check_after(before, snap, ps)
    assert not after.ok and "provider 'dummy' could not list its probes: KeyError" in after.detail


def test_a_provider_probe_that_raises_has_failed():
    def boom(timeout):
        raise OSError("no such device")
    r = pr.run_once(pr.Probe("provider", "k", check=Probe("k", boom)), Snap())
    assert not r.ok and r.detail == "the probe could not run: no such device"


def test_a_command_probe_runs_without_a_shell(tmp_path):
    ok = pr.run_once(pr.Probe("command", "t", timeout=5, argv=("test", "-d", str(tmp_path))), Snap())
    assert ok.ok
    bad = pr.run_once(pr.Probe("command", "t", timeout=5, argv=("sh", "-c", "echo nope; exit 3")), Snap())
    assert not bad.ok and bad.detail == "exit 3: nope"
    literal = pr.run_once(pr.Probe("command", "t", timeout=5, argv=("true; false",)), Snap())
    assert not literal.ok and "command not found" in literal.detail
    slow = pr.run_once(pr.Probe("command", "t", timeout=0.2, argv=("sleep", "5")), Snap())
    assert not slow.ok and "no answer within 0.2 s" in slow.detail


def test_icmp_echo_packets():
    pkt = reach.echo_request(0x1234, 7, v6=False)
    assert pkt[0] == 8 and reach._checksum(pkt) == 0
    reply = bytes([0x45]) + bytes(19) + bytes([0]) + pkt[1:]
    assert reach.is_echo_reply(reply, 0x1234, v6=False)
    assert not reach.is_echo_reply(reply, 0x1235, v6=False)
    assert reach.is_echo_reply(bytes([129]) + reach.echo_request(9, 1, v6=True)[1:], 9, v6=True)
    assert reach.main(["nope"]) == 2


@pytest.mark.parametrize("args, message", [
    (["--probe", "--confirm-timeout", "30"], "--probe cannot be combined with --confirm-timeout"),
    (["--probe", "--probe-timeout", "0"], "--probe-timeout must be above zero"),
    (["--probe-file", "/nonexistent/p.hcl"], "cannot read probe file /nonexistent/p.hcl"),
])
def test_apply_probe_refusals(tmp_path, capsys, args, message):
    (tmp_path / "main.hcl").write_text("")
    assert main(["-C", str(tmp_path), "apply", "--auto-approve", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err
    assert not (tmp_path / "kvmnet.state.db").exists()


# -- keep or revert, with the FAKE provider of test_engine_plan -------------------------------
from tests.unit.test_engine_operations import LAB, run  # noqa: E402
from tests.unit.test_engine_plan import Harness, world  # noqa: E402,F401 - fixture


@pytest.fixture
def h(tmp_path, world):  # noqa: F811 - the imported fixture
    return Harness(tmp_path, world)


def flag_probe(flag, name="flag"):
    return pr.Probe("command", name, timeout=0.6, argv=("test", "-e", str(flag)))


@pytest.mark.parametrize("broken", [False, True])
def test_run_after_apply_keeps_or_reverts(h, tmp_path, broken):
    flag, never = tmp_path / "up", tmp_path / "never"
    flag.write_text("")
    h.config(LAB % "true")
    before = pr.baseline([flag_probe(flag), flag_probe(never, "never")], h.state())
    assert [p.target for p in before.counted] == ["flag"] and len(before.ignored) == 1
    out, be = run(h)
    _, prepared, ps, be = h.plan()
    if broken:
        flag.unlink()
    got = pr.run_after_apply(be, str(h.state_path), prepared, ps, out.report, before)
    entry = be.history(1)[0]
    assert got.reverted is broken
    assert "1 probe(s) that failed before the change not counted" in got.message
    if broken:
        assert [r.probe.target for r in got.failed] == ["flag"] and got.rollback.complete
        assert entry.status == "rolled back" and "probe failed after the change: command flag" in entry.summary
        assert h.state().instances == {}
    else:
        assert got.failed == [] and entry.status == "applied"
        assert list(h.state().instances) == ["network.lab"]
