"""``kvmnet sandbox up`` / ``down``: the demo's sandbox kept running between commands,
so a newcomer can try a config of their own against real components safely.

``up`` builds what ``make demo`` builds first (:mod:`kvmnet.sandbox.lab`): a real
libvirtd in its own network namespace with the stock ``default`` NAT network, an
uplink veth ``eth0`` whose peer sits in a *client* namespace at 198.18.0.2/24, a
temporary directory for netplan's root and sysctl.d files, and, with ``guest``, a
small TCG guest ``web-server`` with its first NIC on ``default``. It writes a record
(JSON) of everything it made, and prints the provider blocks pointing at it.
``down`` reads the record and removes all of it: the daemon (after destroying its
networks and domains), the namespaces (and every process left in them), the
directories, the record.

The daemon outlives the ``up`` command (its own session); ``down`` stops it by the
PID the record holds, only after checking that this PID is still a libvirtd inside
the sandbox's network namespace.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kvmnet.sandbox.libvirtd import SANDBOX_ROOT, LibvirtSandbox
from kvmnet.sandbox.netns import add_veth, create_netns, delete_netns, in_ns, unique_name

UPLINK = "eth0"
CLIENT_ADDRESS = "198.18.0.2/24"
GUEST = "web-server"


def default_record() -> Path:
    """Where ``up`` writes its record and ``down`` looks for it."""
    return Path(os.environ.get("KVMNET_SANDBOX_RECORD", SANDBOX_ROOT / "session.json"))


@dataclass
class Session:
    """What ``up`` made (the record's contents)."""

    name: str                 # the libvirtd sandbox's name = its network namespace
    root: str                 # the sandbox root its work directory is under
    pid: int                  # the daemon's process (its own session)
    uri: str
    client_ns: str
    tmp: str                  # netplan root and sysctl.d
    guest: str | None = None

    @property
    def workdir(self) -> Path:
        return Path(self.root) / self.name

    def provider_blocks(self) -> str:
        """The provider blocks to paste into a config to use this sandbox."""
        ns = self.name
        return (f'provider "libvirt" {{\n  uri = "{self.uri}"\n}}\n\n'
                f'provider "iproute" {{\n  netns = "{ns}"\n}}\n\n'
                f'provider "netplan" {{\n  netns    = "{ns}"\n  root_dir = "{self.tmp}/netplan-root"\n}}\n\n'
                f'provider "nftables" {{\n  netns = "{ns}"\n}}\n\n'
                f'provider "sysctl" {{\n  netns       = "{ns}"\n  persist_dir = "{self.tmp}/sysctl.d"\n}}\n')


class SessionError(RuntimeError):
    """A sandbox cannot be brought up or down; the message says why."""


def up(record: Path, *, guest: bool = False) -> Session:
    """Build the sandbox and write ``record``; refused if ``record`` exists (one
    sandbox per record: ``down`` first)."""
    if record.exists():
        raise SessionError(f"a sandbox is already up (record {record}): run kvmnet sandbox down first")
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="kvmnet-sandbox-"))
    sandbox = LibvirtSandbox()
    client_ns = None
    try:
        (tmp / "netplan-root" / "etc" / "netplan").mkdir(parents=True)
        (tmp / "sysctl.d").mkdir()
        sandbox.start()
        sandbox.define_default_network()
        client_ns = create_netns(unique_name("klc"))
        add_veth(sandbox.netns, UPLINK, "lab-lan0", peer_ns=client_ns)
        in_ns(client_ns, "ip", "addr", "add", CLIENT_ADDRESS, "dev", "lab-lan0")
        if guest:
            from kvmnet.sandbox.guest import guest_image, start_guest
            start_guest(sandbox, GUEST, guest_image(), network="default")
        assert sandbox.pid is not None            # started above
        session = Session(name=sandbox.name, root=str(sandbox.root), pid=sandbox.pid, uri=sandbox.uri,
                          client_ns=client_ns, tmp=str(tmp), guest=GUEST if guest else None)
        text = json.dumps(asdict(session), indent=2) + "\n"
        fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
    except BaseException:
        sandbox.stop()
        if client_ns:
            delete_netns(client_ns)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    sandbox.detach()          # the daemon keeps running after this process exits
    return session


def read_record(record: Path) -> Session:
    try:
        data = json.loads(record.read_text())
        return Session(**{k: data[k] for k in ("name", "root", "pid", "uri", "client_ns", "tmp")},
                       guest=data.get("guest"))
    except FileNotFoundError:
        raise SessionError(f"no sandbox is up (no record {record})") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SessionError(f"the sandbox record {record} cannot be read ({e}); remove it and "
                           "delete the namespaces it names by hand (ip netns list)") from None


def down(record: Path) -> Session:
    """Remove everything the record names, then the record."""
    s = read_record(record)
    sandbox = LibvirtSandbox(name=s.name, root=s.root)
    if _runs_sandbox(s.pid, s.name):
        try:
            sandbox.destroy_all()
        except Exception:   # noqa: BLE001, S110 - a daemon that does not answer is stopped below anyway
            pass
        os.kill(s.pid, signal.SIGTERM)
        if not _wait_gone(s.pid, 10.0):
            os.kill(s.pid, signal.SIGKILL)
            _wait_gone(s.pid, 5.0)
    delete_netns(s.name)              # kills what is left in it (dnsmasq, qemu)
    delete_netns(s.client_ns)
    shutil.rmtree(s.workdir, ignore_errors=True)
    shutil.rmtree(s.tmp, ignore_errors=True)
    record.unlink()
    return s


def _runs_sandbox(pid: int, netns: str) -> bool:
    """True when ``pid`` is a libvirtd running in network namespace ``netns`` (a PID
    reused by another process is not in that namespace)."""
    from kvmnet.sandbox.netns import sh
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    pids = sh("ip", "netns", "pids", netns, check=False).stdout.split()
    return comm.startswith("libvirtd") and str(pid) in pids


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    return True       # a zombie: gone, waiting for its parent (init) to reap it
        except (ProcessLookupError, FileNotFoundError):
            return True
        except IndexError:
            pass
        time.sleep(0.05)
    return False
