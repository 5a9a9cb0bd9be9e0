"""Benchmark inputs: a config directory of N ``network`` resources and a state holding them.

Each network is a NAT network with its own bridge (``kvb<i>``), a /24 of its own
(``10.<i // 256>.<i % 256>.0/24``, so up to 65,536 never overlap), one DHCP range and
one static host; resources are spread over files of ``per_file`` resources each.

:func:`seed_state` writes the same N instances into a state through the state store
API, with attributes equal to the canonical desired attributes (plus the computed
``uuid``/``active``), so ``kvmnet plan --refresh=false`` against it has no changes.
:func:`terraform_config` writes the peer's equivalent: N ``terraform_data``
resources whose ``input`` is an object with the same fields.

    .venv/bin/python benchmarks/gen.py DIR N [--state PATH] [--per-file 500]
"""
from __future__ import annotations

import argparse
import os
import uuid
from pathlib import Path

PER_FILE = 500


def network(i: int) -> dict:
    """The attributes of network ``i`` as the config states them (blocks as lists)."""
    a, b = divmod(i, 256)
    net = f"10.{a}.{b}"
    return {
        "mode": "nat",
        "bridge": f"kvb{i}",
        "ip": [{
            "address": f"{net}.1",
            "prefix": 24,
            "dhcp_range": [{"start": f"{net}.100", "end": f"{net}.200"}],
            "dhcp_host": [{"mac": f"52:54:00:{a:02x}:{b:02x}:10", "ip": f"{net}.10",
                           "name": f"vm{i}"}],
        }],
    }


def label(i: int) -> str:
    return f"n{i:05d}"


def _hcl_block(i: int) -> str:
    n = network(i)
    ip = n["ip"][0]
    r, h = ip["dhcp_range"][0], ip["dhcp_host"][0]
    return (
        f'resource "network" "{label(i)}" {{\n'
        f'  mode   = "{n["mode"]}"\n'
        f'  bridge = "{n["bridge"]}"\n'
        f"\n"
        f"  ip {{\n"
        f'    address = "{ip["address"]}"\n'
        f'    prefix  = {ip["prefix"]}\n'
        f"\n"
        f"    dhcp_range {{\n"
        f'      start = "{r["start"]}"\n'
        f'      end   = "{r["end"]}"\n'
        f"    }}\n"
        f"\n"
        f"    dhcp_host {{\n"
        f'      mac  = "{h["mac"]}"\n'
        f'      ip   = "{h["ip"]}"\n'
        f'      name = "{h["name"]}"\n'
        f"    }}\n"
        f"  }}\n"
        f"}}\n"
    )


def _write_chunks(directory: Path, n: int, per_file: int, block, prefix: str, ext: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in range(0, n, per_file):
        path = directory / f"{prefix}{start // per_file:03d}.{ext}"
        path.write_text("\n".join(block(i) for i in range(start, min(n, start + per_file))))
        paths.append(path)
    return paths


def write_config(directory: str | os.PathLike, n: int, per_file: int = PER_FILE) -> list[Path]:
    """Write N network resources as ``networks-NNN.hcl`` files into ``directory``."""
    return _write_chunks(Path(directory), n, per_file, _hcl_block, "networks-", "hcl")


def desired_attrs(i: int) -> dict:
    """Network ``i``'s attributes as the engine compares them (canonical, defaults in)."""
    from kvmnet.engine.resources import canonical, with_defaults
    return canonical("network", with_defaults("network", label(i), network(i)))


def seed_state(path: str | os.PathLike, n: int) -> None:
    """Write a state holding networks 0..n-1, as if they had been applied."""
    from kvmnet.engine.resources import identity
    from kvmnet.state import InstanceRecord, open_state

    with open_state(path) as store, store.transaction() as tx:
        for i in range(n):
            attrs = desired_attrs(i)
            attrs["uuid"] = str(uuid.UUID(int=i + 1))
            attrs["active"] = True
            tx.put(InstanceRecord(address=f"network.{label(i)}", type="network", name=label(i),
                                  provider="libvirt", id=identity("network", attrs), attrs=attrs))


def _tf_block(i: int) -> str:
    n = network(i)
    ip = n["ip"][0]
    r, h = ip["dhcp_range"][0], ip["dhcp_host"][0]
    return (
        f'resource "terraform_data" "{label(i)}" {{\n'
        f"  input = {{\n"
        f'    name      = "{label(i)}"\n'
        f'    mode      = "{n["mode"]}"\n'
        f'    bridge    = "{n["bridge"]}"\n'
        f"    autostart = true\n"
        f"    ip = {{\n"
        f'      address    = "{ip["address"]}"\n'
        f'      prefix     = {ip["prefix"]}\n'
        f'      dhcp_range = [{{ start = "{r["start"]}", end = "{r["end"]}" }}]\n'
        f'      dhcp_host  = [{{ mac = "{h["mac"]}", ip = "{h["ip"]}", name = "{h["name"]}" }}]\n'
        f"    }}\n"
        f"  }}\n"
        f"}}\n"
    )


def terraform_config(directory: str | os.PathLike, n: int, per_file: int = PER_FILE) -> list[Path]:
    """Write N ``terraform_data`` resources with the same fields as ``*.tf`` files."""
    return _write_chunks(Path(directory), n, per_file, _tf_block, "networks-", "tf")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("directory")
    p.add_argument("n", type=int)
    p.add_argument("--state", help="also seed a state file holding the same N")
    p.add_argument("--per-file", type=int, default=PER_FILE)
    p.add_argument("--terraform", action="store_true", help="write terraform_data *.tf instead")
    args = p.parse_args(argv)
    if args.terraform:
        files = terraform_config(args.directory, args.n, args.per_file)
    else:
        files = write_config(args.directory, args.n, args.per_file)
    print(f"wrote {args.n} resources in {len(files)} files to {args.directory}")
    if args.state:
        seed_state(args.state, args.n)
        print(f"seeded {args.state} with {args.n} instances")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
