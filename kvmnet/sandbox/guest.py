"""A tiny real guest for NIC hot-plug tests: Debian's cloud kernel + a busybox initramfs.

KVM boots no guest here, TCG does (``<domain type='qemu'>``). The guest is a direct
kernel boot of Debian's ``linux-image-6.1.0-N-cloud-amd64`` (the newest the apt
sources offer) with a ~1 MB busybox initramfs whose ``/init`` mounts proc, sys and
dev, loads the virtio modules (virtio, virtio_ring, virtio_pci, failover,
net_failover, virtio_net: all modules in that kernel, taken from the same package)
and sleeps. PCIe hot-plug (pciehp/acpiphp) is built into the kernel, so a live
detach is acknowledged by the guest and completes.

    image = guest_image()                       # built once, cached in /var/cache/kvmnet-guest
    dom = start_guest(sandbox, "g1", image, network="default")   # waits for /init
    define_guest(sandbox, "g2", image)          # defined, shut off

The image is copied into the sandbox's work directory before use, because the
daemon's mount namespace replaces ``/var`` (see :mod:`kvmnet.sandbox.libvirtd`).
"""
from __future__ import annotations

import fcntl
import gzip
import os
import re
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from kvmnet.sandbox.netns import sh

CACHE_DIR = Path(os.environ.get("KVMNET_GUEST_CACHE", "/var/cache/kvmnet-guest"))
KERNEL_PACKAGE = re.compile(r"^linux-image-6\.1\.0-(\d+)-cloud-amd64$")
# loaded in this order (dependencies first are worked out from each .ko's modinfo)
WANTED_MODULES = ("virtio_pci", "virtio_net")
READY_LINE = "kvmnet-guest-ready"

_INIT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
for m in $(/bin/busybox cat /lib/modules/load-order); do
  /bin/busybox insmod /lib/modules/$m.ko || echo "insmod $m failed"
done
echo kvmnet-guest-ready
/bin/busybox ip -o link
while true; do /bin/busybox sleep 3600; done
"""


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path
    version: str      # kernel release, e.g. 6.1.0-50-cloud-amd64


class GuestBuildError(RuntimeError):
    pass


# -- building -----------------------------------------------------------------------
def newest_kernel_package() -> str:
    cp = sh("apt-cache", "search", "--names-only", r"^linux-image-6\.1\.0-[0-9]+-cloud-amd64$")
    names = [line.split(" ", 1)[0] for line in cp.stdout.splitlines()]
    found = sorted((int(m.group(1)), n) for n in names if (m := KERNEL_PACKAGE.match(n)))
    if not found:
        raise GuestBuildError("no linux-image-6.1.0-*-cloud-amd64 package in the apt sources")
    return found[-1][1]


def module_depends(ko: bytes) -> list[str]:
    """The ``depends=`` list from a kernel module's .modinfo strings."""
    m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", ko)
    if not m or not m.group(1):
        return []
    return [d.decode() for d in m.group(1).split(b",") if d]


def load_order(wanted: tuple[str, ...], modules: dict[str, Path]) -> list[str]:
    """``wanted`` with their dependencies, dependencies first."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in path:
            raise GuestBuildError(f"module dependency cycle: {' -> '.join(path + (name,))}")
        ko = modules.get(name)
        if ko is None:
            raise GuestBuildError(f"module {name} not found in the kernel package")
        for dep in module_depends(ko.read_bytes()):
            visit(dep, path + (name,))
        order.append(name)

    for w in wanted:
        visit(w, ())
    return order


def _write_initramfs(tree: Path, out: Path) -> None:
    files = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    cp = subprocess.run(["busybox", "cpio", "-o", "-H", "newc"], cwd=tree,
                        input="\n".join(files).encode() + b"\n", capture_output=True)
    if cp.returncode != 0:
        raise GuestBuildError(f"busybox cpio failed: {cp.stderr.decode(errors='replace')}")
    with gzip.open(out, "wb", compresslevel=9) as f:
        f.write(cp.stdout)


def build_image(dest: Path, package: str) -> GuestImage:
    """Download ``package``, extract vmlinuz and the virtio modules, write the initramfs."""
    with tempfile.TemporaryDirectory(prefix="kvmnet-guest-") as tmp_name:
        tmp = Path(tmp_name)
        dl = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
        if dl.returncode != 0:
            raise GuestBuildError(f"apt-get download {package} failed: {dl.stderr.strip()}")
        deb = next(tmp.glob("*.deb"))
        sh("dpkg-deb", "-x", str(deb), str(tmp / "x"))
        vmlinuz = next((tmp / "x" / "boot").glob("vmlinuz-*"))
        version = vmlinuz.name[len("vmlinuz-"):]
        modules = {p.name[:-3].replace("-", "_"): p
                   for p in (tmp / "x" / "lib" / "modules" / version).rglob("*.ko")}
        order = load_order(WANTED_MODULES, modules)

        root = tmp / "initramfs"
        for d in ("bin", "lib/modules", "proc", "sys", "dev", "tmp"):
            (root / d).mkdir(parents=True)
        shutil.copy2(shutil.which("busybox") or "/bin/busybox", root / "bin" / "busybox")
        (root / "bin" / "sh").symlink_to("busybox")
        for name in order:
            shutil.copy2(modules[name], root / "lib" / "modules" / f"{name}.ko")
        (root / "lib" / "modules" / "load-order").write_text("\n".join(order) + "\n")
        init = root / "init"
        init.write_text(_INIT)
        init.chmod(0o755)

        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(vmlinuz, dest / "vmlinuz")
        _write_initramfs(root, dest / "initramfs.gz")
        (dest / "version").write_text(version + "\n")
    return GuestImage(dest / "vmlinuz", dest / "initramfs.gz", version)


def guest_image(cache_dir: Path | None = None) -> GuestImage:
    """The cached guest image, built on first use (one builder at a time)."""
    cache = Path(cache_dir) if cache_dir else CACHE_DIR
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = cache / "current"
        if (current / "version").exists():
            return GuestImage(current / "vmlinuz", current / "initramfs.gz",
                              (current / "version").read_text().strip())
        package = newest_kernel_package()
        build = cache / f".build-{os.getpid()}"
        shutil.rmtree(build, ignore_errors=True)
        build_image(build, package)
        build.rename(current)
        return GuestImage(current / "vmlinuz", current / "initramfs.gz",
                          (current / "version").read_text().strip())


# -- domains --------------------------------------------------------------------------
def domain_xml(name: str, kernel: str, initrd: str, console_log: str, *,
               network: str | None = None, mac: str | None = None,
               memory_mib: int = 192, root_ports: int = 4) -> str:
    """A q35 TCG domain booting ``kernel``/``initrd`` with free PCIe hot-plug slots."""
    dom = ET.Element("domain", type="qemu")
    ET.SubElement(dom, "name").text = name
    ET.SubElement(dom, "memory", unit="MiB").text = str(memory_mib)
    ET.SubElement(dom, "vcpu").text = "1"
    os_ = ET.SubElement(dom, "os")
    ET.SubElement(os_, "type", arch="x86_64", machine="q35").text = "hvm"
    ET.SubElement(os_, "kernel").text = kernel
    ET.SubElement(os_, "initrd").text = initrd
    ET.SubElement(os_, "cmdline").text = "console=ttyS0 panic=-1 quiet"
    features = ET.SubElement(dom, "features")
    ET.SubElement(features, "acpi")
    cpu = ET.SubElement(dom, "cpu", mode="custom", match="exact", check="none")
    ET.SubElement(cpu, "model", fallback="allow").text = "qemu64"
    ET.SubElement(cpu, "feature", policy="disable", name="svm")
    ET.SubElement(dom, "on_poweroff").text = "destroy"
    ET.SubElement(dom, "on_reboot").text = "destroy"
    ET.SubElement(dom, "on_crash").text = "destroy"
    dev = ET.SubElement(dom, "devices")
    ET.SubElement(dev, "emulator").text = "/usr/bin/qemu-system-x86_64"
    ET.SubElement(dev, "controller", type="pci", model="pcie-root")
    for _ in range(root_ports):
        ET.SubElement(dev, "controller", type="pci", model="pcie-root-port")
    ET.SubElement(dev, "controller", type="usb", model="none")
    if network:
        iface = ET.SubElement(dev, "interface", type="network")
        ET.SubElement(iface, "source", network=network)
        if mac:
            ET.SubElement(iface, "mac", address=mac)
        ET.SubElement(iface, "model", type="virtio")
    serial = ET.SubElement(dev, "serial", type="file")
    ET.SubElement(serial, "source", path=console_log)
    ET.SubElement(serial, "target", port="0")
    ET.SubElement(dev, "memballoon", model="none")
    return ET.tostring(dom, encoding="unicode")


def _image_in_sandbox(sandbox, image: GuestImage) -> tuple[Path, Path]:
    """Copies of the image inside the sandbox's work directory (visible to QEMU)."""
    d = Path(sandbox.workdir) / "guest"
    d.mkdir(parents=True, exist_ok=True)
    kernel, initrd = d / "vmlinuz", d / "initramfs.gz"
    if not kernel.exists():
        shutil.copy2(image.kernel, kernel)
        shutil.copy2(image.initrd, initrd)
    return kernel, initrd


def console_log(sandbox, name: str) -> Path:
    return Path(sandbox.workdir) / "guest" / f"{name}.console.log"


def define_guest(sandbox, name: str, image: GuestImage, *, network: str | None = None,
                 mac: str | None = None) -> str:
    """Define (not start) a guest domain; returns its name."""
    kernel, initrd = _image_in_sandbox(sandbox, image)
    log = console_log(sandbox, name)
    xml = domain_xml(name, str(kernel), str(initrd), str(log), network=network, mac=mac)
    conn = sandbox.connect()
    try:
        conn.defineXML(xml)
    finally:
        conn.close()
    return name


def start_guest(sandbox, name: str, image: GuestImage, *, network: str | None = None,
                mac: str | None = None, timeout: float = 60.0) -> str:
    """Define and start a guest, and wait until its /init has loaded the modules."""
    define_guest(sandbox, name, image, network=network, mac=mac)
    log = console_log(sandbox, name)
    if log.exists():
        log.unlink()
    conn = sandbox.connect()
    try:
        conn.lookupByName(name).create()
    finally:
        conn.close()
    wait_for_console(sandbox, name, READY_LINE, timeout)
    return name


def wait_for_console(sandbox, name: str, text: str, timeout: float = 60.0) -> str:
    """Wait until the guest's serial console shows ``text``; returns the console so far."""
    log = console_log(sandbox, name)
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        try:
            seen = log.read_text(errors="replace")
        except OSError:
            seen = ""
        if text in seen:
            return seen
        time.sleep(0.1)
    raise TimeoutError(f"guest {name} did not print {text!r} within {timeout}s; console:\n{seen[-3000:]}")
