"""A real ``libvirtd`` confined to a fresh network namespace with private mounts.

The recipe of ``shared/notes/REAL-COMPONENTS.md`` ("A real libvirtd inside a network
namespace"): the daemon runs in its own network namespace and a private mount
namespace in which ``/run``, ``/var``, ``/etc/libvirt``, ``/etc/passwd`` and
``/etc/group`` are bind mounts of directories under the sandbox's work directory.
Bridges, dnsmasq and firewall rules it makes therefore live only in that namespace,
and the host's own libvirt (if any) is never seen. Clients in any namespace reach it
through its socket::

    with LibvirtSandbox() as sb:
        conn = libvirt.open(sb.uri)      # qemu+unix:///system?socket=<workdir>/run/libvirt/libvirt-sock
        sb.define_default_network()      # the stock "default" NAT network, started
        sb.ip("link", "show")            # iproute2 inside the sandbox's namespace

API (kept small on purpose): ``start()``/``stop()`` (or the context manager),
``.netns``, ``.uri``, ``.network_uri``, ``.pid``, ``.workdir``, ``.connect()``,
``.ip(*args)``, ``.netns_pids()``, ``.process_cmdlines()``, ``.virsh(*args)``,
``.host_path(p)``, ``.clean(keep_domains, keep_networks)`` (destroy and undefine
every other network and domain), ``define_default_network()``; ``detach()`` and
``destroy_all()`` for a sandbox that outlives its process (``kvmnet sandbox up``).

Work directories live under ``$KVMNET_SANDBOX_ROOT`` (default
``/tmp/kvmnet-sandbox``): it must lie outside ``/var``, ``/run`` and
``/etc/libvirt``, which the daemon sees replaced, so that files placed there (a guest
kernel, see :mod:`kvmnet.sandbox.guest`) have the same path for the daemon and QEMU
as for the test. Each sandbox gets a fresh work directory; QEMU's capability cache
(the ~8 s probe of the first ``qemu:///system`` connection) is kept between runs in
``<root>/qemu-capabilities`` and copied in at start and back at stop.

Everything runs as argument lists (no user string reaches a shell; the one ``sh -c``
script is a constant that receives the work directory as ``$1``).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from kvmnet.sandbox.netns import create_netns, delete_netns, sh, unique_name

SANDBOX_ROOT = Path(os.environ.get("KVMNET_SANDBOX_ROOT", "/tmp/kvmnet-sandbox"))

# users the qemu driver insists on (it exits at start when they are missing)
_EXTRA_PASSWD = (
    "libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin\n"
    "libvirt-dnsmasq:x:64056:64056::/var/lib/libvirt/dnsmasq:/usr/sbin/nologin\n"
)
_EXTRA_GROUP = "libvirt-qemu:x:64055:\nlibvirt-dnsmasq:x:64056:\n"

_QEMU_CONF = """\
# written by kvmnet.sandbox.libvirtd: no users, cgroups, namespaces or labels
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
namespaces = [ ]
cgroup_controllers = [ ]
"""

_LIBVIRTD_CONF = """\
# written by kvmnet.sandbox.libvirtd
unix_sock_group = "root"
unix_sock_rw_perms = "0770"
auth_unix_rw = "none"
auth_unix_ro = "none"
"""

# /var is bound last: once it is, paths under the host's /var are hidden.
_ENTER_SCRIPT = r"""
set -e
D="$1"
mount --bind "$D/etc" /etc/libvirt
mount --bind "$D/passwd" /etc/passwd
mount --bind "$D/group" /etc/group
mount --bind "$D/run" /run
mkdir -p /run/lock
mount --bind "$D/var" /var
mkdir -p /var/log/libvirt/qemu /var/lib/libvirt /var/cache/libvirt
exec libvirtd
"""

# the stock network of Debian's libvirt-daemon-config-network
DEFAULT_NETWORK_XML = """\
<network>
  <name>default</name>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
"""

_CAPS_SUBDIR = Path("var/cache/libvirt/qemu/capabilities")


class SandboxError(RuntimeError):
    pass


class LibvirtSandbox:
    """A real libvirtd in its own network and mount namespaces (see module doc)."""

    def __init__(self, name: str | None = None, root: Path | str | None = None,
                 start_timeout: float = 20.0):
        self.name = name or unique_name("kvl")
        self.root = Path(root) if root else SANDBOX_ROOT
        self.workdir = self.root / self.name
        self.netns = self.name
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen | None = None
        self._netns_made = False

    # -- addresses ---------------------------------------------------------------
    @property
    def socket(self) -> Path:
        return self.workdir / "run" / "libvirt" / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.socket}"

    @property
    def network_uri(self) -> str:
        return f"network+unix:///system?socket={self.socket}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def log_path(self) -> Path:
        return self.workdir / "log" / "libvirtd.log"

    def host_path(self, inside: str) -> Path:
        """The host path of a path under the daemon's /var or /run (e.g. dnsmasq files)."""
        p = Path(inside)
        for top in ("var", "run"):
            if p.parts[1:2] == (top,):
                return self.workdir / top / Path(*p.parts[2:])
        raise ValueError(f"{inside} is not under the sandbox's /var or /run")

    # -- life cycle ----------------------------------------------------------------
    def __enter__(self) -> "LibvirtSandbox":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "LibvirtSandbox":
        if self._proc:
            return self
        try:
            self._prepare_workdir()
            create_netns(self.netns)
            self._netns_made = True
            log = open(self.log_path, "ab")
            try:
                self._proc = subprocess.Popen(
                    ["ip", "netns", "exec", self.netns,
                     # on one CPU: libvirt's QEMU capability cache records the host
                     # CPUID, which differs between CPUs here; QEMU itself gets all
                     # CPUs back from libvirt
                     "taskset", "-c", "0",
                     "unshare", "-m", "--propagation", "private",
                     "sh", "-c", _ENTER_SCRIPT, "sh", str(self.workdir)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            finally:
                log.close()
            self._wait_for_socket()
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare_workdir(self) -> None:
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        for sub in ("run", "var", "etc", "log", "guest"):
            (self.workdir / sub).mkdir(parents=True)
        shutil.copytree("/etc/libvirt", self.workdir / "etc", dirs_exist_ok=True)
        (self.workdir / "etc" / "qemu.conf").write_text(_QEMU_CONF)
        (self.workdir / "etc" / "libvirtd.conf").write_text(_LIBVIRTD_CONF)
        (self.workdir / "passwd").write_text(Path("/etc/passwd").read_text() + _EXTRA_PASSWD)
        (self.workdir / "group").write_text(Path("/etc/group").read_text() + _EXTRA_GROUP)
        cache = self.root / "qemu-capabilities"
        if cache.is_dir():
            shutil.copytree(cache, self.workdir / _CAPS_SUBDIR, dirs_exist_ok=True)

    def _wait_for_socket(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        proc = self._proc
        assert proc is not None           # called by start(), once libvirtd is spawned
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SandboxError(f"libvirtd exited with {proc.returncode}: {self._log_tail()}")
            if self.socket.exists():
                cp = sh("virsh", "-c", self.network_uri, "net-list", "--all", check=False)
                if cp.returncode == 0:
                    return
            time.sleep(0.05)
        raise SandboxError(f"libvirtd did not answer within {self.start_timeout}s: {self._log_tail()}")

    def _log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Destroy every network and domain, stop libvirtd, empty and delete the netns."""
        if self._proc and self._proc.poll() is None:
            try:
                self._destroy_all(undefine=False)
            except Exception:   # noqa: S110 - the daemon and its namespace are removed below anyway
                pass
            self._save_capabilities()
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None
        if self._netns_made:
            delete_netns(self.netns)   # kills leftovers (dnsmasq, qemu) first
            self._netns_made = False
        shutil.rmtree(self.workdir, ignore_errors=True)

    def detach(self) -> None:
        """Leave the daemon and the namespace running when this object goes
        (``kvmnet sandbox up``: ``kvmnet.sandbox.session.down`` removes them later)."""
        self._proc = None
        self._netns_made = False

    def destroy_all(self) -> None:
        """Stop every domain and network (not undefined: the work directory goes anyway)
        and keep QEMU's capability cache, as :meth:`stop` does before stopping."""
        self._destroy_all(undefine=False)
        self._save_capabilities()

    def _save_capabilities(self) -> None:
        src = self.workdir / _CAPS_SUBDIR
        if not src.is_dir() or not any(src.iterdir()):
            return
        dst = self.root / "qemu-capabilities"
        if dst.is_dir() and all((dst / f.name).exists() and (dst / f.name).read_bytes() == f.read_bytes()
                                for f in src.iterdir()):
            return   # unchanged: leave it alone (another sandbox may be copying it in)
        tmp = self.root / f".qemu-capabilities.{self.name}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        shutil.rmtree(dst, ignore_errors=True)
        try:
            tmp.rename(dst)
        except OSError:   # another sandbox saved at the same moment; theirs is as good
            shutil.rmtree(tmp, ignore_errors=True)

    # -- helpers for tests -----------------------------------------------------------
    def connect(self):
        """A new read-write libvirt connection to this daemon (caller closes it)."""
        import libvirt
        return libvirt.open(self.uri)

    def virsh(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("virsh", "-q", "-c", self.uri, *args, check=check)

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """``ip -n NETNS ARGS...``: iproute2 inside the sandbox's network namespace."""
        return sh("ip", "-n", self.netns, *args, check=check)

    def netns_pids(self) -> list[int]:
        cp = sh("ip", "netns", "pids", self.netns, check=False)
        return [int(p) for p in cp.stdout.split()]

    def process_cmdlines(self) -> list[list[str]]:
        """Command lines of every process in the sandbox's network namespace."""
        out = []
        for pid in self.netns_pids():
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            out.append([a.decode(errors="replace") for a in raw.split(b"\0") if a])
        return out

    def clean(self, keep_domains=(), keep_networks=()) -> None:
        """Destroy and undefine every domain and network but the ones named (between tests)."""
        self._destroy_all(undefine=True, keep_domains=set(keep_domains),
                          keep_networks=set(keep_networks))

    def _destroy_all(self, undefine: bool, keep_domains=frozenset(), keep_networks=frozenset()) -> None:
        import libvirt
        conn = libvirt.open(self.uri)
        try:
            for dom in conn.listAllDomains(0):
                if dom.name() in keep_domains:
                    continue
                if dom.isActive():
                    try:
                        dom.destroy()
                    except libvirt.libvirtError:
                        pass
                if undefine and dom.isPersistent():
                    try:
                        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
                    except libvirt.libvirtError:
                        dom.undefine()
            for net in conn.listAllNetworks(0):
                if net.name() in keep_networks:
                    continue
                if net.isActive():
                    try:
                        net.destroy()
                    except libvirt.libvirtError:
                        pass
                if undefine and net.isPersistent():
                    net.undefine()
        finally:
            conn.close()

    def define_default_network(self, start: bool = True):
        """Define (and start) Debian's stock ``default`` NAT network; returns its name."""
        conn = self.connect()
        try:
            net = conn.networkDefineXML(DEFAULT_NETWORK_XML)
            net.setAutostart(True)
            if start:
                net.create()
            return net.name()
        finally:
            conn.close()
