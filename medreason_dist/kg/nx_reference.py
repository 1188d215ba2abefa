"""The reference method: networkx ``all_shortest_paths``, one pair at a time (MedReason's way).

Used by the property tests and the benchmark to check the Spark engine. Semantics match the
engine's (``medreason_dist.spark.paths``): the graph is a multigraph whose edges are identified
by (unordered endpoints, label); a node path with parallel edges on a hop expands into one path
per label combination; self-loops are ignored; ``src == dst`` is ``same_node``.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Iterable

import networkx as nx

PathKey = tuple[tuple[int, ...], tuple[str, ...]]


class ReferenceGraph:
    def __init__(self, node_ids: Iterable[int], edges: Iterable[tuple[int, int, str]]) -> None:
        self.graph = nx.Graph()
        self.graph.add_nodes_from(int(n) for n in node_ids)
        labels: dict[tuple[int, int], set[str]] = defaultdict(set)
        for a, b, label in edges:
            if a is None or b is None or label is None or a == b:
                continue
            if a not in self.graph or b not in self.graph:
                continue  # the engine drops edges to unknown nodes too
            key = (a, b) if a <= b else (b, a)
            labels[key].add(label)
        self.graph.add_edges_from(labels)
        self.labels = {k: sorted(v) for k, v in labels.items()}

    def hop_labels(self, a: int, b: int) -> list[str]:
        return self.labels[(a, b) if a <= b else (b, a)]

    def expand(self, node_path: list[int]) -> list[PathKey]:
        """All (nodes, relations) paths along one node path (one per parallel-edge choice)."""
        per_hop = [self.hop_labels(a, b) for a, b in zip(node_path, node_path[1:])]
        return [(tuple(node_path), combo) for combo in itertools.product(*per_hop)]

    def shortest_paths(self, src: int, dst: int, max_hops: int) -> tuple[str, int | None, list[PathKey]]:
        """``(status, hops, paths)`` with every shortest path (no cap), like the engine's statuses."""
        src_known = src in self.graph
        dst_known = dst in self.graph
        if not src_known and not dst_known:
            return "unknown_src_and_dst", None, []
        if not src_known:
            return "unknown_src", None, []
        if not dst_known:
            return "unknown_dst", None, []
        if src == dst:
            return "same_node", None, []
        try:
            node_paths = list(nx.all_shortest_paths(self.graph, src, dst))
        except nx.NetworkXNoPath:
            return "no_path_within_max_hops", None, []
        hops = len(node_paths[0]) - 1
        if hops > max_hops:
            return "no_path_within_max_hops", None, []
        out: list[PathKey] = []
        for p in node_paths:
            out.extend(self.expand(p))
        return "ok", hops, out
