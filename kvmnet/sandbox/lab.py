"""The sandbox the guide's lab (``examples/guide-lab``) runs in: shared by ``make demo``
and ``tests/real/test_guide_lab.py``.

    with GuideLab() as lab:
        lab.kvmnet("import", "network.default", "default")
        lab.kvmnet("apply", "--auto-approve")
        lab.connect_guest_namespace()       # once my-nat's bridge exists
        lab.request(8080)                   # client namespace -> 198.18.0.1:8080 -> 10.0.0.50:80

What it builds, all inside namespaces it creates and always deletes:

- a real libvirtd in its own network namespace (:class:`LibvirtSandbox`) with
  Debian's stock ``default`` NAT network; every host-level provider of the lab
  (netplan, nftables, sysctl) gets that namespace as ``netns``, so it sees the
  bridges libvirt makes;
- the "uplink": a veth pair whose sandbox end is ``eth0`` (the lab's ``br0``
  enslaves it) and whose other end is in a *client* namespace at 198.18.0.2/24 (a
  test range); the lab gives ``br0`` 198.18.0.1/24, the host's outside address;
- a small real guest ``web-server`` under TCG, first NIC on ``default``, so the
  lab can hot-plug its second NIC;
- a *guest* namespace standing in for web-server's services: 10.0.0.50/24 on a veth
  whose other end :meth:`connect_guest_namespace` enslaves to my-nat's bridge
  ``virbr1``, with a bounded TCP server on ports 80, 22, 3306 and 25;
- :meth:`define_legacy_vm`: an unmanaged, shut-off domain with a NIC on my-nat;
- a temporary directory for the state, the netplan root and the sysctl.d files.

No packet leaves these namespaces; nothing is written outside the temporary
directory and the sandbox's work directory.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TypeVar

from kvmnet.sandbox.guest import GuestImage, define_guest, guest_image, start_guest
from kvmnet.sandbox.libvirtd import LibvirtSandbox
from kvmnet.sandbox.netns import add_veth, create_netns, delete_netns, in_ns, unique_name

ROOT = Path(__file__).resolve().parents[2]
GUIDE_LAB = ROOT / "examples" / "guide-lab"

UPLINK = "eth0"                       # the sandbox end of the uplink veth
OUTSIDE_ADDRESS = "198.18.0.1/24"     # br0's address (a test range, RFC 2544)
CLIENT_ADDRESS = "198.18.0.2/24"
GUEST_ADDRESS = "10.0.0.50/24"        # web-server's static DHCP address on my-nat
GUEST_GATEWAY = "10.0.0.1"
GUEST_VETH = "web-svc"                # sandbox end of the guest namespace's veth
GUEST_PORTS = (80, 22, 3306, 25)
FORWARDS = {8080: 80, 2222: 22, 3307: 3306, 2525: 25}

# A bounded stand-in for web-server's services: HTTP on 80, a one-line banner elsewhere.
_SERVER = r"""
import socket, sys, threading, time
life = float(sys.argv[1]); ports = [int(p) for p in sys.argv[2:]]
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, peer = s.accept(); c.settimeout(2)
        body = b"web-server 10.0.0.50:%d (client %s)\n" % (port, peer[0].encode())
        try:
            if port == 80:
                c.recv(1024)
                c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                          % (len(body), body))
            else:
                c.sendall(body)
        except OSError:
            pass
        c.close()
for p in ports:
    threading.Thread(target=serve, args=(p,), daemon=True).start()
time.sleep(0.2); print("ready", flush=True); time.sleep(life)
"""

# One request from the client namespace: HTTP GET for 8080, read the banner otherwise.
_CLIENT = r"""
import socket, sys, urllib.request
host, port = sys.argv[1], int(sys.argv[2])
try:
    if port == 8080:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=3) as r:
            print(f"HTTP {r.status}: {r.read().decode().strip()}")
    else:
        s = socket.create_connection((host, port), timeout=3); print(s.recv(200).decode().strip())
except OSError as e:
    print(f"ERR:{type(e).__name__}: {e}")
"""


T = TypeVar("T")


def built(value: T | None) -> T:
    """``value``, a part of the lab that exists once the lab is built."""
    if value is None:
        raise RuntimeError("the guide lab is not built (use it in a with block)")
    return value


class GuideLab:
    """The guide lab's sandbox (see module doc); a context manager."""

    def __init__(self, config_dir: Path = GUIDE_LAB, server_lifetime: int = 600):
        self.config_dir = Path(config_dir)
        self.server_lifetime = server_lifetime
        self.sandbox: LibvirtSandbox | None = None
        self.tmp: Path | None = None
        self.client_ns: str | None = None
        self.guest_ns: str | None = None
        self._server: subprocess.Popen | None = None
        self._image: GuestImage | None = None

    # -- life cycle ------------------------------------------------------------------
    def __enter__(self) -> "GuideLab":
        try:
            self.build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()

    def build(self) -> None:
        image = self._image = guest_image()
        tmp = self.tmp = Path(tempfile.mkdtemp(prefix="kvmnet-lab-"))
        (tmp / "netplan-root" / "etc" / "netplan").mkdir(parents=True)
        (tmp / "sysctl.d").mkdir()
        sandbox = self.sandbox = LibvirtSandbox().start()
        sandbox.define_default_network()
        ns = sandbox.netns
        # the uplink: eth0 in the sandbox, its peer in the client namespace
        client_ns = self.client_ns = create_netns(unique_name("klc"))
        add_veth(ns, UPLINK, "lab-lan0", peer_ns=client_ns)
        in_ns(client_ns, "ip", "addr", "add", CLIENT_ADDRESS, "dev", "lab-lan0")
        # web-server's services: 10.0.0.50 in the guest namespace (joined to my-nat later)
        guest_ns = self.guest_ns = create_netns(unique_name("klg"))
        add_veth(ns, GUEST_VETH, "lab-web0", peer_ns=guest_ns)
        in_ns(guest_ns, "ip", "addr", "add", GUEST_ADDRESS, "dev", "lab-web0")
        in_ns(guest_ns, "ip", "route", "add", "default", "via", GUEST_GATEWAY)
        server = self._server = subprocess.Popen(
            ["ip", "netns", "exec", guest_ns, sys.executable, "-c", _SERVER,
             str(self.server_lifetime), *map(str, GUEST_PORTS)],
            stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None  # stdout=PIPE
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("the guest namespace's server did not start")
        start_guest(sandbox, "web-server", image, network="default")

    def teardown(self) -> None:
        if self._server is not None:
            self._server.kill()
            self._server.wait(timeout=5)
            self._server = None
        for ns in (self.guest_ns, self.client_ns):
            if ns:
                delete_netns(ns)
        self.guest_ns = self.client_ns = None
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    # -- the lab's inputs ------------------------------------------------------------
    @property
    def netns(self) -> str:
        return built(self.sandbox).netns

    @property
    def state_path(self) -> Path:
        return built(self.tmp) / "kvmnet.state.db"

    @property
    def netplan_file(self) -> Path:
        return built(self.tmp) / "netplan-root" / "etc" / "netplan" / "90-kvmnet.yaml"

    @property
    def sysctl_dir(self) -> Path:
        return built(self.tmp) / "sysctl.d"

    def variables(self, **overrides) -> dict[str, str]:
        """The lab's variables for this sandbox: VLANs and host-wide sysctls off."""
        v = {
            "libvirt_uri": built(self.sandbox).uri,
            "netns": self.netns,
            "uplink": UPLINK,
            "uplink_address": OUTSIDE_ADDRESS,
            "netplan_root": str(built(self.tmp) / "netplan-root"),
            "sysctl_dir": str(self.sysctl_dir),
            "enable_vlans": "false",
            "enable_host_wide_sysctls": "false",
        }
        v.update({k: str(x).lower() if isinstance(x, bool) else str(x) for k, x in overrides.items()})
        return v

    def kvmnet_argv(self, *args: str, variables: dict | None = None) -> list[str]:
        argv = [sys.executable, "-m", "kvmnet", "--no-color", "-C", str(self.config_dir),
                "--state", str(self.state_path)]
        for k, v in (variables or self.variables()).items():
            argv += ["--var", f"{k}={v}"]
        return argv + list(args)

    def kvmnet(self, *args: str, variables: dict | None = None) -> subprocess.CompletedProcess:
        """Run the CLI on the lab (stdin closed: no prompt can wait)."""
        return subprocess.run(self.kvmnet_argv(*args, variables=variables), capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=300)

    # -- steps of the story ------------------------------------------------------------
    def connect_guest_namespace(self, bridge: str = "virbr1") -> None:
        """Plug the guest namespace into my-nat's bridge (it exists once the lab is applied)."""
        in_ns(self.netns, "ip", "link", "set", GUEST_VETH, "master", bridge)

    def define_legacy_vm(self, network: str = "my-nat") -> str:
        """An unmanaged, shut-off domain with a NIC on ``network``."""
        return define_guest(built(self.sandbox), "legacy-vm", built(self._image), network=network,
                            mac="52:54:00:99:00:01")

    def undefine_legacy_vm(self) -> None:
        built(self.sandbox).virsh("undefine", "legacy-vm")

    def request(self, host_port: int, host: str = OUTSIDE_ADDRESS.split("/")[0]) -> str:
        """One request from the client namespace to the host's outside address."""
        cp = in_ns(built(self.client_ns), sys.executable, "-c", _CLIENT, host, str(host_port), check=False)
        return cp.stdout.strip() or f"ERR:{cp.stderr.strip()}"

    def wait_for_request(self, host_port: int, timeout: float = 10.0) -> str:
        """:meth:`request` until it reaches the guest (the bridge port needs a moment)."""
        deadline = time.monotonic() + timeout
        while True:
            reply = self.request(host_port)
            if not reply.startswith("ERR:") or time.monotonic() > deadline:
                return reply
            time.sleep(0.3)

    def sysctl(self, key: str) -> str:
        """A sysctl's value in the sandbox namespace, whitespace normalised (/proc shows tabs)."""
        return " ".join(in_ns(self.netns, "sysctl", "-n", key).stdout.split())

    # -- changes made behind kvmnet's back (drift) ---------------------------------------
    def delete_forward_rule(self, address: str) -> int:
        """Delete the DNAT rule of one forward with ``nft``, as an operator would; returns
        how many rules went."""
        import json
        from kvmnet.sdk.ownership import parse_mark
        doc = json.loads(in_ns(self.netns, "nft", "-j", "list", "table", "ip", "kvmnet").stdout)
        gone = 0
        for item in doc["nftables"]:
            rule = item.get("rule")
            mark = parse_mark(rule.get("comment", "")) if rule else None
            if mark and mark.address == address and "dnat" in json.dumps(rule["expr"]):
                in_ns(self.netns, "nft", "delete", "rule", "ip", "kvmnet", rule["chain"],
                      "handle", str(rule["handle"]))
                gone += 1
        return gone

    def edit_dhcp_host(self, ip: str = "10.0.0.60") -> None:
        """Move web-server's static DHCP address with ``virsh net-update`` (live and saved)."""
        built(self.sandbox).virsh("net-update", "my-nat", "modify", "ip-dhcp-host",
                           f"<host mac='52:54:00:12:34:56' name='web-server' ip='{ip}'/>",
                           "--live", "--config")
