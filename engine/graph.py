"""Resources + references → a dependency graph (:class:`DependencyGraph`).

Nodes are resource addresses (``network.lab``); an edge ``A → B`` means B depends
on A (B refers to A, or names it in ``depends_on``), so a topological order is the
order of creation and its reverse the order of deletion. A literal name
(``network = "default"``) is not an edge. Locals are looked through: a resource that
uses ``local.x`` depends on whatever ``local.x`` refers to; so are a module's inputs
and outputs (nodes are full addresses, ``module.kvm01.network.lab``).
"""
from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Any

from kvmnet.engine.config.evaluate import attr_references, error_line
from kvmnet.engine.config.model import Config
from kvmnet.engine.expr import ExprError   # here, not per call: ≈1 µs × 90,000 attributes
from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.engine.expr.reference import Reference
from kvmnet.engine.resources import TYPES


class DependencyGraph:
    """Resource addresses and the edges ``A → B`` (B depends on A), with the few
    operations kvmnet needs, in plain dicts that keep insertion order. networkx is
    not used for it: importing networkx costs ≈0.1 s of CPU, a third of what
    ``kvmnet validate`` may take; it is imported only to describe a cycle."""

    def __init__(self) -> None:
        self._succ: dict[str, dict[str, None]] = {}
        self._pred: dict[str, dict[str, None]] = {}

    def add_node(self, node: str) -> None:
        if node not in self._succ:
            self._succ[node] = {}
            self._pred[node] = {}

    def add_nodes_from(self, nodes: Iterable[str]) -> None:
        for n in nodes:
            self.add_node(n)

    def add_edge(self, u: str, v: str) -> None:
        self.add_node(u)
        self.add_node(v)
        self._succ[u][v] = None
        self._pred[v][u] = None

    def __contains__(self, node: object) -> bool:
        return node in self._succ

    def __iter__(self) -> Iterator[str]:
        return iter(self._succ)

    def __len__(self) -> int:
        return len(self._succ)

    @property
    def nodes(self) -> list[str]:
        return list(self._succ)

    @property
    def edges(self) -> list[tuple[str, str]]:
        return [(u, v) for u, vs in self._succ.items() for v in vs]

    def has_edge(self, u: str, v: str) -> bool:
        return v in self._succ.get(u, ())

    def in_degree(self, node: str) -> int:
        return len(self._pred[node])

    def predecessors(self, node: str) -> Iterator[str]:
        """What ``node`` depends on directly."""
        return iter(self._pred[node])

    def successors(self, node: str) -> Iterator[str]:
        """What depends on ``node`` directly."""
        return iter(self._succ[node])

    def ancestors(self, node: str) -> set[str]:
        """Everything ``node`` depends on, directly or not."""
        return _reach(self._pred, node)

    def descendants(self, node: str) -> set[str]:
        """Everything that depends on ``node``, directly or not."""
        return _reach(self._succ, node)


def _reach(adjacent: dict[str, dict[str, None]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(adjacent[start])
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(adjacent[n])
    seen.discard(start)
    return seen


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
        diags.add(str(e), file=file, line=error_line(e, attr), address=address, attribute=attr.name)
        return []


class _Targets:
    """The resources a reference leads to, in the module it is written in: locals,
    a module's inputs (``var.X`` is the caller's argument) and a module's outputs
    (``module.NAME.OUT``) are looked through."""

    def __init__(self, config: Config, root):
        self.config = config
        self.root = root
        self.memo: dict[tuple[int, int], set[str]] = {}
        self.busy: set[tuple[int, int]] = set()

    def of_attr(self, ev, attr, file: str, address: str) -> set[str]:
        key = (id(ev), id(attr))
        if key in self.memo:
            return self.memo[key]
        if key in self.busy:
            return set()       # a cycle between locals: the evaluator reports it
        self.busy.add(key)
        out: set[str] = set()
        for ref in _references(attr, Diagnostics(), file, address):
            out |= self.of_ref(ev, ref, None)
        self.busy.discard(key)
        self.memo[key] = out
        return out

    def of_ref(self, ev, ref: Reference, report) -> set[str]:
        """``report``: (diags, file, line, address) to report an undeclared resource."""
        p = ref.parts
        if not p:
            return set()
        root = p[0]
        prefix = f"{ev.module_path}." if ev is not None and ev.module_path else ""
        if root in TYPES:
            if len(p) < 2 or not isinstance(p[1], str):
                if report:
                    diags, file, line, addr = report
                    diags.add(f"reference {ref.text!r} needs a resource name ({root}.NAME)",
                              file=file, line=line, address=addr)
                return set()
            target = f"{prefix}{root}.{p[1]}"
            if target not in self.config.resources:
                if report:
                    diags, file, line, addr = report
                    diags.add(f'reference to undeclared resource "{root}.{p[1]}"', file=file,
                              line=line, address=addr)
                return set()
            return {target}
        if len(p) < 2 or not isinstance(p[1], str) or ev is None:
            return set()
        if root == "local":
            decl = ev.config.locals.get(p[1])
            return self.of_attr(ev, decl.value, decl.file, f"local.{p[1]}") if decl else set()
        if root == "var":
            call = getattr(ev, "call", None)
            if call is None or p[1] not in call.inputs:
                return set()
            return self.of_attr(ev.parent, call.inputs[p[1]], call.file, f"module.{call.name}")
        if root == "module":
            out: set[str] = set()
            names = [x for i, x in enumerate(p[2:], 2) if i not in ref.indexes]
            for _key, child in ev.module_calls.get(p[1], (None, []))[1]:
                outs = child.config.outputs
                chosen = [outs[names[0]]] if names and names[0] in outs else list(outs.values())
                for o in chosen:
                    if o.value is not None:
                        out |= self.of_attr(child, o.value, o.file, f"{child.module_path}.output.{o.name}")
            return out
        return set()

    def of_depends_on(self, ev, text: str) -> set[str] | None:
        """A ``depends_on`` entry: a resource, or every resource of a module call."""
        prefix = f"{ev.module_path}." if ev is not None and ev.module_path else ""
        parts = text.split(".")
        if len(parts) >= 2 and parts[0] in TYPES:
            target = f"{prefix}{parts[0]}.{parts[1].split('[')[0]}"
            return {target} if target in self.config.resources else None
        if len(parts) >= 2 and parts[0] == "module" and ev is not None:
            call = parts[1].split("[")[0]
            if call not in ev.module_calls:
                return None
            inside = f"{prefix}module.{call}"
            return {a for a in self.config.resources if a.startswith((inside + ".", inside + "["))}
        return None


def _evaluator_of(root, decl):
    if root is None or not decl.module:
        return root
    return root.module_evaluators.get(decl.module)


def _line(attr) -> int | None:
    return attr.line if attr is not None else None


def _depends_texts(attr) -> list[str]:
    out = []
    for item in attr.value if attr is not None and isinstance(attr.value, list) else []:
        text = str(item)
        if text.startswith("${") and text.endswith("}"):
            text = text[2:-1].strip()
        out.append(text)
    return out


def build_graph(config: Config, diags: Diagnostics, evaluator=None):
    """The resource dependency graph; undeclared references and cycles → diagnostics.
    ``evaluator`` (with its modules expanded) tells which module each resource is
    in; without it every resource is read as the root module's."""
    g = DependencyGraph()
    g.add_nodes_from(config.resources)
    targets = _Targets(config, evaluator)
    for addr, r in config.resources.items():
        ev = _evaluator_of(evaluator, r)
        attrs: list[tuple[Any, Reference]] = []
        checks = [x for c in (*r.preconditions, *r.postconditions) for x in (c.condition, c.error_message)]
        for a in [*_block_attrs(r.body), r.count, r.for_each, r.replace_triggered_by, *checks]:
            if a is not None:
                refs = _references(a, diags, r.file, addr)
                if refs:            # most attributes refer to nothing
                    attrs += [(a, ref) for ref in refs]
        for a, ref in attrs:
            for target in targets.of_ref(ev, ref, (diags, r.file, a.line, addr)):
                g.add_edge(target, addr)
        module_deps = _module_depends_on(evaluator, r, targets, diags) if r.module else []
        for target in module_deps:
            g.add_edge(target, addr)
        for text in _depends_texts(r.depends_on):
            found = targets.of_depends_on(ev, text)
            if found is None:
                if text.split(".")[0] in TYPES or text.startswith("module."):
                    diags.add(f'depends_on refers to undeclared resource "{text}"', file=r.file,
                              line=_line(r.depends_on), address=addr, attribute="depends_on")
                continue
            for target in found:
                g.add_edge(target, addr)
    for cycle in find_cycles(g):
        first = config.resources[cycle[0]]
        diags.add("dependency cycle: " + " -> ".join(cycle + [cycle[0]]),
                  file=first.file, line=first.line, address=cycle[0])
    return g


def _module_depends_on(root, r, targets: _Targets, diags: Diagnostics) -> set[str]:
    """What the ``depends_on`` of the module calls around ``r`` name."""
    out: set[str] = set()
    ev = _evaluator_of(root, r)
    while ev is not None and getattr(ev, "call", None) is not None:
        call, parent = ev.call, ev.parent
        for text in _depends_texts(call.depends_on):
            found = targets.of_depends_on(parent, text)
            if found is None:
                diags.add(f'depends_on refers to undeclared resource "{text}"', file=call.file,
                          line=_line(call.depends_on), address=f"module.{call.name}",
                          attribute="depends_on")
                continue
            out |= found
        ev = parent
    return out


def find_cycles(g: DependencyGraph) -> list[list[str]]:
    """One cycle per strongly connected component that has one, every address in it."""
    if len(topological_order(g)) == len(g):
        return []                       # the usual case: no cycle, and no networkx import
    import networkx as nx

    ng: nx.DiGraph[str] = nx.DiGraph()
    ng.add_nodes_from(g)
    ng.add_edges_from(g.edges)
    out = []
    for comp in nx.strongly_connected_components(ng):
        if len(comp) > 1 or any(ng.has_edge(n, n) for n in comp):
            sub = ng.subgraph(comp)
            try:
                edges = nx.find_cycle(sub)
                cycle = [u for u, _v in edges]
            except nx.NetworkXNoCycle:  # pragma: no cover
                cycle = sorted(comp)
            missing = sorted(set(comp) - set(cycle))
            out.append(cycle + missing)
    return out


def topological_order(g: DependencyGraph) -> list[str]:
    """Creation order; ties broken by address so plans are stable (what networkx's
    lexicographical_topological_sort gives). Of a graph with a cycle, only the
    addresses outside it and before it (so a shorter list tells a cycle)."""
    indegree = {n: g.in_degree(n) for n in g}
    ready = [n for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        n = heapq.heappop(ready)
        order.append(n)
        for child in g.successors(n):
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, child)
    return order


def render_dot(g, instances: dict[str, list[str]] | None = None) -> str:
    lines = ["digraph kvmnet {", "  rankdir = LR;", '  node [shape = box];']
    def q(n: str) -> str:        # module keys hold quotes: module.host["kvm01"].network.lab
        return '"' + n.replace("\\", "\\\\").replace('"', '\\"') + '"'
    for n in sorted(g.nodes):
        lines.append(f'  {q(n)};')
    for u, v in sorted(g.edges):
        lines.append(f'  {q(v)} -> {q(u)};')   # arrows point at what a resource depends on
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_mermaid(g) -> str:
    ids = {n: f"n{i}" for i, n in enumerate(sorted(g.nodes))}
    lines = ["graph LR"]
    for n, i in ids.items():
        lines.append(f'  {i}["{n.replace(chr(34), "#quot;")}"]')
    for u, v in sorted(g.edges):
        lines.append(f"  {ids[v]} --> {ids[u]}")
    return "\n".join(lines) + "\n"
