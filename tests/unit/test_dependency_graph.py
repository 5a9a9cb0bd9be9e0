"""engine/graph.py's DependencyGraph against networkx as the oracle: the same
creation order (networkx's lexicographical_topological_sort), the same ancestors
and descendants, the same cycles reported."""
from __future__ import annotations

import random

import networkx as nx
import pytest

from kvmnet.engine.graph import DependencyGraph, find_cycles, topological_order


def _pair(nodes: list[str], edges: list[tuple[str, str]]):
    g = DependencyGraph()
    ng: nx.DiGraph[str] = nx.DiGraph()
    g.add_nodes_from(nodes)
    ng.add_nodes_from(nodes)
    for u, v in edges:
        g.add_edge(u, v)
        ng.add_edge(u, v)
    return g, ng


def _random_dag(rng: random.Random, n: int, p: float):
    nodes = [f"bridge.b{rng.randrange(1000):03d}_{i}" for i in range(n)]
    rng.shuffle(nodes)
    edges = [(nodes[i], nodes[j]) for i in range(n) for j in range(i + 1, n) if rng.random() < p]
    rng.shuffle(nodes)          # insertion order is not the topological order
    return nodes, edges


@pytest.mark.parametrize("seed", range(30))
def test_order_and_reach_match_networkx(seed):
    rng = random.Random(seed)
    nodes, edges = _random_dag(rng, rng.randrange(1, 40), rng.choice([0.05, 0.2, 0.5]))
    g, ng = _pair(nodes, edges)
    assert topological_order(g) == list(nx.lexicographical_topological_sort(ng))
    assert find_cycles(g) == []
    for n in nodes:
        assert g.ancestors(n) == nx.ancestors(ng, n)
        assert g.descendants(n) == nx.descendants(ng, n)
        assert sorted(g.predecessors(n)) == sorted(ng.predecessors(n))
        assert sorted(g.successors(n)) == sorted(ng.successors(n))
    assert sorted(g.edges) == sorted(ng.edges) and sorted(g.nodes) == sorted(ng.nodes)
    assert all(g.has_edge(u, v) for u, v in edges) and len(g) == len(nodes)


def test_a_cycle_is_found_with_every_address_in_it():
    g, _ = _pair(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])
    assert len(topological_order(g)) < len(g)
    (cycle,) = find_cycles(g)
    assert sorted(cycle) == ["a", "b", "c"]


def test_a_self_reference_is_a_cycle():
    g, _ = _pair(["a", "b"], [("a", "a"), ("a", "b")])
    assert find_cycles(g) == [["a"]]


def test_two_cycles_are_two_reports():
    g, _ = _pair(["a", "b", "x", "y", "z"], [("a", "b"), ("b", "a"), ("x", "y"), ("y", "x"), ("b", "z")])
    assert sorted(sorted(c) for c in find_cycles(g)) == [["a", "b"], ["x", "y"]]
