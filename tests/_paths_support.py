"""Helpers for the path-engine tests: run the engine on in-memory rows, compare with networkx."""

from __future__ import annotations

from collections import defaultdict

from medreason_dist.kg.nx_reference import ReferenceGraph
from medreason_dist.spark.paths import PathEngine

NODES_DDL = "node_id long, name string"
EDGES_DDL = "src long, dst long, relation string, display_relation string"
PAIRS_DDL = "pair_id string, src long, dst long"


def run_engine(spark, nodes, edges, pairs, **options):
    """nodes: ids; edges: (src, dst, relation); pairs: (pair_id, src, dst). Returns plain Python."""
    engine = PathEngine(spark, **options)
    result = engine.run(
        spark.createDataFrame([(int(n), f"n{n}") for n in nodes], NODES_DDL),
        spark.createDataFrame([(a, b, r, r) for a, b, r in edges], EDGES_DDL),
        spark.createDataFrame(list(pairs), PAIRS_DDL),
    )
    paths = defaultdict(list)
    for row in result.paths.collect():
        paths[row["pair_id"]].append(row)
    status = {}
    for row in result.pair_status.collect():
        status.setdefault(row["pair_id"], []).append(row.asDict())
    engine.release()
    return dict(paths), status, result.stats


def path_key(row):
    return tuple(row["path_nodes"]), tuple(row["path_relations"])


def check_against_reference(nodes, edges, pairs, paths, status, max_hops, max_paths):
    """Assert the engine's answer for every pair matches networkx; returns per-status counts."""
    ref = ReferenceGraph(nodes, edges)
    seen = defaultdict(int)
    for pair_id, src, dst in pairs:
        [st] = status[pair_id]
        want_status, want_hops, want_paths = ref.shortest_paths(src, dst, max_hops)
        got = paths.get(pair_id, [])
        assert st["status"] == want_status, (pair_id, src, dst, st, want_status)
        seen[want_status] += 1
        if want_status != "ok":
            assert got == [], (pair_id, got)
            assert st["n_paths_kept"] == 0
            continue
        assert st["hops"] == want_hops, (pair_id, st, want_hops)
        assert st["n_paths_total"] == len(want_paths), (pair_id, st["n_paths_total"], len(want_paths))
        keys = [path_key(r) for r in got]
        assert len(keys) == len(set(keys)), f"duplicate paths for {pair_id}"
        for r in got:
            assert r["hops"] == want_hops
            assert len(r["path_nodes"]) == want_hops + 1 and len(r["path_relations"]) == want_hops
            assert r["path_nodes"][0] == src and r["path_nodes"][-1] == dst
        if len(want_paths) <= max_paths:
            assert set(keys) == set(want_paths), (pair_id, sorted(keys), sorted(want_paths))
        else:
            assert len(keys) == max_paths, (pair_id, len(keys))
            assert set(keys) <= set(want_paths), (pair_id, set(keys) - set(want_paths))
        assert st["n_paths_kept"] == len(keys)
    return dict(seen)
