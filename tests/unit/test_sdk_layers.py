"""The engine knows no resource type and no provider: no identifier or string
literal in engine/ names a built-in type or provider. Prose (docstrings,
comments) may use them as examples; code may not.

The scan is checked against provider modules, where these names must be found,
so it cannot pass by finding nothing.
"""
from __future__ import annotations

import ast
import ipaddress
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BUILT_IN = ("network", "bridge", "vlan", "nic_attachment", "port_forward", "sysctl_profile",
            "libvirt", "iproute", "netplan", "nftables", "iptables", "sysctl")
# a built-in name as a whole word or as parts of a snake_case name (check_network_names)
_WORD = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(BUILT_IN) + r")s?(?![A-Za-z0-9])")
# words that contain a built-in name but name none: the kernel's "network namespace"
# (in messages about a netns) and systemd's network-online.target (in unit files)
_NOT_A_TYPE = re.compile(r"network(?: namespaces?|-online\.target)")
# the standard library's IP-network API (cidrsubnet's net.network_address) is no resource type
_IPADDRESS_API = set(dir(ipaddress)) | set(dir(ipaddress.ip_network("10.0.0.0/8")))


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword) and node.arg:
        return [node.arg]
    if isinstance(node, ast.alias):
        return [node.name, node.asname or ""]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module]
    return []


def code_mentions(path: Path, source: str | None = None) -> list[str]:
    """``FILE:LINE: text`` of each identifier or string literal (docstrings
    aside) naming a built-in type or provider."""
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source, str(path))
    docs = _docstrings(tree)
    out = []
    for node in ast.walk(tree):
        texts = [n for n in _names(node) if n not in _IPADDRESS_API]
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            texts.append(node.value)
        for text in texts:
            words = _NOT_A_TYPE.sub("", text)
            if _WORD.search(words.replace("_", " ")) or _WORD.search(words):
                out.append(f"{path}:{getattr(node, 'lineno', '?')}: {text!r}")
    return out


def test_the_engine_names_no_built_in_type_or_provider():
    found = [m for p in sorted((ROOT / "engine").rglob("*.py")) for m in code_mentions(p)]
    assert found == []


def test_the_scan_finds_built_in_names_where_they_belong():
    """Each built-in name is found in the provider modules that define it, as an
    identifier (links_types.BRIDGE) or a string ("port_forward")."""
    found = "\n".join(m for p in sorted((ROOT / "providers").rglob("*.py")) for m in code_mentions(p))
    for word in BUILT_IN:
        assert re.search(rf"(?<![a-z]){word}", found), word


def test_the_scan_sees_code_not_prose():
    source = ('"""About a network."""\n# a bridge\nX = 1\n\n'
              'def f(checks_vlan):\n    """The vlan."""\n    return use_libvirt(k="nic_attachment", ip_network=2)\n')
    texts = sorted(m.split(": ", 1)[1] for m in code_mentions(Path("sample.py"), source))
    assert texts == ["'checks_vlan'", "'nic_attachment'", "'use_libvirt'"]


def test_the_scan_passes_words_that_name_no_type():
    source = ('A = "not a network namespace"\nB = "After=network-online.target"\n'
              'C = "network namespace of network.lab"\n')
    texts = [m.split(": ", 1)[1] for m in code_mentions(Path("sample.py"), source)]
    assert texts == ["'network namespace of network.lab'"]
