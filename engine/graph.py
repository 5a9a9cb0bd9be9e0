"""Resources + references → a dependency graph (networkx DiGraph).

Nodes are resource addresses (``network.lab``); an edge ``A → B`` means B depends
on A (B refers to A, or names it in ``depends_on``), so a topological order is the
order of creation and its reverse the order of deletion. A literal name
(``network = "default"``) is not an edge. Locals are looked through: a resource that
uses ``local.x`` depends on whatever ``local.x`` refers to.
"""
from __future__ import annotations

from typing import Any

from kvmnet.engine.config.evaluate import attr_references
from kvmnet.engine.config.model import Config
from kvmnet.engine.expr import ExprError   # here, not per call: ≈1 µs × 90,000 attributes
from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.engine.expr.reference import Reference
from kvmnet.engine.resources import TYPES


def _local_resource_refs(config: Config, name: str, memo: dict, busy: set) -> set[str]:
    if name in memo:
        return memo[name]
    if name in busy or name not in config.locals:
        return set()
    busy.add(name)
    out: set[str] = set()
    decl = config.locals[name]
    for ref in _references(decl.value, Diagnostics(), decl.file, f"local.{name}"):
        p = ref.parts
        if len(p) >= 2 and p[0] in TYPES:
            out.add(f"{p[0]}.{p[1]}")
        elif len(p) >= 2 and p[0] == "local" and isinstance(p[1], str):
            out |= _local_resource_refs(config, p[1], memo, busy)
    busy.discard(name)
    memo[name] = out
    return out


def _block_attrs(block):
    """Every attribute of a block body, nested blocks included."""
    yield from block.attrs.values()
    for b in block.blocks:
        yield from _block_attrs(b)


def _references(attr, diags: Diagnostics, file: str, address: str) -> list:
    """The references of one attribute; an expression that does not compile (an
    unknown function, a syntax error inside ``${}``) is a diagnostic at its line."""
    try:
        return attr_references(attr)
    except ExprError as e:
        diags.add(str(e), file=file, line=attr.line, address=address, attribute=attr.name)
        return []


def build_graph(config: Config, diags: Diagnostics):
    """The resource dependency graph; undeclared references and cycles → diagnostics."""
    import networkx as nx

    g: nx.DiGraph[str] = nx.DiGraph()
    g.add_nodes_from(config.resources)
    memo: dict[str, set[str]] = {}
    for addr, r in config.resources.items():
        attrs: list[tuple[Any, Reference]] = []
        for a in [*_block_attrs(r.body), r.count, r.for_each]:
            if a is not None:
                attrs.extend((a, ref) for ref in _references(a, diags, r.file, addr))
        for a, ref in attrs:
            p = ref.parts
            if not p:
                continue
            root = p[0]
            if root in TYPES:
                if len(p) < 2 or not isinstance(p[1], str):
                    diags.add(f"reference {ref.text!r} needs a resource name ({root}.NAME)",
                              file=r.file, line=a.line, address=addr)
                    continue
                target = f"{root}.{p[1]}"
                if target not in config.resources:
                    diags.add(f'reference to undeclared resource "{target}"', file=r.file,
                              line=a.line, address=addr)
                    continue
                g.add_edge(target, addr)
            elif root == "local" and len(p) >= 2 and isinstance(p[1], str):
                for target in _local_resource_refs(config, p[1], memo, set()):
                    if target in config.resources:
                        g.add_edge(target, addr)
        if r.depends_on is not None and isinstance(r.depends_on.value, list):
            for item in r.depends_on.value:
                text = str(item)
                if text.startswith("${") and text.endswith("}"):
                    text = text[2:-1].strip()
                parts = text.split(".")
                if len(parts) >= 2 and parts[0] in TYPES:
                    target = f"{parts[0]}.{parts[1].split('[')[0]}"
                    if target not in config.resources:
                        diags.add(f'depends_on refers to undeclared resource "{target}"',
                                  file=r.file, line=r.depends_on.line, address=addr,
                                  attribute="depends_on")
                    else:
                        g.add_edge(target, addr)
    for cycle in find_cycles(g):
        first = config.resources[cycle[0]]
        diags.add("dependency cycle: " + " -> ".join(cycle + [cycle[0]]),
                  file=first.file, line=first.line, address=cycle[0])
    return g


def find_cycles(g) -> list[list[str]]:
    """One cycle per strongly connected component that has one, every address in it."""
    import networkx as nx

    out = []
    for comp in nx.strongly_connected_components(g):
        if len(comp) > 1 or any(g.has_edge(n, n) for n in comp):
            sub = g.subgraph(comp)
            try:
                edges = nx.find_cycle(sub)
                cycle = [u for u, _v in edges]
            except nx.NetworkXNoCycle:  # pragma: no cover
                cycle = sorted(comp)
            missing = sorted(set(comp) - set(cycle))
            out.append(cycle + missing)
    return out


def topological_order(g) -> list[str]:
    """Creation order; ties broken by address so plans are stable."""
    import networkx as nx
    return list(nx.lexicographical_topological_sort(g))


def render_dot(g, instances: dict[str, list[str]] | None = None) -> str:
    lines = ["digraph kvmnet {", "  rankdir = LR;", '  node [shape = box];']
    for n in sorted(g.nodes):
        lines.append(f'  "{n}";')
    for u, v in sorted(g.edges):
        lines.append(f'  "{v}" -> "{u}";')   # arrows point at what a resource depends on
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_mermaid(g) -> str:
    ids = {n: f"n{i}" for i, n in enumerate(sorted(g.nodes))}
    lines = ["graph LR"]
    for n, i in ids.items():
        lines.append(f'  {i}["{n}"]')
    for u, v in sorted(g.edges):
        lines.append(f"  {ids[v]} --> {ids[u]}")
    return "\n".join(lines) + "\n"
