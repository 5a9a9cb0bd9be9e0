"""``make demo``: run an example through validate → plan → apply → drift → repair →
destroy, against the real kernel, inside a throw-away network namespace.

Nothing on the host is touched: every provider block points at the namespace, the
persistent files go to a temporary directory, and the namespace is deleted at the
end whatever happens.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kvmnet.sandbox.netns import in_ns, netns

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "basic"
NAT_LAB = ROOT / "examples" / "nat-lab"


class Demo:
    def __init__(self, workdir: Path, ns: str, example: Path = EXAMPLE, variables=None):
        self.workdir = workdir
        self.ns = ns
        self.example = example
        self.variables = variables if variables is not None else {
            "netns": ns, "persist_dir": str(workdir / "sysctl.d")}
        self.step_no = 0
        self.t0 = time.monotonic()

    def step(self, text: str) -> None:
        self.step_no += 1
        print(f"\n\033[1m[{self.step_no:2d}] {text}\033[0m" if sys.stdout.isatty()
              else f"\n[{self.step_no:2d}] {text}", flush=True)

    def kvmnet(self, *args: str, expect: int | tuple = 0, show: bool = True) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "kvmnet", "-C", str(self.example),
                "--state", str(self.workdir / "kvmnet.state.db")]
        for k, v in self.variables.items():
            argv += ["--var", f"{k}={v}"]
        argv += list(args)
        print("$ kvmnet " + " ".join(args), flush=True)
        cp = subprocess.run(argv, capture_output=True, text=True)
        if show:
            sys.stdout.write(cp.stdout)
            sys.stdout.write(cp.stderr)
        expected = expect if isinstance(expect, tuple) else (expect,)
        if cp.returncode not in expected:
            raise SystemExit(f"demo: kvmnet {' '.join(args)} exited {cp.returncode}, expected {expect}")
        print(f"(exit {cp.returncode})", flush=True)
        return cp

    def sysctl(self, key: str) -> str:
        return in_ns(self.ns, "sysctl", "-n", key).stdout.strip()


def main() -> int:
    if os.geteuid() != 0:
        print("make demo needs root (it creates a network namespace)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="kvmnet-demo-") as tmp, netns("kvdemo") as ns:
        d = Demo(Path(tmp), ns)
        (d.workdir / "sysctl.d").mkdir()
        print(f"kvmnet demo: example {EXAMPLE.relative_to(ROOT)} in network namespace {ns}")
        before = d.sysctl("net.core.somaxconn")
        d.step("validate: the config is checked without touching anything")
        d.kvmnet("validate")
        d.step("plan: what would change")
        d.kvmnet("plan")
        d.step("apply")
        d.kvmnet("apply", "--auto-approve")
        print(f"live: net.core.somaxconn = {d.sysctl('net.core.somaxconn')}")
        d.step("plan again: nothing to do (exit 0 with --detailed-exitcode)")
        d.kvmnet("plan", "--detailed-exitcode")
        d.step("someone changes a value behind kvmnet's back: sysctl -w net.core.somaxconn=128")
        in_ns(ns, "sysctl", "-w", "net.core.somaxconn=128")
        d.step("the drift-check cron sees it (exit 2)")
        d.kvmnet("plan", "--refresh-only", "--detailed-exitcode", expect=2)
        d.step("apply repairs it")
        d.kvmnet("apply", "--auto-approve")
        print(f"live: net.core.somaxconn = {d.sysctl('net.core.somaxconn')}")
        d.step("destroy: every value goes back to what it was before kvmnet set it")
        d.kvmnet("destroy", "--auto-approve")
        after = d.sysctl("net.core.somaxconn")
        print(f"live: net.core.somaxconn = {after} (was {before} before the demo)")
        if after != before:
            raise SystemExit("demo: destroy did not restore net.core.somaxconn")
        left = list((d.workdir / "sysctl.d").iterdir())
        if left:
            raise SystemExit(f"demo: files left behind: {left}")
        print(f"\nPart 1 finished in {time.monotonic() - d.t0:.1f} s: "
              f"{d.step_no} steps, namespace {ns} and temporary files removed.")
    return nat_lab()


def nat_lab() -> int:
    """Part 2: a libvirt NAT network, a NIC hot-plugged into a running guest and a port
    forward, against a real libvirtd confined to its own namespace."""
    from kvmnet.sandbox.guest import guest_image, start_guest
    from kvmnet.sandbox.libvirtd import LibvirtSandbox

    print("\n=== Part 2: examples/nat-lab against a real libvirtd in a sandbox ===")
    print("building the sandbox (libvirtd in its own namespace, a small TCG guest web-server)...",
          flush=True)
    image = guest_image()
    with tempfile.TemporaryDirectory(prefix="kvmnet-demo-") as tmp, LibvirtSandbox() as sb:
        sb.define_default_network()
        start_guest(sb, "web-server", image, network="default")
        d = Demo(Path(tmp), sb.netns, NAT_LAB, {"libvirt_uri": sb.uri, "netns": sb.netns})
        d.step("plan: a NAT network, a hot-plugged NIC and a forward")
        d.kvmnet("plan")
        d.step("apply: the NIC is hot-plugged into the running guest, no reboot")
        d.kvmnet("apply", "--auto-approve")
        taps = sb.ip("-br", "link", "show", "master", "virbr1").stdout.strip()
        print(f"live: ports on virbr1: {taps or '(none)'}")
        d.step("no changes now (exit 0)")
        d.kvmnet("plan", "--detailed-exitcode")
        d.step("behind kvmnet's back: virsh net-update changes web-server's DHCP address")
        sb.virsh("net-update", "my-nat", "modify", "ip-dhcp-host",
                 "<host mac='52:54:00:12:34:56' name='web-server' ip='10.0.0.60'/>",
                 "--live", "--config")
        d.step("drift is seen (exit 2)")
        d.kvmnet("plan", "--detailed-exitcode", expect=2)
        d.step("apply repairs it in place: same network UUID, guests stay up")
        d.kvmnet("apply", "--auto-approve")
        d.step("destroy: the NIC is detached first, then the forward and the network go")
        d.kvmnet("destroy", "--auto-approve")
        left = sb.virsh("net-list", "--all", "--name").stdout.split()
        print(f"live: networks left: {', '.join(left) or '(none)'} (default is not managed by this example)")
    print(f"\nDemo finished: the sandbox, its namespace and its libvirtd are gone.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
