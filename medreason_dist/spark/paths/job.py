"""The job around the engine: choose an engine, read the three datasets, commit the two outputs."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession

from medreason_dist import storage
from medreason_dist.spark import graphframes_engine
from medreason_dist.spark.io import read_dataset, write_dataset
from medreason_dist.spark.paths.contract import STATUS_DUPLICATE_ID, STATUS_INVALID
from medreason_dist.spark.paths.engine import PathEngine
from medreason_dist.spark.paths.graph import Graph

ENGINES = ("dataframe", "graphframes")


def pair_status_uri(out_uri: str) -> str:
    """Where :func:`run_paths` writes the per-pair statuses: a sibling ``<out>_pair_status``."""
    return storage.check_uri(out_uri).rstrip("/") + "_pair_status"


def _units_in_one_component(units: DataFrame, graph: Graph) -> tuple[DataFrame, dict[str, int]]:
    return graphframes_engine.units_in_one_component(units, graph.node_ids, graph.adj)


def make_engine(spark: SparkSession, engine: str = "dataframe", **options) -> PathEngine:
    """The ``dataframe`` engine, or ``graphframes``: the same search after a components prefilter.

    Lives here rather than in ``engine.py`` so that the search phases never depend on
    ``graphframes_engine``.
    """
    if engine == "dataframe":
        return PathEngine(spark, **options)
    if engine == "graphframes":
        # A missing GraphFrames package is reported before any option error: never a fallback.
        graphframes_engine.require_graphframes(spark)
        return PathEngine(spark, name="graphframes", unit_filter=_units_in_one_component, **options)
    raise ValueError(f"unknown path engine {engine!r}; choose 'dataframe' or 'graphframes'")


def run_paths(
    spark: SparkSession,
    nodes_uri: str,
    edges_uri: str,
    pairs_uri: str,
    out_uri: str,
    *,
    max_hops: int = 3,
    max_paths: int = 50,
    seed: int = 0,
    engine: str = "dataframe",
    options=None,
    config_hash: str = "",
    engine_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read the three datasets, find the paths, write two committed datasets; return a summary.

    Output layout:

    * ``out_uri`` — the paths (``pair_id, hops, path_nodes, path_relations``), sorted by
      ``pair_id`` then path. Its manifest is written last of all, so a present paths manifest
      means the whole job finished. ``manifest.extra`` holds ``status_counts`` (how many pairs
      are ok / unreachable within ``max_hops`` / unknown / ``same_node`` / invalid ...), the run's
      options, graph statistics and timings; ``manifest.rejects`` counts dropped input rows
      (self-loops, duplicate or dangling edges, invalid or conflicting pairs).
    * ``pair_status_uri(out_uri)`` = ``<out_uri>_pair_status`` — one row per distinct input pair:
      ``pair_id, src, dst, status, hops, n_paths_total, n_paths_kept``.

    ``options`` is a ``storage.StorageOptions`` (endpoint override) or None.
    """
    eng = make_engine(spark, engine, max_hops=max_hops, max_paths=max_paths, seed=seed, **(engine_options or {}))
    nodes = read_dataset(spark, nodes_uri, options)
    edges = read_dataset(spark, edges_uri, options)
    pairs = read_dataset(spark, pairs_uri, options)
    result = eng.run(nodes, edges, pairs)
    stats = result.stats
    status_uri = pair_status_uri(out_uri)
    rejects = dict(stats["graph"]["edge_rejects"])
    for status in (STATUS_INVALID, STATUS_DUPLICATE_ID):
        if stats["status_counts"].get(status):
            rejects[f"pairs_{status}"] = stats["status_counts"][status]
    if stats.get("pairs_duplicate_rows"):
        rejects["pairs_duplicate_rows"] = stats["pairs_duplicate_rows"]
    # Statuses first, paths last: a present paths manifest means the whole job finished.
    status_manifest = write_dataset(
        result.pair_status.orderBy("pair_id", "src", "dst"),
        status_uri,
        stage="paths.pair_status",
        config_hash=config_hash,
        extra={"status_counts": stats["status_counts"]},
        options=options,
    )
    extra = {
        "status_counts": stats["status_counts"],
        "pair_status_uri": status_uri,
        "engine": eng.name,
        "max_hops": eng.max_hops,
        "max_paths": eng.max_paths,
        "seed": eng.seed,
        "relation_column": eng.relation_column,
        "inputs": {"nodes": nodes_uri, "edges": edges_uri, "pairs": pairs_uri},
        **{k: stats[k] for k in ("graph", "pairs_in", "ok_pairs_by_hops", "levels", "timings") if k in stats},
    }
    if "prefilter" in stats:
        extra["prefilter"] = stats["prefilter"]
    paths_manifest = write_dataset(
        result.paths.orderBy("pair_id", "path_nodes", "path_relations"),
        out_uri,
        stage="paths",
        config_hash=config_hash,
        rejects=rejects,
        extra=extra,
        options=options,
    )
    eng.release()
    return {
        "out": storage.check_uri(out_uri),
        "pair_status": status_uri,
        "paths": paths_manifest.rows,
        "pairs": status_manifest.rows,
        "status_counts": stats["status_counts"],
        "rejects": rejects,
        "timings": stats["timings"],
    }
