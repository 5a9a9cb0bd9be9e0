"""``make demo``: the KVM networking guide's whole lab (``examples/guide-lab``) run by
kvmnet against a real, throw-away sandbox (:class:`kvmnet.sandbox.lab.GuideLab`).

validate → import the stock ``default`` network → plan → apply → a request through a
forward → a no-change plan → the switched-off parts' plan → changes behind kvmnet's
back → plan showing the drift (exit 2) → apply repairing it → a destroy refused
because an unmanaged VM still uses ``my-nat`` → the operator's fix → destroy →
sandbox torn down. Nothing on the host is touched: every provider works inside the
sandbox's network namespace, every file goes to a temporary directory, and all of it
is removed at the end whatever happens.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from kvmnet.sandbox.lab import FORWARDS, GUIDE_LAB, GuideLab, built
from kvmnet.sandbox.netns import sh

ROOT = Path(__file__).resolve().parent.parent
TUNED_KEYS = ("net.ipv4.ip_forward", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
              "net.ipv4.tcp_window_scaling")


class Narrator:
    """Numbered steps, the kvmnet commands with their output, and checks."""

    def __init__(self, lab: GuideLab):
        self.lab = lab
        self.steps = 0
        self.tty = sys.stdout.isatty()

    def step(self, text: str) -> None:
        self.steps += 1
        line = f"[{self.steps:2d}] {text}"
        print(f"\n\033[1m{line}\033[0m" if self.tty else f"\n{line}", flush=True)

    def say(self, text: str) -> None:
        print(f"     {text}", flush=True)

    def kvmnet(self, *args: str, expect: int = 0, output: str = "all", variables=None) -> str:
        """Run ``kvmnet ARGS`` on the lab; ``output``: all, progress (what follows the
        plan of an apply/destroy: the plan was just shown) or none."""
        shown = " ".join(a if " " not in a else repr(a) for a in args)
        extra = "" if variables is None else " " + " ".join(
            f"--var {k}={v}" for k, v in variables.items() if self.lab.variables().get(k) != v)
        print(f"$ kvmnet{extra} {shown}", flush=True)
        cp = self.lab.kvmnet(*args, variables=variables)
        text = cp.stdout + cp.stderr
        if output == "progress":
            lines = text.splitlines()
            cut = next((i for i, line in enumerate(lines) if line.startswith("Plan:")), -1)
            text = "\n".join(lines[cut + 1:]).strip("\n") + "\n"
        if output != "none":
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
        print(f"(exit {cp.returncode})", flush=True)
        if cp.returncode != expect:
            if output == "none":
                sys.stdout.write(cp.stdout + cp.stderr)
            raise SystemExit(f"demo: kvmnet {shown} exited {cp.returncode}, expected {expect}")
        return cp.stdout

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            raise SystemExit(f"demo: check failed: {what}")


def run(lab: GuideLab) -> dict:
    """The story; returns figures for the closing summary."""
    d = Narrator(lab)
    sb = built(lab.sandbox)
    before = {k: lab.sysctl(k) for k in TUNED_KEYS}
    all_on = lab.variables(enable_vlans=True, enable_host_wide_sysctls=True)

    d.step("validate: the whole config, checked before anything is touched (no root, no libvirt needed)")
    d.kvmnet("validate")
    d.kvmnet("validate", variables=all_on)

    d.step("import the stock default network (it exists on every KVM host; kvmnet adopts it)")
    d.kvmnet("import", "network.default", "default")

    d.step("plan: what the guide's sections add up to")
    d.kvmnet("plan")

    d.step("apply: networks, br0 (netplan), forwards, the hot-plugged NIC, the sysctl profile")
    d.kvmnet("apply", "--auto-approve", output="progress")
    nets = sb.virsh("net-list", "--name").stdout.split()
    d.say(f"live: {len(nets)} active networks: {', '.join(sorted(nets))}")
    ifl = [line.split() for line in sb.virsh("domiflist", "web-server").stdout.splitlines()]
    d.say("live: web-server's NICs (no reboot): "
          + "; ".join(f"{r[0]} on {r[2]} {r[3]} {r[4]}" for r in ifl if len(r) >= 5))
    d.say(f"live: netplan file {lab.netplan_file.name}, sysctl file "
          f"{', '.join(p.name for p in lab.sysctl_dir.iterdir())}")

    d.step("traffic through the forwards: client namespace -> host 198.18.0.1 -> web-server 10.0.0.50")
    lab.connect_guest_namespace()
    for host_port in FORWARDS:
        reply = lab.wait_for_request(host_port)
        d.say(f"198.18.0.1:{host_port} -> {reply}")
        d.check(reply.startswith(("HTTP 200", "web-server")), f"forward {host_port}")

    d.step("the guide's section 9 checklist, bottom up, in one command: kvmnet doctor")
    d.kvmnet("doctor")

    d.step("plan again: no changes (exit 0 with --detailed-exitcode)")
    d.kvmnet("plan", "--detailed-exitcode")

    d.step("the parts this sandbox cannot hold, switched on: the host-wide keys are refused "
           "inside a namespace (exit 1); the plan of both without touching anything")
    d.kvmnet("plan", expect=1, variables=lab.variables(enable_host_wide_sysctls=True))
    d.kvmnet("plan", "--refresh=false", variables=all_on)

    d.step("someone defines legacy-vm (shut off, not managed by kvmnet) with a NIC on my-nat")
    lab.define_legacy_vm()
    d.say(sb.virsh("domiflist", "legacy-vm").stdout.strip())

    d.step("behind kvmnet's back: `nft delete rule` removes the 8080 forward, "
           "`virsh net-update` moves web-server's DHCP address")
    gone = lab.delete_forward_rule('port_forward.web_server["web"]')
    lab.edit_dhcp_host("10.0.0.60")
    d.say(f"nft: {gone} rule deleted; virsh: web-server -> 10.0.0.60")
    reply = lab.request(8080)
    d.say(f"198.18.0.1:8080 -> {reply}")
    d.check(reply.startswith("ERR:"), "8080 is broken after the rule was deleted")

    d.step("the drift check sees both (exit 2)")
    d.kvmnet("plan", "--detailed-exitcode", expect=2)

    d.step("apply repairs them: the forward is re-created, the DHCP host updated in place")
    d.kvmnet("apply", "--auto-approve", output="progress")
    reply = lab.wait_for_request(8080)
    d.say(f"198.18.0.1:8080 -> {reply}")
    d.check(reply.startswith("HTTP 200"), "8080 works again")
    d.kvmnet("plan", "--detailed-exitcode", output="none")

    d.step("hand the stock default network back before tearing the lab down "
           "(web-server's first NIC stays on it)")
    d.kvmnet("state", "rm", "network.default")

    d.step("destroy: refused, legacy-vm still uses my-nat (exit 1, nothing changed)")
    d.kvmnet("destroy", "--auto-approve", expect=1)
    d.check(sorted(sb.virsh("net-list", "--name").stdout.split()) == sorted(nets),
            "the refused destroy changed nothing")

    d.step("the operator's fix: virsh undefine legacy-vm")
    lab.undefine_legacy_vm()

    d.step("destroy: the NIC is detached, the forwards, networks, br0 and the profile go")
    d.kvmnet("destroy", "--auto-approve", output="progress")
    left = sb.virsh("net-list", "--all", "--name").stdout.split()
    links = [line.split()[0].split("@")[0] for line in sb.ip("-br", "link").stdout.splitlines()]
    tables = sh("ip", "netns", "exec", lab.netns, "nft", "list", "tables").stdout.split("\n")
    after = {k: lab.sysctl(k) for k in TUNED_KEYS}
    d.say(f"live: networks left: {', '.join(left)} (not managed any more); links: {', '.join(links)}")
    d.say(f"live: kvmnet's nft table: {'gone' if not any('kvmnet' in t for t in tables) else 'STILL THERE'}; "
          f"netplan file: {'gone' if not lab.netplan_file.exists() else 'STILL THERE'}; "
          f"sysctl.d: {'empty' if not any(lab.sysctl_dir.iterdir()) else 'NOT EMPTY'}; "
          f"sysctls restored: {'yes' if after == before else 'NO'}")
    d.check(left == ["default"], "only default is left")
    d.check(not any(n.startswith(("br0", "virbr1")) for n in links), "br0 and virbr1 are gone")
    d.check(after == before and not lab.netplan_file.exists(), "values restored, file removed")
    return {"steps": d.steps, "networks": len(nets)}


def main() -> int:
    if os.geteuid() != 0:
        print("make demo needs root (it creates network namespaces and runs libvirtd)", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    print(f"kvmnet demo: the KVM networking guide's lab ({GUIDE_LAB.relative_to(ROOT)}) "
          "against a real sandbox")
    print("building the sandbox: libvirtd in its own namespace with the stock default network, "
          "an uplink veth to a client namespace, a TCG guest web-server, a guest namespace "
          "holding 10.0.0.50 ...", flush=True)
    with GuideLab() as lab:
        names = (lab.netns, built(lab.client_ns), built(lab.guest_ns))
        workdir, tmp = built(built(lab.sandbox).workdir), built(lab.tmp)
        print(f"sandbox ready in {time.monotonic() - t0:.1f} s: namespaces {', '.join(names)}")
        figures = run(lab)
        print("\ntearing the sandbox down ...", flush=True)
    remaining = set(sh("ip", "netns", "list").stdout.split()) & set(names)
    leftovers = [str(p) for p in (workdir, tmp) if p.exists()] + sorted(remaining)
    print(f"\nDemo finished in {time.monotonic() - t0:.0f} s: {figures['steps']} steps; "
          f"{figures['networks']} libvirt networks, br0 and 4 forwards built from the guide, "
          "traffic carried, drift found and repaired, an unsafe destroy refused, then everything "
          "destroyed. " + ("Nothing is left on the host." if not leftovers
                            else f"LEFT BEHIND: {', '.join(leftovers)}"))
    return 0 if not leftovers else 1


if __name__ == "__main__":
    sys.exit(main())
