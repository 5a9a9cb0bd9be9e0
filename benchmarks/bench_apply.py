"""Benchmark: parallel apply against the floor of the same work done by hand.

1. Networks: N (default 50) NAT networks in a namespaced libvirtd
   (:class:`kvmnet.sandbox.libvirtd.LibvirtSandbox`). Floors, with raw
   libvirt-python: define + autostart + start of each network one after the other,
   and the same from 4 threads sharing one connection. Against them, the ``walk``
   phase (every change and its state write, ``--timings``) of ``kvmnet apply`` with
   ``--parallelism=1`` and with the default.
2. Bridges: M (default 200) bridges with one veth port each in a fresh namespace.
   Floors, with pyroute2: a plain serial script (bridge up, its alias as kvmnet's
   ownership mark, its index, port enslaved and up) and the same from 4 threads,
   one socket each. Against them the
   ``walk`` of ``kvmnet apply`` (iproute provider), serial and default.

Targets (issue 10): kvmnet's default apply within 1.1 x the best floor of the same
run, and never more than 5 % slower than its own ``--parallelism=1`` walk; medians of
``--runs`` (default 3) rounds, each round measuring every variant once, in turn. The
whole ``kvmnet apply`` process time is printed too, for information. Exits 1 when a
target is missed. Needs root; touches only its own namespaces and sandbox.

    .venv/bin/python benchmarks/bench_apply.py [--networks 50] [--bridges 200] [--runs 3]
                                               [--only networks|bridges] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 4
FLOOR_RATIO = 1.1
SERIAL_RATIO = 1.05
MARK = "00000000-0000-4000-8000-000000000000"


# -- kvmnet through its CLI ---------------------------------------------------------
def kvmnet_apply(cfg: Path, state: Path, parallelism: int | None) -> tuple[float, float]:
    """(walk seconds from --timings, whole process seconds) of one ``kvmnet apply``."""
    argv = [sys.executable, "-m", "kvmnet", "-C", str(cfg), "--state", str(state), "--no-color",
            "apply", "--auto-approve", "--timings"]
    if parallelism is not None:
        argv.append(f"--parallelism={parallelism}")
    env = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(cfg.parent / "cache"))
    t = time.perf_counter()
    cp = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=str(ROOT))
    wall = time.perf_counter() - t
    if cp.returncode != 0:
        raise SystemExit(f"kvmnet apply failed ({cp.returncode}):\n{cp.stdout[-2000:]}\n{cp.stderr[-2000:]}")
    m = re.search(r"^timing walk\s+([\d.]+) ms", cp.stderr, re.M)
    if not m:
        raise SystemExit(f"no walk timing in kvmnet's output:\n{cp.stderr[-2000:]}")
    return float(m.group(1)) / 1000, wall


# -- networks -------------------------------------------------------------------------
def network_xml(i: int) -> str:
    net = f"10.90.{i}"
    return (f"<network><name>n{i}</name><forward mode='nat'/><bridge name='kvb{i}' stp='on' delay='0'/>"
            f"<ip address='{net}.1' prefix='24'><dhcp><range start='{net}.100' end='{net}.200'/>"
            f"</dhcp></ip></network>")


def network_config(uri: str, n: int) -> str:
    return f'''provider "libvirt" {{
  uri = "{uri}"
}}

resource "network" "n" {{
  count  = {n}
  name   = "n${{count.index}}"
  mode   = "nat"
  bridge = "kvb${{count.index}}"
  ip {{
    address = "10.90.${{count.index}}.1"
    prefix  = 24
    dhcp_range {{
      start = "10.90.${{count.index}}.100"
      end   = "10.90.${{count.index}}.200"
    }}
  }}
}}
'''


def create_network(conn, i: int) -> None:
    net = conn.networkDefineXML(network_xml(i))
    net.setAutostart(1)
    net.create()


def networks_floor(conn, n: int, workers: int) -> float:
    t = time.perf_counter()
    if workers == 1:
        for i in range(n):
            create_network(conn, i)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda i: create_network(conn, i), range(n)))
    return time.perf_counter() - t


def remove_networks(conn) -> None:
    def drop(net):
        if net.isActive():
            net.destroy()
        net.undefine()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(drop, conn.listAllNetworks(0)))


def bench_networks(n: int, runs: int, work: Path) -> dict:
    from kvmnet.sandbox.libvirtd import LibvirtSandbox
    fig: dict[str, list[float]] = {k: [] for k in ("floor serial", f"floor {WORKERS} threads",
                                                    "kvmnet -parallelism=1", "kvmnet default",
                                                    "kvmnet -parallelism=1 process",
                                                    "kvmnet default process")}
    with LibvirtSandbox() as sb:
        conn = sb.connect()
        cfg = work / "networks"
        cfg.mkdir()
        (cfg / "main.hcl").write_text(network_config(sb.uri, n))
        for r in range(runs):
            for name, workers in (("floor serial", 1), (f"floor {WORKERS} threads", WORKERS)):
                fig[name].append(networks_floor(conn, n, workers))
                remove_networks(conn)
            for name, par in (("kvmnet -parallelism=1", 1), ("kvmnet default", None)):
                state = work / f"net-{r}-{par}.db"
                walk, wall = kvmnet_apply(cfg, state, par)
                assert len(conn.listAllNetworks(0)) == n
                fig[name].append(walk)
                fig[f"{name} process"].append(wall)
                remove_networks(conn)
            print(f"  networks round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in fig.items()),
                  flush=True)
        conn.close()
    return fig


# -- bridges --------------------------------------------------------------------------
def bridge_config(ns: str, n: int) -> str:
    return f'''provider "iproute" {{
  netns = "{ns}"
}}

resource "bridge" "b" {{
  count      = {n}
  name       = "b${{count.index}}"
  interfaces = ["p${{count.index}}"]
}}
'''


def add_veths(ns: str, n: int) -> None:
    from pyroute2 import IPRoute
    with IPRoute(netns=ns, flags=0) as ipr:
        for i in range(n):
            ipr.link("add", ifname=f"p{i}", kind="veth", peer=f"q{i}")


def bridges_floor(ns: str, n: int, workers: int) -> float:
    """What kvmnet leaves behind, by hand: bridge up, its alias (kvmnet's ownership
    mark), its index, port enslaved and up; ``workers`` threads, one socket each
    (opened before the clock starts)."""
    from pyroute2 import IPRoute
    socks = [IPRoute(netns=ns, flags=0) for _ in range(workers)]

    def part(k: int) -> None:
        ipr = socks[k]
        for i in range(k, n, workers):
            ipr.link("add", ifname=f"b{i}", kind="bridge", state="up")
            ipr.link("set", ifname=f"b{i}", ifalias=f"kvmnet:{MARK}:bridge.b[{i}]")
            index = ipr.link("get", ifname=f"b{i}")[0]["index"]
            ipr.link("set", ifname=f"p{i}", master=index, state="up")

    try:
        t = time.perf_counter()
        threads = [threading.Thread(target=part, args=(k,)) for k in range(workers)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return time.perf_counter() - t
    finally:
        for s in socks:
            s.close()


def bench_bridges(n: int, runs: int, work: Path) -> dict:
    from kvmnet.sandbox.netns import in_ns, netns
    fig: dict[str, list[float]] = {k: [] for k in ("floor serial", f"floor {WORKERS} threads",
                                                    "kvmnet -parallelism=1", "kvmnet default",
                                                    "kvmnet -parallelism=1 process",
                                                    "kvmnet default process")}
    for r in range(runs):
        for name, workers in (("floor serial", 1), (f"floor {WORKERS} threads", WORKERS)):
            with netns("kba") as ns:
                add_veths(ns, n)
                fig[name].append(bridges_floor(ns, n, workers))
        for name, par in (("kvmnet -parallelism=1", 1), ("kvmnet default", None)):
            with netns("kba") as ns:
                add_veths(ns, n)
                cfg = work / f"bridges-{r}-{par}"
                cfg.mkdir()
                (cfg / "main.hcl").write_text(bridge_config(ns, n))
                walk, wall = kvmnet_apply(cfg, cfg / "state.db", par)
                links = in_ns(ns, "ip", "-o", "link", "show", "type", "bridge").stdout.splitlines()
                assert len(links) == n, len(links)
                fig[name].append(walk)
                fig[f"{name} process"].append(wall)
        print(f"  bridges round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in fig.items()),
              flush=True)
    return fig


# -- report ---------------------------------------------------------------------------
def verdict(what: str, fig: dict) -> bool:
    med = {k: statistics.median(v) for k, v in fig.items()}
    best_floor = min(med["floor serial"], med[f"floor {WORKERS} threads"])
    par, serial = med["kvmnet default"], med["kvmnet -parallelism=1"]
    runs = len(fig["floor serial"])
    print(f"\n{what} (median of {runs}):")
    for k, v in med.items():
        print(f"  {k:<32} {v:8.3f} s")
    ok_floor = par <= FLOOR_RATIO * best_floor
    ok_serial = par <= SERIAL_RATIO * serial
    print(f"  kvmnet default / best floor     {par / best_floor:8.2f}   (target <= {FLOOR_RATIO}) "
          f"{'OK' if ok_floor else 'MISSED'}")
    print(f"  kvmnet default / its serial walk {par / serial:7.2f}   (target <= {SERIAL_RATIO}) "
          f"{'OK' if ok_serial else 'MISSED'}")
    return ok_floor and ok_serial


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--networks", type=int, default=50)
    ap.add_argument("--bridges", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", choices=["networks", "bridges"])
    ap.add_argument("--json", metavar="FILE")
    a, _unknown = ap.parse_known_args(argv)   # run.py hands every benchmark the same extras
    if not 0 < a.networks <= 255:
        ap.error("--networks: 1 to 255 (one 10.90.N.0/24 each)")
    if os.geteuid() != 0:
        print("bench_apply needs root (namespaces, libvirtd)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="kvmnet-bench-apply-"))
    ok, out = True, {}
    try:
        if a.only in (None, "bridges"):
            out["bridges"] = bench_bridges(a.bridges, a.runs, work)
            ok &= verdict(f"apply {a.bridges} bridges (iproute)", out["bridges"])
        if a.only in (None, "networks"):
            out["networks"] = bench_networks(a.networks, a.runs, work)
            ok &= verdict(f"apply {a.networks} NAT networks (libvirt)", out["networks"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    from kvmnet.sandbox.sigterm import raise_on_sigterm
    raise_on_sigterm()      # SIGTERM runs the clean-ups (servers, namespaces, temp dirs)
    from installed import like_installed
    like_installed()        # bytecode, as an installed kvmnet has
    raise SystemExit(main(sys.argv[1:]))
