"""Property tests: the Spark path engine against networkx ``all_shortest_paths``.

Many random graphs (dense, sparse, hub-heavy, disconnected, grids, trees; with parallel edges,
duplicate rows and self-loops) are laid side by side with disjoint node ids and answered by ONE
engine call keyed by pair — the way the engine is meant to be used, and fast enough for CI.
Every pair must get networkx's status, its hop count and exact path count; below the cap the path
set must be identical, above it the sample must have exactly the cap's size and lie inside
networkx's set.
"""

from __future__ import annotations

import random

import networkx as nx
import pytest

from _paths_support import check_against_reference, run_engine
from conftest_spark import spark  # noqa: F401  (session fixture)

LABELS = ("a", "b", "c")


def _family_graphs(rng: random.Random):
    s = rng.randrange(1 << 30)
    yield nx.gnp_random_graph(9, 0.55, seed=s)  # dense: many equal-length paths
    yield nx.gnm_random_graph(40, 48, seed=s)  # sparse, long distances
    hub = nx.barabasi_albert_graph(45, 2, seed=s)  # preferential attachment
    hub.add_edges_from((0, v) for v in range(5, 45, 2))  # plus one big hub
    yield hub
    two = nx.disjoint_union(nx.gnp_random_graph(8, 0.4, seed=s), nx.gnp_random_graph(8, 0.4, seed=s + 1))
    yield two  # disconnected
    yield nx.convert_node_labels_to_integers(nx.grid_2d_graph(4, 4))  # many shortest paths
    yield nx.random_labeled_tree(25, seed=s)  # exactly one path per pair
    yield nx.complete_bipartite_graph(4, 5)


def build_case(seed: int, copies: int):
    """Disjoint random graphs + pairs. Returns nodes, edge rows (src, dst, label), pairs."""
    rng = random.Random(seed)
    nodes: list[int] = []
    edges: list[tuple[int, int, str]] = []
    pairs: list[tuple[str, int, int]] = []
    offset = 0
    graph_nodes: list[list[int]] = []
    for c in range(copies):
        for g_index, g in enumerate(_family_graphs(rng)):
            ids = [offset + v for v in g.nodes]
            isolated = offset + g.number_of_nodes()  # a known node with no edges
            nodes.extend(ids + [isolated])
            for a, b in g.edges:
                a, b = offset + a, offset + b
                if rng.random() < 0.5:
                    a, b = b, a  # orientation must not matter
                label = rng.choice(LABELS)
                edges.append((a, b, label))
                if rng.random() < 0.15:  # parallel edge with another label: a distinct path
                    edges.append((b, a, rng.choice([x for x in LABELS if x != label])))
                if rng.random() < 0.05:  # exact duplicate row: must count once
                    edges.append((a, b, label))
            for v in rng.sample(ids, k=min(3, len(ids))):
                edges.append((v, v, rng.choice(LABELS)))  # self-loops never lie on shortest paths
            name = f"c{c}g{g_index}"
            for k in range(14):
                pairs.append((f"{name}-{k}", rng.choice(ids), rng.choice(ids)))
            pairs.append((f"{name}-iso", rng.choice(ids), isolated))
            pairs.append((f"{name}-same", ids[0], ids[0]))
            pairs.append((f"{name}-unk", ids[1], 10_000_000 + offset))
            pairs.append((f"{name}-unk2", 20_000_000 + offset, ids[1]))
            pairs.append((f"{name}-unkboth", 30_000_000 + offset, 40_000_000 + offset))
            graph_nodes.append(ids)
            offset += g.number_of_nodes() + 1
    for k in range(10):  # across components
        a, b = rng.sample(graph_nodes, 2)
        pairs.append((f"cross-{k}", rng.choice(a), rng.choice(b)))
    return nodes, edges, pairs


@pytest.mark.parametrize(
    "max_hops,max_paths,options",
    [
        (3, 4, {"product_weight": 1.0}),  # broadcast joins; probes and products both chosen
        # Forced shuffle joins, with salting of every node above degree 3.
        (4, 3, {"broadcast_rows": 0, "hub_degree": 3, "salt_buckets": 3, "product_weight": 0.5}),
    ],
    ids=["broadcast", "salted-shuffle"],
)
def test_engine_matches_networkx(spark, max_hops, max_paths, options):  # noqa: F811
    nodes, edges, pairs = build_case(seed=1234 + max_hops, copies=3)
    paths, status, stats = run_engine(
        spark, nodes, edges, pairs, max_hops=max_hops, max_paths=max_paths, seed=7, **options
    )
    seen = check_against_reference(nodes, edges, pairs, paths, status, max_hops, max_paths)
    # The case must actually exercise every branch the comparison is about.
    for st in ("ok", "no_path_within_max_hops", "same_node", "unknown_src", "unknown_dst", "unknown_src_and_dst"):
        assert seen.get(st, 0) > 0, (st, seen)
    capped = sum(1 for v in status.values() if v[0]["status"] == "ok" and v[0]["n_paths_total"] > max_paths)
    assert capped >= 5, "no pair exceeded the cap: the sampling branch was not tested"
    multi = sum(1 for p in paths.values() if len({tuple(r["path_nodes"]) for r in p}) < len(p))
    assert multi >= 1, "no pair had parallel-edge paths"
    assert stats["graph"]["edge_rejects"]["edge_self_loop"] > 0
    assert stats["graph"]["edge_rejects"]["edge_duplicate"] > 0
    last = stats["levels"][-1]
    assert last["product_candidates"] > 0, last
    if options.get("broadcast_rows") == 0:
        assert any(level.get("join") == "salted_shuffle" for level in stats["levels"])
        assert last["product_join"] == "shuffle"
    else:  # here the last level must have used both ways of finding meeting edges
        assert last["product_join"].startswith("broadcast")
        assert last.get("probe_f_units", 0) + last.get("probe_b_units", 0) > 0, last
