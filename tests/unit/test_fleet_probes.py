"""The probe library's pure parts (engine/fleet/probes.py, engine/fleet/reach.py):
user probe files and their errors, which probes a host gets, the forward a local
connection goes through, ICMP packets; and the CLI's refusals of ``apply --probe``.
The probes against real namespaces are tests/real/test_probes*.py."""
from __future__ import annotations

import pytest

from kvmnet.cli import main
from kvmnet.engine.fleet import probes as pr
from kvmnet.engine.fleet import reach
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
    got = {p.name: p for p in pr.discover(configs, snap, user)}
    assert sorted(got) == ["command x", "forward port_forward.web", "gateway", "gateway (netns h1)",
                           "network network.a"]
    assert got["network network.a"].uri == "qemu:///session"
    assert got["forward port_forward.web"].netns == "h1"


def test_the_forward_a_local_connection_goes_through():
    assert pr.forward_target({"protocol": "tcp", "host_port": "8080-8090", "to_address": "fd00::5"}) == \
        ("inet6", 8080)
    assert pr.forward_target({"protocol": "tcp", "host_port": 80, "to_address": "10.0.0.5",
                              "source": "198.51.100.0/24"}) is None
    assert pr.forward_target({"protocol": "tcp", "host_port": 80, "to_address": "nope"}) is None


def test_a_target_gone_after_the_change_is_skipped_not_failed():
    p = pr.Probe("forward", "port_forward.web")
    r = pr.run_once(p, Snap())
    assert r.ok and r.skipped and r.detail == "no longer configured"
    b = pr.Baseline([r, pr.Result(pr.Probe("command", "y"), False, "exit 1")])
    assert b.counted == [] and [x.probe.target for x in b.ignored] == ["y"]


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
