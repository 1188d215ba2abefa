"""The path engine: validates options and runs the phases in order, timing each."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medreason_dist.spark.paths.assemble import assemble_paths, pair_status_table
from medreason_dist.spark.paths.contract import MAX_SUPPORTED_HOPS
from medreason_dist.spark.paths.frames import keep
from medreason_dist.spark.paths.frontier import JoinTuning, search
from medreason_dist.spark.paths.graph import Graph, classify_pairs, prepare_graph, search_units

# Drops search units ``(s, t, pid)`` that cannot have a path before the search starts; returns
# the units kept and diagnostics for ``stats["prefilter"]`` (the ``graphframes`` engine's
# connected-components check is one).
UnitFilter = Callable[[DataFrame, Graph], tuple[DataFrame, dict[str, int]]]


@dataclass
class PathResult:
    paths: DataFrame  # PATHS_SCHEMA
    pair_status: DataFrame  # STATUS_SCHEMA
    stats: dict[str, Any] = field(default_factory=dict)


class PathEngine:
    """Batched bidirectional shortest-path search keyed by pair.

    ``name`` and ``unit_filter`` distinguish engine variants (see ``make_engine``); the other
    options are the documented search options and join tuning.
    """

    def __init__(
        self,
        spark: SparkSession,
        *,
        max_hops: int = 3,
        max_paths: int = 50,
        seed: int = 0,
        relation_column: str = "relation",
        broadcast_rows: int = 2_000_000,
        hub_degree: int = 1_000,
        salt_buckets: int = 8,
        product_weight: float = 8.0,
        max_product_chunks: int = 16,
        name: str = "dataframe",
        unit_filter: UnitFilter | None = None,
    ) -> None:
        if not 1 <= int(max_hops) <= MAX_SUPPORTED_HOPS:
            raise ValueError(f"max_hops must be in 1..{MAX_SUPPORTED_HOPS}, got {max_hops}")
        if int(max_paths) < 1:
            raise ValueError(f"max_paths must be >= 1, got {max_paths}")
        if relation_column not in ("relation", "display_relation"):
            raise ValueError(f"relation_column must be 'relation' or 'display_relation', got {relation_column!r}")
        self.spark = spark
        self.name = name
        self.max_hops = int(max_hops)
        self.max_paths = int(max_paths)
        self.seed = int(seed)
        self.relation_column = relation_column
        self.tuning = JoinTuning(
            broadcast_rows=int(broadcast_rows),
            hub_degree=int(hub_degree),
            salt_buckets=max(1, int(salt_buckets)),
            product_weight=float(product_weight),
            max_product_chunks=int(max_product_chunks),
        )
        self.unit_filter = unit_filter
        self.prefilter: dict[str, int] = {}  # the unit filter's diagnostics of the last run
        self._cached: list[DataFrame] = []  # columnar caches to unpersist in release()

    def release(self) -> None:
        """Free the cached adjacency; checkpointed intermediates go with Spark's cleaner."""
        for df in self._cached:
            df.unpersist()
        self._cached.clear()

    def run(self, nodes: DataFrame, edges: DataFrame, pairs: DataFrame) -> PathResult:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        graph = prepare_graph(
            self.spark, nodes, edges, relation_column=self.relation_column, hub_degree=self.tuning.hub_degree
        )
        self._cached.append(graph.adj)
        timings["prepare_graph_s"] = time.perf_counter() - t0

        t1 = time.perf_counter()
        classified, pair_counts = classify_pairs(pairs, graph)
        units = search_units(classified)
        if self.unit_filter is not None:
            filtered, self.prefilter = self.unit_filter(units, graph)
        else:
            filtered = units
        searchable = keep(filtered)
        timings["classify_pairs_s"] = time.perf_counter() - t1

        t2 = time.perf_counter()
        found = search(self.spark, searchable, graph, max_hops=self.max_hops, tuning=self.tuning)
        timings["search_s"] = time.perf_counter() - t2

        t3 = time.perf_counter()
        # Back from units to pair_ids: every pair_id of a (src, dst) shares its unit's answer.
        active_pairs = classified.where(F.col("status").isNull()).join(
            units, (F.col("src") == F.col("s")) & (F.col("dst") == F.col("t"))
        )
        met_pairs = keep(
            active_pairs.join(found.met, "pid").select("pair_id", "pid", "s", "t", "hops", "kf", "kb", "n_paths")
        )
        paths = keep(
            assemble_paths(met_pairs, found.meet_edges, found.dags, graph, seed=self.seed, max_paths=self.max_paths)
        )
        timings["materialize_s"] = time.perf_counter() - t3

        status_df = keep(pair_status_table(classified, active_pairs, found.met, max_paths=self.max_paths))
        status_counts: dict[str, int] = {}
        n_paths_out = 0
        met_by_hops: dict[str, int] = {}
        for r in status_df.groupBy("status", "hops").agg(
            F.count(F.lit(1)).alias("pairs"), F.sum("n_paths_kept").alias("kept")
        ).collect():
            status_counts[r["status"]] = status_counts.get(r["status"], 0) + int(r["pairs"])
            n_paths_out += int(r["kept"] or 0)
            if r["hops"] is not None:
                met_by_hops[str(r["hops"])] = int(r["pairs"])
        timings["total_s"] = time.perf_counter() - t0
        stats: dict[str, Any] = {
            "engine": self.name,
            "max_hops": self.max_hops,
            "max_paths": self.max_paths,
            "seed": self.seed,
            "relation_column": self.relation_column,
            "graph": graph.stats,
            **pair_counts,
            "status_counts": status_counts,
            "ok_pairs_by_hops": met_by_hops,
            "paths": int(n_paths_out),
            "levels": found.levels,
            "timings": {k: round(v, 3) for k, v in timings.items()},
        }
        if self.prefilter:
            stats["prefilter"] = self.prefilter
        return PathResult(paths=paths, pair_status=status_df, stats=stats)
