"""Benchmark: ``kvmnet fleet plan`` over a generated fleet repository.

N host directories (default 200), each calling two shared role modules for R
resources (default 100: R-1 bridges and one sysctl profile), every host with no
state (everything to create: the plan's diff is the largest). Whole ``kvmnet``
processes, wall clock, median of ``--runs``: *cold* (empty parse cache) and *warm*
(the cache filled by an earlier run, files unchanged: what a pull request's CI
sees after the first plan). The same is timed for one host (the fixed cost: the
process, its imports), so the per-host cost is the difference over N-1 hosts.
Target: warm ≤ 5 s at 200 × 100 on this machine; a smaller run checks the time
it projects for 200 hosts (fixed cost + 200 × per-host cost).

    .venv/bin/python benchmarks/bench_fleet_plan.py [--hosts 200] [--resources 100] [--runs 3] [--keep]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_WARM_S = 5.0     # at 200 hosts × 100 resources

BRIDGES = """
variable "prefix" {
  type = string
}
variable "count_" {
  type = number
}
variable "mtu" {
  type    = number
  default = 1500
}
resource "bridge" "b" {
  count = var.count_
  name  = "${var.prefix}${count.index}"
  mtu   = var.mtu
  stp   = false
}
output "names" {
  value = bridge.b[*].name
}
"""

SYSCTL = """
resource "sysctl_profile" "forwarding" {
  settings = {
    "net.ipv4.ip_forward"         = 1
    "net.ipv4.conf.all.rp_filter" = 2
  }
}
"""

HOST = """
provider "iproute" {{
  netns = "kvmnet-{host}"
}}
provider "sysctl" {{
  netns       = "kvmnet-{host}"
  persist_dir = "/run/kvmnet-bench/{host}/sysctl.d"
}}
module "bridges" {{
  source = "../../modules/bridges"
  prefix = "br{index}x"
  count_ = {bridges}
}}
module "sysctl" {{
  source = "../../modules/sysctl"
}}
"""


def generate(root: Path, hosts: int, resources: int) -> None:
    (root / "modules" / "bridges").mkdir(parents=True)
    (root / "modules" / "bridges" / "main.hcl").write_text(BRIDGES)
    (root / "modules" / "sysctl").mkdir(parents=True)
    (root / "modules" / "sysctl" / "main.hcl").write_text(SYSCTL)
    for i in range(hosts):
        d = root / "hosts" / f"kvm{i:04d}"
        d.mkdir(parents=True)
        (d / "main.hcl").write_text(HOST.format(host=d.name, index=i, bridges=resources - 1))


def timed(repo: Path, cache: Path, *select: str) -> tuple[float, float]:
    """Wall clock and CPU seconds (user + system) of one whole ``fleet plan``: the
    CPU figure is what this shared machine's load does not inflate."""
    env = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(cache))
    env.pop("PG_CONN_STR", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "kvmnet", "--no-color", "fleet", "plan", *select, str(repo)],
                       capture_output=True, text=True, env=env)
    took = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"fleet plan failed (exit {r.returncode}):\n{r.stderr}")
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--resources", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the generated repository")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="kvmnet-bench-fleet-"))
    try:
        repo = tmp / "repo"
        generate(repo, a.hosts, a.resources)
        colds, warms, ones = [], [], []
        for i in range(a.runs):
            cache = tmp / f"cache-{i}"
            colds.append(timed(repo, cache))
            warms.append(timed(repo, cache))
            ones.append(timed(repo, cache, "--hosts", "kvm0000"))
        cold, warm, one = (tuple(statistics.median(x) for x in zip(*runs, strict=True))
                           for runs in (colds, warms, ones))
        per_host = (warm[0] - one[0]) / max(1, a.hosts - 1)
        per_host_cpu = (warm[1] - one[1]) / max(1, a.hosts - 1)
        print(f"fleet plan: {a.hosts} hosts × {a.resources} resources ({a.hosts * a.resources} in all); "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"  cold:         {cold[0]:6.2f} s wall, {cold[1]:6.2f} s CPU")
        print(f"  warm:         {warm[0]:6.2f} s wall, {warm[1]:6.2f} s CPU")
        print(f"  warm, 1 host: {one[0]:6.2f} s wall, {one[1]:6.2f} s CPU   (the fixed cost)")
        print(f"  per host:     {per_host * 1000:6.1f} ms wall, {per_host_cpu * 1000:6.1f} ms CPU (warm)")
        warm, one = warm[0], one[0]
        projected = one + 200 * per_host * a.resources / 100
        ok = (warm if a.hosts == 200 and a.resources == 100 else projected) <= TARGET_WARM_S
        what = "measured" if a.hosts == 200 and a.resources == 100 else f"projected for 200 × 100: {projected:.2f} s"
        print(f"  target: warm ≤ {TARGET_WARM_S:.0f} s at 200 × 100 ({what}): {'met' if ok else 'MISSED'}")
        if a.keep:
            print(f"  repository kept in {repo}")
        return 0 if ok else 1
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    from kvmnet.sandbox.sigterm import raise_on_sigterm
    raise_on_sigterm()      # SIGTERM runs the clean-ups (servers, namespaces, temp dirs)
    from installed import like_installed
    like_installed()        # bytecode, as an installed kvmnet has
    raise SystemExit(main(sys.argv[1:]))
