"""Path engine behaviour: statuses, rejects, hub sampling, determinism, I/O, engines, rendering."""

from __future__ import annotations

import pyarrow as pa
import pytest

from _paths_support import EDGES_DDL, NODES_DDL, PAIRS_DDL, check_against_reference, path_key, run_engine
from conftest_spark import spark  # noqa: F401  (session fixture)
from medreason_dist.kg.render import render_path

CAP = 5

# A hub case: s - {m1..m40} - {x1..x30} - t. Every m links to every x, so s..t has
# 40 * 30 = 1200 shortest paths of 3 hops; with both "a" and "b" on the s-m1 hop, 1230.
HUB_M = list(range(100, 140))
HUB_X = list(range(200, 230))


def scenario():
    nodes = [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12] + HUB_M + HUB_X
    edges = [
        (1, 2, "indication"),
        (2, 3, "ppi"),
        (2, 3, "target"),  # parallel edge: two distinct 2-hop paths 1-2-3
        (3, 4, "ppi"),
        (1, 5, "ppi"),
        (5, 4, "ppi"),
        (4, 4, "self"),  # self-loop: dropped, counted
        (6, 7, "ppi"),  # separate component
        (7, 6, "ppi"),  # same undirected edge again: duplicate, counted
        (3, 999, "ppi"),  # dangling: 999 is not a node
        (9, 10, None),  # missing label
        (10, 11, "ppi"),
        (11, 12, "ppi"),
        (12, 9, "ppi"),
    ]
    edges += [(10, m, "a") for m in HUB_M] + [(10, HUB_M[0], "b")]
    edges += [(m, x, "c") for m in HUB_M for x in HUB_X]
    edges += [(x, 11, "d") for x in HUB_X]
    # A pair with 5,000 shortest paths (500 middle nodes x 10 right nodes each): counted exactly,
    # max_paths of them built, none enumerated.
    left = list(range(1000, 1500))
    right = list(range(2000, 2500))
    nodes += [3000, 3001] + left + right
    edges += [(3000, m, "a") for m in left] + [(m, r, "b") for m, r in zip(left, right)]
    edges += [(m, right[(i // 10) * 10 + k], "c") for i, m in enumerate(left) for k in range(10) if i % 10 != k]
    edges += [(r, 3001, "d") for r in right]
    pairs = [
        ("big", 3000, 3001),
        ("direct", 1, 2),
        ("parallel", 1, 3),
        ("two-ways", 1, 4),
        ("unreachable", 1, 6),
        ("same", 3, 3),
        ("unknown-src", 50, 1),
        ("unknown-dst", 1, 51),
        ("unknown-both", 50, 51),
        ("isolated", 1, 9),
        ("hub", 10, 11),  # the direct edge wins over the 1200 hub routes
        ("hub2", 10, HUB_X[0]),  # 10-m-x0 for 40 m (m1 twice: two labels) + 10-11-x0 = 42 -> capped
        ("hub3", 12, HUB_M[0]),  # 12-11-x-m0 for 30 x, + 12-11-10-m0 twice (labels a, b) = 32
        ("dup", 1, 2),  # exact duplicate of a row below: counted once
        ("dup", 1, 2),
        ("conflict", 1, 2),
        ("conflict", 1, 3),
        (None, 1, 2),
        ("nullsrc", None, 2),
    ]
    return nodes, edges, pairs


@pytest.fixture(scope="module")
def scenario_runs(spark):  # noqa: F811
    nodes, edges, pairs = scenario()
    # No unknown/None-label rows for networkx; the engine handles them itself.
    runs = {
        "seed0": run_engine(spark, nodes, edges, pairs, max_hops=3, max_paths=CAP, seed=0),
        # Same seed, every join forced through the salted shuffle path: must not change anything.
        "seed0-shuffle": run_engine(
            spark, nodes, edges, pairs, max_hops=3, max_paths=CAP, seed=0, broadcast_rows=0, hub_degree=5,
            salt_buckets=4, product_weight=100.0,
        ),
    }
    return nodes, edges, pairs, runs


def test_statuses_and_counts(scenario_runs):
    _, _, _, runs = scenario_runs
    paths, status, stats = runs["seed0"]

    def one(pid):
        [row] = status[pid]
        return row

    assert one("direct")["status"] == "ok" and one("direct")["hops"] == 1
    assert one("parallel")["n_paths_total"] == 2  # 1-2-3 via ppi and via target
    assert {tuple(r["path_relations"]) for r in paths["parallel"]} == {("indication", "ppi"), ("indication", "target")}
    assert one("two-ways")["n_paths_total"] == 1 and one("two-ways")["hops"] == 2  # 1-5-4; 1-2-3-4 is longer
    assert one("unreachable")["status"] == "no_path_within_max_hops"
    assert one("same")["status"] == "same_node"
    assert one("unknown-src")["status"] == "unknown_src"
    assert one("unknown-dst")["status"] == "unknown_dst"
    assert one("unknown-both")["status"] == "unknown_src_and_dst"
    assert one("isolated")["status"] == "no_path_within_max_hops"  # 9 lost its edge to 10 (no label)
    assert one("hub")["hops"] == 1
    hub2, hub3 = one("hub2"), one("hub3")
    assert (hub2["status"], hub2["hops"], hub2["n_paths_total"], hub2["n_paths_kept"]) == ("ok", 2, 42, CAP)
    assert (hub3["status"], hub3["hops"], hub3["n_paths_total"], hub3["n_paths_kept"]) == ("ok", 3, 32, CAP)
    assert len(paths["hub2"]) == len(paths["hub3"]) == CAP
    assert len(status["dup"]) == 1 and stats["pairs_duplicate_rows"] == 1
    assert {r["status"] for r in status["conflict"]} == {"duplicate_pair_id"} and "conflict" not in paths
    assert status[None][0]["status"] == "invalid_pair"
    assert status["nullsrc"][0]["status"] == "invalid_pair"
    rejects = stats["graph"]["edge_rejects"]
    assert rejects == {"edge_self_loop": 1, "edge_duplicate": 1, "edge_unknown_node": 1, "edge_missing_field": 1}
    assert sum(stats["status_counts"].values()) == sum(len(v) for v in status.values())
    big = one("big")
    assert (big["status"], big["hops"], big["n_paths_total"], big["n_paths_kept"]) == ("ok", 3, 5000, CAP)
    assert len(paths["big"]) == CAP


def test_two_ways_is_exact(scenario_runs):
    """Cross-check the hand-made scenario against networkx too (the clean rows of it)."""
    nodes, edges, pairs, runs = scenario_runs
    paths, status, _ = runs["seed0"]
    node_set = set(nodes)
    clean_edges = [(a, b, r) for a, b, r in edges if r is not None and a in node_set and b in node_set]
    clean_pairs = [p for p in pairs if p[0] not in (None, "nullsrc", "conflict", "dup")]
    check_against_reference(nodes, clean_edges, clean_pairs, paths, status, max_hops=3, max_paths=CAP)


def test_seeded_sample_is_deterministic_and_plan_independent(scenario_runs):
    _, _, _, runs = scenario_runs
    a, sa, _ = runs["seed0"]
    b, sb, stats_b = runs["seed0-shuffle"]
    assert any(level.get("join") == "salted_shuffle" for level in stats_b["levels"])
    def rows(status):
        return {k: sorted(v, key=lambda r: (r["src"] or 0, r["dst"] or 0)) for k, v in status.items()}

    assert rows(sa) == rows(sb)
    assert {k: sorted(map(path_key, v)) for k, v in a.items()} == {k: sorted(map(path_key, v)) for k, v in b.items()}


def test_rank_sample_depends_on_seed_and_pair_only():
    from medreason_dist.spark.path_sampling import choose_ranks

    a = choose_ranks(0, "q1", 10**12, 50)
    assert len(set(a.tolist())) == 50 and a.min() >= 0 and a.max() < 10**12 and (a == sorted(a)).all()
    assert (a == choose_ranks(0, "q1", 10**12, 50)).all()
    assert (a != choose_ranks(1, "q1", 10**12, 50)).any()
    assert (a != choose_ranks(0, "q2", 10**12, 50)).any()
    assert choose_ranks(5, "q1", 7, 50).tolist() == list(range(7))  # under the cap: every path
    assert sorted(choose_ranks(5, "q1", 51, 50).tolist()) == sorted(set(choose_ranks(5, "q1", 51, 50).tolist()))


def test_dataset_roundtrip_and_manifest(spark, tmp_path):  # noqa: F811
    from medreason_dist import storage
    from medreason_dist.spark.paths import pair_status_uri, run_paths

    nodes, edges, pairs = scenario()
    nodes_uri, edges_uri, pairs_uri = (storage.check_uri(str(tmp_path / n)) for n in ("nodes", "edges", "pairs"))
    storage.write_table(nodes_uri, pa.table({"node_id": pa.array(nodes, pa.int64())}), stage="t")
    storage.write_table(
        edges_uri,
        pa.table(
            {
                "src": pa.array([e[0] for e in edges], pa.int64()),
                "dst": pa.array([e[1] for e in edges], pa.int64()),
                "relation": pa.array([e[2] for e in edges], pa.string()),
                "display_relation": pa.array([e[2] for e in edges], pa.string()),
            }
        ),
        stage="t",
    )
    storage.write_table(
        pairs_uri,
        pa.table(
            {
                "pair_id": pa.array([p[0] for p in pairs], pa.string()),
                "src": pa.array([p[1] for p in pairs], pa.int64()),
                "dst": pa.array([p[2] for p in pairs], pa.int64()),
            }
        ),
        stage="t",
    )
    out = storage.check_uri(str(tmp_path / "paths"))
    summary = run_paths(spark, nodes_uri, edges_uri, pairs_uri, out, max_hops=3, max_paths=CAP, seed=0)
    manifest = storage.read_manifest(out)
    counts = manifest.extra["status_counts"]
    assert counts["unknown_src"] == 1 and counts["same_node"] == 1 and counts["no_path_within_max_hops"] == 2
    assert manifest.rejects["edge_self_loop"] == 1 and manifest.rejects["pairs_invalid_pair"] == 2
    table = storage.read_table(out)
    assert table.schema.field("hops").type == pa.int32()
    assert table.schema.field("path_nodes").type == pa.list_(pa.int64())
    assert table.schema.field("path_relations").type == pa.list_(pa.string())
    status = storage.read_table(pair_status_uri(out))
    assert status.num_rows == summary["pairs"] == sum(counts.values())
    assert table.num_rows == summary["paths"] == sum(status.column("n_paths_kept").to_pylist())
    ids = table.column("pair_id").to_pylist()
    assert ids == sorted(ids)


def test_graphframes_engine_without_jar_names_the_package(spark):  # noqa: F811
    from medreason_dist.spark.graphframes_engine import GraphFramesUnavailableError, graphframes_missing_reason
    from medreason_dist.spark.paths import make_engine

    if graphframes_missing_reason(spark) is None:
        pytest.skip("GraphFrames is on the classpath here; the missing-jar error cannot be provoked")
    with pytest.raises(GraphFramesUnavailableError, match=r"io\.graphframes:graphframes-spark4_2\.13:.*spark\.jars\.packages"):
        make_engine(spark, "graphframes")


@pytest.mark.graphframes
def test_graphframes_engine_matches_dataframe_engine(spark, scenario_runs):  # noqa: F811
    from medreason_dist.spark.graphframes_engine import graphframes_missing_reason
    from medreason_dist.spark.paths import make_engine

    reason = graphframes_missing_reason(spark)
    if reason is not None:
        pytest.skip(f"GraphFrames JVM package unavailable (cannot be downloaded on this machine): {reason}")
    nodes, edges, pairs, runs = scenario_runs
    engine = make_engine(spark, "graphframes", max_hops=3, max_paths=CAP, seed=0)
    result = engine.run(
        spark.createDataFrame([(n, f"n{n}") for n in nodes], NODES_DDL),
        spark.createDataFrame([(a, b, r, r) for a, b, r in edges], EDGES_DDL),
        spark.createDataFrame(pairs, PAIRS_DDL),
    )
    want_paths, want_status, _ = runs["seed0"]
    got = {}
    for row in result.paths.collect():
        got.setdefault(row["pair_id"], []).append(path_key(row))
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(map(path_key, v)) for k, v in want_paths.items()}
    assert result.stats["prefilter"]["units_in_different_components"] >= 2


def test_engine_rejects_bad_options(spark):  # noqa: F811
    from medreason_dist.spark.paths import PathEngine, make_engine

    with pytest.raises(ValueError):
        PathEngine(spark, max_hops=0)
    with pytest.raises(ValueError):
        PathEngine(spark, max_paths=0)
    with pytest.raises(ValueError, match="unknown path engine"):
        make_engine(spark, "networkx")


def test_render_path():
    assert (
        render_path(["metformin", "type 2 diabetes", "insulin resistance"], ["indication", "phenotype present"])
        == "metformin -[indication]-> type 2 diabetes -[phenotype present]-> insulin resistance"
    )
    assert render_path(["aspirin"], []) == "aspirin"
    with pytest.raises(ValueError):
        render_path(["a", "b"], [])


def test_run_paths_on_s3_stages_through_pyarrow_without_connector(spark, s3_bucket, caplog):  # noqa: F811
    """Loopback S3 (moto): this pyspark has no hadoop-aws, so I/O is staged via pyarrow, loudly."""
    import logging

    from medreason_dist import storage
    from medreason_dist.spark.io import spark_native
    from medreason_dist.spark.paths import pair_status_uri, run_paths

    bucket, options = s3_bucket
    base = f"s3://{bucket}/kg"
    if spark_native(spark, base):
        pytest.skip("the S3A connector is on this classpath; the staging path is not used")
    nodes, edges, pairs = scenario()
    edges = [e for e in edges if e[2] is not None]
    storage.write_table(f"{base}/nodes", pa.table({"node_id": pa.array(nodes, pa.int64())}), stage="t", options=options)
    storage.write_table(
        f"{base}/edges",
        pa.table({
            "src": pa.array([e[0] for e in edges], pa.int64()),
            "dst": pa.array([e[1] for e in edges], pa.int64()),
            "relation": pa.array([e[2] for e in edges]),
            "display_relation": pa.array([e[2] for e in edges]),
        }),
        stage="t",
        options=options,
    )
    good = [p for p in pairs if p[0] and p[1] is not None]
    storage.write_table(
        f"{base}/pairs",
        pa.table({"pair_id": [p[0] for p in good], "src": pa.array([p[1] for p in good], pa.int64()),
                  "dst": pa.array([p[2] for p in good], pa.int64())}),
        stage="t",
        options=options,
    )
    with caplog.at_level(logging.WARNING, logger="medreason_dist.spark.io"):
        summary = run_paths(spark, f"{base}/nodes", f"{base}/edges", f"{base}/pairs", f"{base}/paths",
                            max_paths=CAP, options=options)
    assert any("Staging through pyarrow" in r.getMessage() for r in caplog.records)
    manifest = storage.read_manifest(f"{base}/paths", options)
    assert manifest.rows == summary["paths"] > 0
    status = storage.read_table(pair_status_uri(f"{base}/paths"), options=options).to_pylist()
    assert {r["pair_id"]: r["status"] for r in status}["hub2"] == "ok"
