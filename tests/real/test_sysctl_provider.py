"""The sysctl provider against real sysctls, only inside namespaces the tests create.

The host's values are read (before/after) but never written. ``persist_dir`` is a
temp directory.
"""
from __future__ import annotations

import os
import stat

import pytest

from kvmnet.sdk.ownership import Mark
from kvmnet.sdk.provider import ProviderError
from kvmnet.providers.sysctl import SysctlProvider
from kvmnet.providers.sysctl import persist
from kvmnet.sandbox.netns import add_veth, in_ns
from tests.conftest import requires_root

LINEAGE = "0b7d2c1e-5d7a-4c38-9a51-3f0f6c2a9e11"
ADDR = "sysctl_profile.tuning"
MARK = f"kvmnet:{LINEAGE}:{ADDR}"
RT = "sysctl_profile"


def host_value(key: str) -> str:
    """The host's value, read in this (the host's) namespace; never written."""
    with open("/proc/sys/" + key.replace(".", "/")) as f:
        return " ".join(f.read().split())


def ns_value(ns: str, key: str) -> str:
    return " ".join(in_ns(ns, "sysctl", "-n", key).stdout.split())


def ns_set(ns: str, key: str, value: str) -> None:
    in_ns(ns, "sysctl", "-w", f"{key}={value}")


@pytest.fixture
def netns_ready(ns):
    """``ns``, after checking that providers.netns.call_in can enter it."""
    from kvmnet.providers.netns import call_in
    try:
        call_in(ns, lambda: None)
    except AttributeError as e:  # os.setns exists from Python 3.12 only
        pytest.skip(f"kvmnet.providers.netns.call_in cannot enter a namespace here: {e}")
    return ns


@pytest.fixture
def provider(netns_ready, tmp_path):
    return SysctlProvider({"netns": netns_ready, "persist_dir": str(tmp_path / "sysctl.d")})


def conf_path(provider, address=ADDR):
    return os.path.join(provider.persist_dir, persist.file_name(address))


# -- pure parts ------------------------------------------------------------------

@pytest.mark.parametrize("address,name,legacy", [
    ("sysctl_profile.tuning", "90-kvmnet-tuning.conf", "90-kvmnet-tuning.conf"),
    ("sysctl_profile.tuning[0]", "90-kvmnet-tuning.0.conf", "90-kvmnet-tuning-0.conf"),
    ('sysctl_profile.tuning["web"]', "90-kvmnet-tuning.s-web.conf", "90-kvmnet-tuning-web.conf"),
    ('sysctl_profile.t["a b/c"]', "90-kvmnet-t.s-a%20b%2Fc.conf", "90-kvmnet-t-a-b-c.conf"),
    ('sysctl_profile.t["0"]', "90-kvmnet-t.s-0.conf", "90-kvmnet-t-0.conf"),
    ("module.a.sysctl_profile.t", "90-kvmnet-a+t.conf", "90-kvmnet-t.conf"),
    ('module.a[0].module.b["x y"].sysctl_profile.t["k"]', "90-kvmnet-a.0+b.s-x%20y+t.s-k.conf",
     "90-kvmnet-t-k.conf"),
])
def test_file_name_from_address(address, name, legacy):
    assert persist.file_name(address) == name
    assert persist.legacy_file_name(address) == legacy


def test_file_names_of_distinct_addresses_are_distinct():
    """The addresses the old naming mapped to one file each get their own now."""
    groups = [
        ["sysctl_profile.t-0", "sysctl_profile.t[0]", 'sysctl_profile.t["0"]'],
        ['sysctl_profile.t["a b"]', 'sysctl_profile.t["a-b"]', 'sysctl_profile.t["a/b"]',
         "sysctl_profile.t-a-b", 'sysctl_profile.t["a%20b"]', 'sysctl_profile.t["a.b"]'],
        ['sysctl_profile.t["x" ]'.replace(" ", ""), 'sysctl_profile.t["x\\"]', 'sysctl_profile.t["X"]'],
        ["sysctl_profile.t", "module.a.sysctl_profile.t", "module.b.sysctl_profile.t",
         "module.a[0].sysctl_profile.t", 'module.a["0"].sysctl_profile.t', "sysctl_profile.a",
         'module.a["t]\\".x"].sysctl_profile.t', "module.a.module.t.sysctl_profile.t",
         'sysctl_profile.a["+t"]', 'sysctl_profile.a[".s-t"]'],
    ]
    for group in groups:
        names = [persist.file_name(a) for a in group]
        assert len(set(names)) == len(names), names
    long_a = 'sysctl_profile.t["' + "k" * 300 + 'a"]'
    long_b = 'sysctl_profile.t["' + "k" * 300 + 'b"]'
    na, nb = persist.file_name(long_a), persist.file_name(long_b)
    assert na != nb and len(na) < 200 and len(nb) < 200


def test_render_and_parse_round_trip():
    text = persist.render(MARK, {"net.ipv4.tcp_rmem": "4096 131072 6291456", "net.ipv4.ip_forward": "1"})
    assert text.splitlines()[0] == f"# {MARK}"
    mark, settings = persist.parse(text + "; a comment\n-net.core.somaxconn =  512 \n")
    assert mark == Mark(LINEAGE, ADDR)
    assert settings == {"net.ipv4.ip_forward": "1", "net.ipv4.tcp_rmem": "4096 131072 6291456",
                        "net.core.somaxconn": "512"}


def test_originals_as_comment_lines_round_trip():
    original = {"net.core.somaxconn": "4096", "net.ipv4.tcp_rmem": "4096 131072 6291456",
                "net.ipv4.conf.all.arp_filter": ""}
    text = persist.render(MARK, {"net.core.somaxconn": "1024"}, original)
    assert "# original: net.core.somaxconn = 4096" in text.splitlines()
    assert persist.parse(text) == (Mark(LINEAGE, ADDR), {"net.core.somaxconn": "1024"})
    assert persist.parse_original(text) == original
    assert persist.parse_original(persist.render(MARK, {"net.core.somaxconn": "1"})) == {}


# -- real sysctls inside a namespace ---------------------------------------------


@requires_root
def test_create_sets_values_in_the_namespace_only(provider, netns_ready):
    ns = netns_ready
    host_before = host_value("net.ipv4.ip_forward")
    orig = {k: ns_value(ns, k) for k in ("net.ipv4.ip_forward", "net.core.somaxconn")}
    want = "0" if orig["net.ipv4.ip_forward"] == "1" else "1"

    attrs, private = provider.create(RT, ADDR, {"settings": {"net.ipv4.ip_forward": want,
                                                             "net.core.somaxconn": 1024},
                                                "persist": True}, MARK)

    assert attrs == {"settings": {"net.core.somaxconn": "1024", "net.ipv4.ip_forward": want},
                     "persist": True}
    assert private == {"original": orig}
    assert ns_value(ns, "net.ipv4.ip_forward") == want
    assert ns_value(ns, "net.core.somaxconn") == "1024"
    assert host_value("net.ipv4.ip_forward") == host_before

    path = conf_path(provider)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    lines = open(path).read().splitlines()
    assert lines[0] == f"# {MARK}"
    assert "net.core.somaxconn = 1024" in lines and f"net.ipv4.ip_forward = {want}" in lines

    live = provider.read(RT, ["net.core.somaxconn,net.ipv4.ip_forward"])
    obj = live["net.core.somaxconn,net.ipv4.ip_forward"]
    assert obj.attrs == attrs
    assert obj.mark == Mark(LINEAGE, ADDR)


@requires_root
def test_outside_change_shows_in_read(provider, netns_ready):
    ns = netns_ready
    provider.create(RT, ADDR, {"settings": {"net.core.somaxconn": 1000}, "persist": True}, MARK)
    ns_set(ns, "net.core.somaxconn", "777")
    obj = provider.read(RT, ["net.core.somaxconn"])["net.core.somaxconn"]
    assert obj.attrs == {"settings": {"net.core.somaxconn": "777"}, "persist": False}


@requires_root
def test_persist_file_edited_shows_as_persist_false(provider):
    provider.create(RT, ADDR, {"settings": {"net.core.somaxconn": 1000}, "persist": True}, MARK)
    with open(conf_path(provider), "a") as f:
        f.write("net.core.somaxconn = 5\n")
    obj = provider.read(RT, ["net.core.somaxconn"])["net.core.somaxconn"]
    assert obj.attrs["persist"] is False


@requires_root
def test_update_adds_removes_and_changes_keys(provider, netns_ready):
    ns = netns_ready
    orig_somaxconn = ns_value(ns, "net.core.somaxconn")
    orig_rp = ns_value(ns, "net.ipv4.conf.all.rp_filter")
    before, private = provider.create(
        RT, ADDR, {"settings": {"net.core.somaxconn": 1000, "net.ipv4.ip_forward": 1}, "persist": True}, MARK)
    new_rp = "2" if orig_rp != "2" else "1"

    after = {"settings": {"net.ipv4.ip_forward": 0, "net.ipv4.conf.all.rp_filter": new_rp}, "persist": True}
    attrs, private2 = provider.update(RT, ADDR, before, after, private, MARK)

    assert attrs == {"settings": {"net.ipv4.conf.all.rp_filter": new_rp, "net.ipv4.ip_forward": "0"},
                     "persist": True}
    # removed key restored and forgotten; added key's original remembered
    assert ns_value(ns, "net.core.somaxconn") == orig_somaxconn
    assert private2["original"] == {"net.ipv4.ip_forward": private["original"]["net.ipv4.ip_forward"],
                                    "net.ipv4.conf.all.rp_filter": orig_rp}
    assert ns_value(ns, "net.ipv4.ip_forward") == "0"
    assert ns_value(ns, "net.ipv4.conf.all.rp_filter") == new_rp
    text = open(conf_path(provider)).read()
    assert "somaxconn" not in text and f"net.ipv4.conf.all.rp_filter = {new_rp}" in text

    # persist = false leaves only the record of the originals (comments), the values stay
    attrs3, private3 = provider.update(RT, ADDR, attrs, {**after, "persist": False}, private2, MARK)
    assert attrs3["persist"] is False and private3 == private2
    lines = open(conf_path(provider)).read().splitlines()
    assert all(line.startswith("#") for line in lines), lines
    assert f"# original: net.ipv4.conf.all.rp_filter = {orig_rp}" in lines
    assert ns_value(ns, "net.ipv4.conf.all.rp_filter") == new_rp


@requires_root
def test_delete_restores_originals_and_removes_the_file(provider, netns_ready):
    ns = netns_ready
    keys = ("net.ipv4.ip_forward", "net.core.somaxconn", "net.ipv4.tcp_rmem", "net.ipv6.conf.all.forwarding")
    orig = {k: ns_value(ns, k) for k in keys}
    attrs, private = provider.create(RT, ADDR, {"settings": {
        "net.ipv4.ip_forward": 1, "net.core.somaxconn": 999, "net.ipv4.tcp_rmem": "4096 65536 4194304",
        "net.ipv6.conf.all.forwarding": 1}, "persist": True}, MARK)
    assert ns_value(ns, "net.core.somaxconn") == "999"

    provider.delete(RT, ADDR, attrs, private)

    assert {k: ns_value(ns, k) for k in keys} == orig
    assert not os.path.exists(conf_path(provider))


@requires_root
def test_tcp_rmem_tabs_are_normalised(provider, netns_ready):
    ns = netns_ready
    attrs, _ = provider.create(RT, ADDR, {"settings": {"net.ipv4.tcp_rmem": "4096   87380\t6291456"},
                                          "persist": True}, MARK)
    raw = in_ns(ns, "cat", "/proc/sys/net/ipv4/tcp_rmem").stdout
    assert "\t" in raw
    assert attrs["settings"] == {"net.ipv4.tcp_rmem": "4096 87380 6291456"}
    assert attrs["persist"] is True
    obj = provider.read(RT, ["net.ipv4.tcp_rmem"])["net.ipv4.tcp_rmem"]
    assert obj.attrs == attrs
    assert "net.ipv4.tcp_rmem = 4096 87380 6291456" in open(conf_path(provider)).read()


@requires_root
def test_unknown_key_is_an_error(provider, netns_ready):
    with pytest.raises(ProviderError, match='unknown sysctl key "net.ipv4.nope"'):
        provider.read(RT, ["net.ipv4.ip_forward,net.ipv4.nope"])
    assert provider.check(RT, ADDR, {"settings": {"net.ipv4.nope": 1, "net.ipv4.ip_forward": 1}}) == [
        ("settings", f'unknown sysctl key "net.ipv4.nope" in network namespace {netns_ready}')]


@requires_root
def test_check_looks_inside_the_namespace(provider, netns_ready):
    # a veth exists only in the namespace: its keys are known there, not on the host
    add_veth(netns_ready, "kvd0", "kvd1")
    assert not os.path.exists("/proc/sys/net/ipv4/conf/kvd0")
    assert provider.check(RT, ADDR, {"settings": {"net.ipv4.conf.kvd0.proxy_arp": 1}}) == []
    obj = provider.read(RT, ["net.ipv4.conf.kvd0.proxy_arp"])["net.ipv4.conf.kvd0.proxy_arp"]
    assert obj.attrs["settings"] == {"net.ipv4.conf.kvd0.proxy_arp": "0"}


@requires_root
def test_host_wide_key_inside_a_namespace(provider, netns_ready):
    ns = netns_ready
    host_wmem = host_value("net.core.wmem_max")
    orig_somaxconn = ns_value(ns, "net.core.somaxconn")

    assert provider.check(RT, ADDR, {"settings": {"net.core.wmem_max": 1}}) == [
        ("settings", f'sysctl key "net.core.wmem_max" is not writable inside network namespace {ns} '
                     "(a host-wide key)")]
    with pytest.raises(ProviderError) as e:
        # somaxconn (sorted first) is written, then wmem_max fails: somaxconn is put back
        provider.create(RT, ADDR, {"settings": {"net.core.somaxconn": 1234, "net.core.wmem_max": 425984},
                                   "persist": True}, MARK)
    msg = str(e.value)
    assert '"net.core.wmem_max"' in msg and '"425984"' in msg
    assert f"not writable inside network namespace {ns}" in msg
    assert ns_value(ns, "net.core.somaxconn") == orig_somaxconn
    assert host_value("net.core.wmem_max") == host_wmem
    assert not os.path.exists(conf_path(provider))


@requires_root
def test_read_adopts_marked_files_and_snapshot(provider, netns_ready):
    provider.create(RT, ADDR, {"settings": {"net.core.somaxconn": 1001}, "persist": True}, MARK)
    live = provider.read(RT, [])
    assert live["net.core.somaxconn"].mark == Mark(LINEAGE, ADDR)
    snap = provider.snapshot(RT, ["net.core.somaxconn"])
    assert snap["values"] == {"net.core.somaxconn": "1001"}
    assert list(snap["files"].values())[0].startswith(f"# {MARK}\n")


@requires_root
def test_delete_skips_keys_whose_interface_is_gone(provider, netns_ready):
    ns = netns_ready
    add_veth(ns, "kvd0", "kvd1")
    orig = ns_value(ns, "net.core.somaxconn")
    attrs, private = provider.create(RT, ADDR, {"settings": {"net.ipv4.conf.kvd0.proxy_arp": 1,
                                                             "net.core.somaxconn": 1500}, "persist": True}, MARK)
    in_ns(ns, "ip", "link", "del", "kvd0")
    provider.delete(RT, ADDR, attrs, private)
    assert ns_value(ns, "net.core.somaxconn") == orig
    assert not os.path.exists(conf_path(provider))


@requires_root
def test_persist_file_keeps_originals_and_read_returns_them(provider, netns_ready):
    """A profile adopted after a crash (no state record) gets its originals back
    from the file's ``# original:`` lines."""
    ns = netns_ready
    orig = ns_value(ns, "net.core.somaxconn")
    provider.create(RT, ADDR, {"settings": {"net.core.somaxconn": 1002}, "persist": True}, MARK)
    assert f"# original: net.core.somaxconn = {orig}" in open(conf_path(provider)).read()
    obj = provider.read(RT, [])["net.core.somaxconn"]          # found through the file alone
    assert obj.mark == Mark(LINEAGE, ADDR)
    assert obj.private == {"original": {"net.core.somaxconn": orig}}
    assert obj.attrs["persist"] is True
    provider.delete(RT, ADDR, obj.attrs, obj.private)
    assert ns_value(ns, "net.core.somaxconn") == orig


@requires_root
def test_update_rewrites_the_originals_in_the_file(provider, netns_ready):
    ns = netns_ready
    orig_fin = ns_value(ns, "net.ipv4.tcp_fin_timeout")
    attrs, private = provider.create(RT, ADDR, {"settings": {"net.core.somaxconn": 1003},
                                                "persist": True}, MARK)
    attrs, private = provider.update(RT, ADDR, attrs, {"settings": {"net.ipv4.tcp_fin_timeout": 31},
                                                       "persist": True}, private, MARK)
    assert persist.parse_original(open(conf_path(provider)).read()) == {"net.ipv4.tcp_fin_timeout": orig_fin}
    assert private == {"original": {"net.ipv4.tcp_fin_timeout": orig_fin}}


@requires_root
def test_import_takes_the_live_values_as_originals(provider, netns_ready):
    ns = netns_ready
    ns_set(ns, "net.core.somaxconn", "3000")
    obj = provider.import_object(RT, "net.ipv4.tcp_fin_timeout,net.core.somaxconn")
    assert obj.private == {"original": {"net.core.somaxconn": "3000",
                                        "net.ipv4.tcp_fin_timeout": ns_value(ns, "net.ipv4.tcp_fin_timeout")}}
    assert obj.mark is None


@requires_root
def test_import_prefers_the_originals_of_a_kvmnet_file(provider, netns_ready):
    ns = netns_ready
    orig = ns_value(ns, "net.core.somaxconn")
    provider.create(RT, ADDR, {"settings": {"net.core.somaxconn": 1004}, "persist": True}, MARK)
    obj = provider.import_object(RT, "net.core.somaxconn")
    assert obj.attrs["settings"] == {"net.core.somaxconn": "1004"}
    assert obj.private == {"original": {"net.core.somaxconn": orig}}


@requires_root
def test_check_refuses_two_instances_mapped_to_one_file(provider, monkeypatch):
    """Names cut to MAX_STEM end in a hash: should two ever meet, the plan says so."""
    attrs = {"settings": {"net.core.somaxconn": "1"}, "persist": True}
    monkeypatch.setattr(persist, "file_name", lambda address: "90-kvmnet-same.conf")
    assert provider.check(RT, "sysctl_profile.a", attrs) == []
    assert provider.check(RT, "sysctl_profile.a", attrs) == []        # the same instance again
    path = os.path.join(provider.persist_dir, "90-kvmnet-same.conf")
    assert provider.check(RT, "sysctl_profile.b", attrs) == [
        (None, f"persist file {path} would also be the file of sysctl_profile.a")]


@requires_root
def test_a_fifo_among_the_persist_files_is_passed_over_without_blocking(provider, netns_ready):
    """Every ``90-kvmnet-*.conf`` is read to find the profiles; a FIFO of that name
    once blocked that read for good (holding the state lock). It is no profile's
    file; a FIFO in place of the profile's own file is replaced by the file."""
    import threading
    os.makedirs(provider.persist_dir)
    stray = os.path.join(provider.persist_dir, "90-kvmnet-stray.conf")
    os.mkfifo(stray)
    os.mkfifo(conf_path(provider))
    outcome: list = []
    t = threading.Thread(target=lambda: outcome.append(provider.create(
        RT, ADDR, {"settings": {"net.core.somaxconn": 1003}, "persist": True}, MARK)), daemon=True)
    t.start()
    t.join(timeout=20)
    if t.is_alive():                       # unblock the reader before failing
        for p in (stray, conf_path(provider)):
            try:
                os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass                       # no reader waits on this one
    assert not t.is_alive() and outcome, "reading the persist files must not block"
    assert outcome[0][0]["settings"] == {"net.core.somaxconn": "1003"}
    assert stat.S_ISREG(os.lstat(conf_path(provider)).st_mode)
    assert open(conf_path(provider)).read().startswith(f"# {MARK}\n")
    assert set(provider.read(RT, [])) == {"net.core.somaxconn"}
    assert stat.S_ISFIFO(os.lstat(stray).st_mode)
