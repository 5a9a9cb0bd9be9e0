"""Reachability checks run inside a network namespace: an ICMP echo to an address and
a TCP connect to an address and port. The providers' probes (:mod:`kvmnet.sdk.probes`)
run this module as ``nsenter --net=/run/netns/NS -- python -m kvmnet.sdk.reach
…`` (argument lists, no shell), so the check uses that namespace's routes and
firewall; exit 0 when the target answered, 1 with one line saying why not."""
from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import sys
import time


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, v6: bool) -> bytes:
    """An ICMP (type 8) or ICMPv6 (type 128) echo request; the kernel fills in
    ICMPv6's checksum."""
    kind = 128 if v6 else 8
    payload = b"kvmnet-probe"
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if v6:
        return header + payload
    return struct.pack("!BBHHH", kind, 0, _checksum(header + payload), ident, seq) + payload


def is_echo_reply(packet: bytes, ident: int, v6: bool) -> bool:
    if not v6:
        packet = packet[(packet[0] & 0x0F) * 4:]       # IPv4 raw sockets see the IP header
    if len(packet) < 8:
        return False
    kind, _code, _sum, got_ident, _seq = struct.unpack("!BBHHH", packet[:8])
    return kind == (129 if v6 else 0) and got_ident == ident


def icmp_echo(address: str, timeout: float) -> str | None:
    """None when ``address`` answered an echo request within ``timeout``; else why not."""
    v6 = ipaddress.ip_address(address).version == 6
    family, proto = (socket.AF_INET6, socket.IPPROTO_ICMPV6) if v6 else (socket.AF_INET, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    end = time.monotonic() + timeout
    with socket.socket(family, socket.SOCK_RAW, proto) as s:
        seq = 0
        while time.monotonic() < end:
            seq += 1
            try:
                s.sendto(echo_request(ident, seq, v6), (address, 0))
            except OSError as e:
                return f"cannot send to {address}: {e.strerror or e}"
            resend = min(end, time.monotonic() + 0.5)
            while time.monotonic() < resend:
                ready, _, _ = select.select([s], [], [], max(0.0, resend - time.monotonic()))
                if not ready:
                    break
                packet, peer = s.recvfrom(2048)
                if peer[0] == address and is_echo_reply(packet, ident, v6):
                    return None
    return f"no echo reply from {address} within {timeout:g} s"


def tcp_connect(address: str, port: int, timeout: float) -> str | None:
    """None when a TCP connection to ``address``:``port`` was accepted in time."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return None
    except OSError as e:
        return f"TCP connect to {address} port {port}: {e.strerror or type(e).__name__}"


def main(argv: list[str]) -> int:
    """``icmp ADDRESS TIMEOUT`` or ``tcp ADDRESS PORT TIMEOUT``."""
    try:
        if argv[:1] == ["icmp"] and len(argv) == 3:
            why = icmp_echo(argv[1], float(argv[2]))
        elif argv[:1] == ["tcp"] and len(argv) == 4:
            why = tcp_connect(argv[1], int(argv[2]), float(argv[3]))
        else:
            print("usage: reach icmp ADDRESS TIMEOUT | reach tcp ADDRESS PORT TIMEOUT", file=sys.stderr)
            return 2
    except (ValueError, OSError) as e:
        why = str(e)
    if why:
        print(why)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
