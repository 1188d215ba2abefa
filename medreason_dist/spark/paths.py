"""All shortest KG paths for many (src, dst) pairs at once, over Spark DataFrames.

Contract (other stages rely on it)
----------------------------------
inputs
    ``nodes(node_id int64, ...)``; ``edges(src int64, dst int64, relation, display_relation)``,
    undirected, each edge once; ``pairs(pair_id string, src int64, dst int64)``.
options
    ``max_hops`` (default 3), ``max_paths`` per pair (default 50), ``seed``.
output
    ``paths(pair_id, hops int, path_nodes list<int64>, path_relations list<string>)``: every
    shortest path of the pair when it has at most ``max_paths`` of them, otherwise a seeded,
    deterministic, uniform sample of exactly ``max_paths``; ``path_nodes`` runs from the pair's
    ``src`` to its ``dst``; ``path_relations[i]`` labels the hop ``path_nodes[i] - path_nodes[i+1]``.
    ``pair_status(pair_id, src, dst, status, hops, n_paths_total, n_paths_kept)``: one row per
    distinct input pair row, with one of the :data:`STATUSES`.

Paths are paths of the multigraph: two edges between the same nodes with different labels
(``relation`` by default) give two paths that differ in ``path_relations``. Exact duplicate edges
(same endpoints, same label) count once; self-loops never lie on a shortest path and are dropped.
Both are counted in :attr:`PathResult.stats`.

Algorithm (docs/paths.md has the long form)
-------------------------------------------
* BFS *balls* are keyed by root node, not by pair: ``layers(root, dist, node, sigma, deg)`` where
  ``sigma`` is the number of shortest root->node paths, and ``dag(root, dist, node, prev, rel,
  sigma_prev)`` holds the BFS predecessor edges. A root shared by many pairs (question entities
  recur) is expanded once.
* Pairs advance level by level. At level ``L`` a pair with radii ``(kf, kb)``, ``kf + kb = L-1``,
  looks for *meeting edges* ``(u, v)`` with ``u`` in layer ``kf`` of ``src`` and ``v`` in layer ``kb``
  of ``dst``; they exist iff the distance is ``L``, and the pair then has
  ``sum(sigma_src(u) * sigma_dst(v))`` shortest paths. Each pair picks, from the degree sums of
  its two frontiers, the cheaper way to find them: grow the smaller ball (cost shared by all pairs
  needing that ball; free if another pair already grew it) or, at the last level, join the
  product of the two frontiers against the edge set. Met and hopeless pairs stop expanding.
* Small frontiers are broadcast so the adjacency is scanned, never shuffled; large ones use a
  salted shuffle join in which hub adjacency lists are split into ``salt_buckets`` pieces.
* Paths are counted before any is built. Ranks in ``[0, n)`` are chosen per pair (all, or a
  seeded sample, :mod:`path_sampling`) and *unranked* through the counts: pick the meeting edge
  covering the rank, then walk each half back to its root choosing predecessors by cumulative
  ``sigma``. A pair with millions of shortest paths materialises only ``max_paths`` of them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medreason_dist.spark import path_sampling

log = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_NO_PATH = "no_path_within_max_hops"  # both ends known; distance > max_hops or unreachable
STATUS_UNKNOWN_SRC = "unknown_src"  # src is not a node_id of the nodes dataset
STATUS_UNKNOWN_DST = "unknown_dst"
STATUS_UNKNOWN_BOTH = "unknown_src_and_dst"
STATUS_SAME_NODE = "same_node"  # src == dst (known node): a 0-hop "path" says nothing
STATUS_INVALID = "invalid_pair"  # null pair_id, src or dst
STATUS_DUPLICATE_ID = "duplicate_pair_id"  # one pair_id given with different (src, dst)
STATUSES: tuple[str, ...] = (
    STATUS_OK,
    STATUS_NO_PATH,
    STATUS_UNKNOWN_SRC,
    STATUS_UNKNOWN_DST,
    STATUS_UNKNOWN_BOTH,
    STATUS_SAME_NODE,
    STATUS_INVALID,
    STATUS_DUPLICATE_ID,
)

PATHS_SCHEMA = T.StructType(
    [
        T.StructField("pair_id", T.StringType()),
        T.StructField("hops", T.IntegerType()),
        T.StructField("path_nodes", T.ArrayType(T.LongType())),
        T.StructField("path_relations", T.ArrayType(T.StringType())),
    ]
)
STATUS_SCHEMA = T.StructType(
    [
        T.StructField("pair_id", T.StringType()),
        T.StructField("src", T.LongType()),
        T.StructField("dst", T.LongType()),
        T.StructField("status", T.StringType()),
        T.StructField("hops", T.IntegerType()),
        T.StructField("n_paths_total", T.LongType()),
        T.StructField("n_paths_kept", T.IntegerType()),
    ]
)

MAX_SUPPORTED_HOPS = 8  # path counts are int64; beyond ~8 hops hub graphs could overflow them


@dataclass
class Graph:
    """Prepared graph: node ids, both-direction adjacency with integer relation codes."""

    node_ids: DataFrame  # (node_id)
    adj: DataFrame  # (src, dst, rel), each undirected edge in both directions
    degrees: DataFrame  # (node, deg)
    hubs: DataFrame  # (src, hub=True) for nodes with more than hub_degree adjacency rows
    relations: DataFrame  # (rel int, label string)
    stats: dict[str, Any]


@dataclass
class PathResult:
    paths: DataFrame  # PATHS_SCHEMA
    pair_status: DataFrame  # STATUS_SCHEMA
    stats: dict[str, Any] = field(default_factory=dict)


class PathEngine:
    """Batched bidirectional shortest-path search keyed by pair (the ``dataframe`` engine)."""

    name = "dataframe"

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
    ) -> None:
        if not 1 <= int(max_hops) <= MAX_SUPPORTED_HOPS:
            raise ValueError(f"max_hops must be in 1..{MAX_SUPPORTED_HOPS}, got {max_hops}")
        if int(max_paths) < 1:
            raise ValueError(f"max_paths must be >= 1, got {max_paths}")
        if relation_column not in ("relation", "display_relation"):
            raise ValueError(f"relation_column must be 'relation' or 'display_relation', got {relation_column!r}")
        self.spark = spark
        self.max_hops = int(max_hops)
        self.max_paths = int(max_paths)
        self.seed = int(seed)
        self.relation_column = relation_column
        # Frontiers up to this many rows are broadcast: the adjacency is then streamed, not shuffled.
        self.broadcast_rows = int(broadcast_rows)
        # Nodes with more adjacency rows than this are split over salt_buckets join keys when a
        # frontier is too big to broadcast, so one hub does not land in one task.
        self.hub_degree = int(hub_degree)
        self.salt_buckets = max(1, int(salt_buckets))
        # Relative cost of one frontier-product candidate (materialised, broadcast, hashed) vs one
        # adjacency row streamed through a probe.
        self.product_weight = float(product_weight)
        # Above this many broadcast chunks the product join is a plain shuffle join instead.
        self.max_product_chunks = int(max_product_chunks)
        self._cached: list[DataFrame] = []  # columnar caches to unpersist in release()

    # ------------------------------------------------------------------ helpers

    def _keep(self, df: DataFrame) -> DataFrame:
        """Materialise an intermediate and cut its lineage.

        Iterative plans would otherwise nest every earlier level's plan (planning time and plan
        strings grow without bound); a local checkpoint turns the result into a plain scan.
        """
        return df.localCheckpoint(eager=True)

    def release(self) -> None:
        """Free the cached adjacency; checkpointed intermediates go with Spark's cleaner."""
        for df in self._cached:
            df.unpersist()
        self._cached.clear()

    @staticmethod
    def _union(pieces: list[DataFrame]) -> DataFrame:
        out = pieces[0]
        for p in pieces[1:]:
            out = out.unionByName(p)
        return out

    # ------------------------------------------------------------------ graph

    def prepare_graph(self, nodes: DataFrame, edges: DataFrame) -> Graph:
        """Validate edges, encode labels, build the two-direction adjacency and degrees.

        Two passes over the edges: one aggregation that yields the reject counts and the label
        vocabulary together, one that builds the de-duplicated adjacency (cached, columnar).
        """
        node_ids = self._keep(
            nodes.select(F.col("node_id").cast("long").alias("node_id")).where(F.col("node_id").isNotNull()).distinct()
        )
        n_nodes = node_ids.count()
        label_col = F.col(self.relation_column).cast("string")
        e = edges.select(
            F.col("src").cast("long").alias("src"),
            F.col("dst").cast("long").alias("dst"),
            F.when(F.length(F.trim(label_col)) > 0, label_col).alias("label"),
        )
        e = (
            e.join(node_ids.select(F.col("node_id").alias("src"), F.lit(True).alias("src_known")), "src", "left")
            .join(node_ids.select(F.col("node_id").alias("dst"), F.lit(True).alias("dst_known")), "dst", "left")
        )
        reason = (
            F.when(F.col("src").isNull() | F.col("dst").isNull() | F.col("label").isNull(), "edge_missing_field")
            .when(F.col("src") == F.col("dst"), "edge_self_loop")
            .when(F.col("src_known").isNull() | F.col("dst_known").isNull(), "edge_unknown_node")
        )
        flagged = e.select("src", "dst", "label", reason.alias("reject"))
        rejects: dict[str, int] = {}
        label_set: set[str] = set()
        n_edges_in = 0
        for r in flagged.groupBy("reject", "label").count().collect():
            n_edges_in += int(r["count"])
            if r["reject"] is None:
                label_set.add(r["label"])
            else:
                rejects[r["reject"]] = rejects.get(r["reject"], 0) + int(r["count"])
        labels = sorted(label_set)
        relations = self.spark.createDataFrame(
            [(i, lab) for i, lab in enumerate(labels)],
            T.StructType([T.StructField("rel", T.IntegerType()), T.StructField("label", T.StringType())]),
        )
        # De-duplicate undirected edges (one shuffle), then cache both directions: the only
        # large table the search reads, streamed past broadcast frontiers.
        undirected = (
            flagged.where(F.col("reject").isNull())
            .join(F.broadcast(relations), "label")
            .select(F.least("src", "dst").alias("a"), F.greatest("src", "dst").alias("b"), "rel")
            .dropDuplicates(["a", "b", "rel"])
        )
        directions = F.explode(
            F.array(
                F.struct(F.col("a").alias("src"), F.col("b").alias("dst")),
                F.struct(F.col("b").alias("src"), F.col("a").alias("dst")),
            )
        )
        adj = undirected.select(directions.alias("e"), "rel").select("e.src", "e.dst", "rel").cache()
        self._cached.append(adj)
        n_undirected = adj.count() // 2
        n_clean = n_edges_in - sum(rejects.values())
        if n_clean > n_undirected:
            rejects["edge_duplicate"] = int(n_clean - n_undirected)
        degrees = self._keep(adj.groupBy(F.col("src").alias("node")).agg(F.count(F.lit(1)).alias("deg")))
        # Hubs get their adjacency split over salt buckets in shuffle joins (few rows: broadcast).
        hubs = self._keep(
            degrees.where(F.col("deg") > self.hub_degree).select(F.col("node").alias("src"), F.lit(True).alias("hub"))
        )
        max_deg_row = degrees.agg(F.max("deg").alias("m")).collect()[0]
        stats = {
            "nodes": int(n_nodes),
            "edges_in": n_edges_in,
            "edges_used": int(n_undirected),
            "relations": len(labels),
            "max_degree": int(max_deg_row["m"] or 0),
            "edge_rejects": rejects,
        }
        return Graph(node_ids=node_ids, adj=adj, degrees=degrees, hubs=hubs, relations=relations, stats=stats)

    # ------------------------------------------------------------------ pairs

    def classify_pairs(self, pairs: DataFrame, graph: Graph) -> tuple[DataFrame, dict[str, int]]:
        """Status for every input row; ``status`` is null for pairs that need a search."""
        p = pairs.select(
            F.col("pair_id").cast("string").alias("pair_id"),
            F.col("src").cast("long").alias("src"),
            F.col("dst").cast("long").alias("dst"),
        )
        invalid = F.col("pair_id").isNull() | F.col("src").isNull() | F.col("dst").isNull()
        n_rows = p.count()
        valid = p.where(~invalid).dropDuplicates(["pair_id", "src", "dst"])
        conflicting = (
            valid.groupBy("pair_id").count().where(F.col("count") > 1).select("pair_id", F.lit(True).alias("conflict"))
        )
        known = graph.node_ids.select(F.col("node_id").alias("k"), F.lit(True).alias("known"))
        v = (
            valid.join(conflicting, "pair_id", "left")
            .join(known.withColumnRenamed("known", "src_known"), F.col("src") == F.col("k"), "left")
            .drop("k")
            .join(known.withColumnRenamed("known", "dst_known"), F.col("dst") == F.col("k"), "left")
            .drop("k")
        )
        status = (
            F.when(F.col("conflict").isNotNull(), STATUS_DUPLICATE_ID)
            .when(F.col("src_known").isNull() & F.col("dst_known").isNull(), STATUS_UNKNOWN_BOTH)
            .when(F.col("src_known").isNull(), STATUS_UNKNOWN_SRC)
            .when(F.col("dst_known").isNull(), STATUS_UNKNOWN_DST)
            .when(F.col("src") == F.col("dst"), STATUS_SAME_NODE)
        )
        classified = v.select("pair_id", "src", "dst", status.alias("status")).unionByName(
            p.where(invalid).select("pair_id", "src", "dst", F.lit(STATUS_INVALID).alias("status"))
        )
        classified = self._keep(classified)
        n_distinct = classified.count()
        counts = {"pairs_in": int(n_rows), "pairs_duplicate_rows": int(n_rows - n_distinct)}
        return classified, counts

    def filter_units(self, units: DataFrame, graph: Graph) -> DataFrame:
        """Hook for engines that can rule units out before the search (``graphframes``)."""
        return units

    # ------------------------------------------------------------------ search

    def run(self, nodes: DataFrame, edges: DataFrame, pairs: DataFrame) -> PathResult:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        graph = self.prepare_graph(nodes, edges)
        timings["prepare_graph_s"] = time.perf_counter() - t0

        t1 = time.perf_counter()
        classified, pair_counts = self.classify_pairs(pairs, graph)
        # One search unit per distinct (src, dst): repeated entity pairs are searched once.
        units = self._keep(
            classified.where(F.col("status").isNull())
            .select(F.col("src").alias("s"), F.col("dst").alias("t"))
            .distinct()
            .withColumn("pid", F.monotonically_increasing_id())
        )
        searchable = self._keep(self.filter_units(units, graph))
        timings["classify_pairs_s"] = time.perf_counter() - t1

        t2 = time.perf_counter()
        met, meet_edges, layers, dags, levels = self._search(searchable, graph)
        timings["search_s"] = time.perf_counter() - t2

        t3 = time.perf_counter()
        active_pairs = classified.where(F.col("status").isNull()).join(
            units, (F.col("src") == F.col("s")) & (F.col("dst") == F.col("t"))
        )
        met_pairs = self._keep(
            active_pairs.join(met, "pid").select("pair_id", "pid", "s", "t", "hops", "kf", "kb", "n_paths")
        )
        paths = self._keep(self._unrank(met_pairs, meet_edges, dags, graph))
        timings["materialize_s"] = time.perf_counter() - t3

        status_df = self._keep(self._status_table(classified, active_pairs, met))
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
            "levels": levels,
            "timings": {k: round(v, 3) for k, v in timings.items()},
        }
        if getattr(self, "prefilter", None):
            stats["prefilter"] = self.prefilter
        return PathResult(paths=paths, pair_status=status_df, stats=stats)

    def _search(self, units: DataFrame, graph: Graph):
        """Level-synchronous meet-in-the-middle search over all units at once.

        Returns ``met(pid, hops, kf, kb, n_paths)``, the meeting edges
        ``(pid, u, v, rel, su, sv)``, the layer and dag pieces, and per-level diagnostics.
        """
        spark = self.spark
        roots = units.select(F.col("s").alias("root")).union(units.select(F.col("t").alias("root"))).distinct()
        layer0 = self._keep(
            roots.join(graph.degrees, F.col("root") == F.col("node"), "left")
            .select(
                "root",
                F.lit(0).alias("dist"),
                F.col("root").alias("node"),
                F.lit(1).cast("long").alias("sigma"),
                F.coalesce(F.col("deg"), F.lit(0)).cast("long").alias("deg"),
            )
        )
        layers: list[DataFrame] = [layer0]
        dags: list[DataFrame] = []
        stat_pieces: list[DataFrame] = [
            layer0.select("root", "dist", F.lit(1).cast("long").alias("n"), F.col("deg").alias("sumdeg"))
        ]
        met_pieces: list[DataFrame] = []
        meet_pieces: list[DataFrame] = []
        levels: list[dict[str, Any]] = []
        active = units.select("pid", "s", "t", F.lit(0).alias("kf"), F.lit(0).alias("kb"))

        for level in range(1, self.max_hops + 1):
            n_active = active.count()
            if n_active == 0:
                break
            final = level == self.max_hops
            stats_all = self._keep(self._union(stat_pieces)) if len(stat_pieces) > 1 else stat_pieces[0]
            stat_pieces = [stats_all]
            planned = self._keep(self._plan_level(active, stats_all, final))
            method_counts = {
                r["method"]: int(r["count"]) for r in planned.groupBy("method").count().collect()
            }

            info: dict[str, Any] = {"level": level, "active_units": int(n_active), "methods": method_counts}
            t_level = time.perf_counter()
            if not final:
                # Grow the balls the plan asked for. At the last level nothing is grown: the
                # meeting edges are probed directly (see _meet), a new layer would be wasted.
                requests = self._keep(
                    planned.where((F.col("method") == "f") & ~F.col("f_next"))
                    .select(F.col("s").alias("root"), F.col("kf").alias("dist"))
                    .union(
                        planned.where((F.col("method") == "b") & ~F.col("b_next")).select(
                            F.col("t").alias("root"), F.col("kb").alias("dist")
                        )
                    )
                    .distinct()
                )
                expanded = self._expand(requests, layers, stats_all, graph)
                if expanded is not None:
                    layer_piece, dag_piece, stat_piece, expand_info = expanded
                    layers.append(layer_piece)
                    dags.append(dag_piece)
                    stat_pieces.append(stat_piece)
                    info.update(expand_info)
            layers_all = self._union(layers)
            dags_all = self._union(dags) if dags else None
            meet = self._keep(self._meet(planned, layers_all, dags_all, graph, info, final))
            info["seconds"] = round(time.perf_counter() - t_level, 2)
            meet_pieces.append(meet)
            met_now = self._keep(
                meet.groupBy("pid")
                .agg(F.sum(F.col("su") * F.col("sv")).alias("n_paths"))
                .join(planned.select("pid", "kf", "kb"), "pid")
                .select("pid", F.lit(level).alias("hops"), "kf", "kb", "n_paths")
            )
            met_pieces.append(met_now)
            levels.append(info)
            if final:
                break
            # Advance the rest; a unit whose grown ball added no node can never meet.
            stats_now = self._union(stat_pieces)
            moved = (
                planned.join(met_now.select("pid"), "pid", "left_anti")
                .where(F.col("method") != "p")
                .select(
                    "pid",
                    "s",
                    "t",
                    (F.col("kf") + F.when(F.col("method") == "f", 1).otherwise(0)).alias("kf"),
                    (F.col("kb") + F.when(F.col("method") == "b", 1).otherwise(0)).alias("kb"),
                    "method",
                )
            )
            grown = F.when(F.col("method") == "f", F.col("s")).otherwise(F.col("t"))
            grown_dist = F.when(F.col("method") == "f", F.col("kf")).otherwise(F.col("kb"))
            moved = moved.join(
                stats_now.select("root", "dist", "n"),
                (grown == F.col("root")) & (grown_dist == F.col("dist")),
                "left",
            )
            active = self._keep(moved.where(F.col("n") > 0).select("pid", "s", "t", "kf", "kb"))

        schema_met = "pid long, hops int, kf int, kb int, n_paths long"
        met = self._keep(self._union(met_pieces)) if met_pieces else spark.createDataFrame([], schema_met)
        meet_schema = "pid long, u long, v long, rel int, su long, sv long"
        meet_edges = self._union(meet_pieces) if meet_pieces else spark.createDataFrame([], meet_schema)
        return met, meet_edges, layers, dags, levels

    def _plan_level(self, active: DataFrame, stats_all: DataFrame, final: bool) -> DataFrame:
        """Per unit: how to look for meeting edges at this level (f, b or p) and at what cost."""
        st = stats_all.select("root", "dist", "n", "sumdeg")

        def stat(prefix: str) -> DataFrame:
            return st.select(
                F.col("root").alias(f"{prefix}_root"),
                F.col("dist").alias(f"{prefix}_dist"),
                F.col("n").alias(f"{prefix}_n"),
                F.col("sumdeg").alias(f"{prefix}_sumdeg"),
            )

        # How many units need each frontier: an expansion's cost is shared by all of them.
        demand = (
            active.select(F.col("s").alias("root"), F.col("kf").alias("dist"))
            .unionAll(active.select(F.col("t").alias("root"), F.col("kb").alias("dist")))
            .groupBy("root", "dist")
            .agg(F.count(F.lit(1)).alias("share"))
        )
        a = (
            active.join(stat("f"), (F.col("s") == F.col("f_root")) & (F.col("kf") == F.col("f_dist")))
            .join(stat("b"), (F.col("t") == F.col("b_root")) & (F.col("kb") == F.col("b_dist")))
            .join(stat("fn"), (F.col("s") == F.col("fn_root")) & (F.col("kf") + 1 == F.col("fn_dist")), "left")
            .join(stat("bn"), (F.col("t") == F.col("bn_root")) & (F.col("kb") + 1 == F.col("bn_dist")), "left")
            .join(
                demand.select(F.col("root").alias("df_root"), F.col("dist").alias("df_dist"), F.col("share").alias("f_share")),
                (F.col("s") == F.col("df_root")) & (F.col("kf") == F.col("df_dist")),
            )
            .join(
                demand.select(F.col("root").alias("db_root"), F.col("dist").alias("db_dist"), F.col("share").alias("b_share")),
                (F.col("t") == F.col("db_root")) & (F.col("kb") == F.col("db_dist")),
            )
        )
        f_next = F.col("fn_n").isNotNull()
        b_next = F.col("bn_n").isNotNull()
        cost_f = F.when(f_next, F.lit(0.0)).otherwise(F.col("f_sumdeg") / F.col("f_share"))
        cost_b = F.when(b_next, F.lit(0.0)).otherwise(F.col("b_sumdeg") / F.col("b_share"))
        if final:
            cost_p = (F.col("f_n") * F.col("b_n")).cast("double") * F.lit(self.product_weight)
        else:
            cost_p = F.lit(float("inf"))
        method = (
            F.when((F.col("cost_f") <= F.col("cost_b")) & (F.col("cost_f") <= F.col("cost_p")), "f")
            .when(F.col("cost_b") <= F.col("cost_p"), "b")
            .otherwise("p")
        )
        return (
            a.select(
                "pid",
                "s",
                "t",
                "kf",
                "kb",
                f_next.alias("f_next"),
                b_next.alias("b_next"),
                F.col("f_n"),
                F.col("b_n"),
                cost_f.alias("cost_f"),
                cost_b.alias("cost_b"),
                cost_p.alias("cost_p"),
            )
            .withColumn("method", method)
        )

    def _adjacent(self, frontier: DataFrame, n_rows: int, graph: Graph) -> tuple[DataFrame, str]:
        """``adj`` joined with frontier rows ``(..., src, deg)`` on ``src``: one row per edge.

        A frontier of at most ``broadcast_rows`` rows is broadcast: the cached adjacency is
        streamed through a hash lookup and never shuffled. A bigger one is joined by shuffle on
        ``(src, salt)``: a hub's adjacency is spread over ``salt_buckets`` keys and its frontier
        row repeated once per bucket, so no single task receives a whole hub.
        """
        if n_rows <= self.broadcast_rows:
            return graph.adj.join(F.broadcast(frontier.drop("deg")), "src"), "broadcast"
        salt = F.when(
            F.col("hub").isNotNull(), F.pmod(F.xxhash64("dst", "rel"), F.lit(self.salt_buckets))
        ).otherwise(F.lit(0))
        salted_adj = graph.adj.join(F.broadcast(graph.hubs), "src", "left").select("src", "dst", "rel", salt.alias("salt"))
        salts = F.when(
            F.col("deg") > self.hub_degree, F.sequence(F.lit(0), F.lit(self.salt_buckets - 1))
        ).otherwise(F.array(F.lit(0)))
        salted = frontier.withColumn("salt", F.explode(salts)).drop("deg")
        return salted_adj.join(salted, ["src", "salt"]).drop("salt"), "salted_shuffle"

    def _expand(self, requests: DataFrame, layers: list[DataFrame], stats_all: DataFrame, graph: Graph):
        """Grow the requested balls ``(root, dist)`` by one layer; None when nothing was requested."""
        sizes = (
            requests.join(stats_all, ["root", "dist"])
            .agg(F.count(F.lit(1)).alias("roots"), F.sum("n").alias("rows"), F.sum("sumdeg").alias("adj_rows"))
            .collect()[0]
        )
        n_roots, front_rows, adj_rows = int(sizes["roots"]), int(sizes["rows"] or 0), int(sizes["adj_rows"] or 0)
        if n_roots == 0:
            return None
        layers_all = self._union(layers)
        frontier = layers_all.join(requests, ["root", "dist"]).select(
            "root", F.col("dist").alias("pdist"), F.col("node").alias("src"), F.col("sigma").alias("sigma_prev"), "deg"
        )
        x, join_kind = self._adjacent(frontier, front_rows, graph)
        x = x.select(
            "root",
            (F.col("pdist") + 1).alias("dist"),
            F.col("dst").alias("node"),
            F.col("src").alias("prev"),
            "rel",
            "sigma_prev",
        )
        # BFS: a node already in the ball (this layer or an earlier one) is not new.
        visited = layers_all.join(requests.select("root"), "root", "left_semi").select("root", "node")
        dag_piece = self._keep(x.join(visited, ["root", "node"], "left_anti"))
        layer_piece = self._keep(
            dag_piece.groupBy("root", "dist", "node")
            .agg(F.sum("sigma_prev").alias("sigma"))
            .join(graph.degrees, "node", "left")
            .select("root", "dist", "node", "sigma", F.coalesce(F.col("deg"), F.lit(0)).cast("long").alias("deg"))
        )
        grown = layer_piece.groupBy("root", "dist").agg(
            F.count(F.lit(1)).alias("n"), F.sum("deg").cast("long").alias("sumdeg")
        )
        stat_piece = self._keep(
            requests.select("root", (F.col("dist") + 1).alias("dist"))
            .join(grown, ["root", "dist"], "left")
            .select(
                "root",
                "dist",
                F.coalesce(F.col("n"), F.lit(0)).cast("long").alias("n"),
                F.coalesce(F.col("sumdeg"), F.lit(0)).cast("long").alias("sumdeg"),
            )
        )
        info = {"expanded_roots": n_roots, "frontier_rows": front_rows, "expanded_rows": adj_rows, "join": join_kind}
        return layer_piece, dag_piece, stat_piece, info

    def _meet(
        self,
        planned: DataFrame,
        layers_all: DataFrame,
        dags_all: DataFrame | None,
        graph: Graph,
        info: dict,
        final: bool,
    ) -> DataFrame:
        """Meeting edges ``(pid, u, v, rel, su, sv)``: u in src's layer kf, v in dst's layer kb.

        Per unit, by its planned method:
        * ``f`` / ``b`` with the next layer of that side already built: look the other side's
          frontier nodes up in that layer's dag rows;
        * ``f`` / ``b`` without it (last level only): probe — stream the adjacency of the
          side's frontier (shared by all units with that root) against the other frontier;
        * ``p`` (last level only): join the product of the two frontiers with the adjacency, in
          broadcast chunks of at most ``broadcast_rows`` candidates.
        """
        lay = layers_all.select("root", "dist", "node", "sigma", "deg")
        pieces: list[DataFrame] = []
        for side, (near, near_k, far, far_k) in (("f", ("s", "kf", "t", "kb")), ("b", ("t", "kb", "s", "kf"))):
            # Before the last level every chosen side has just been grown (or already was).
            has_next = F.col("f_next" if side == "f" else "b_next") | F.lit(not final)
            chosen = planned.where(F.col("method") == side)
            # Frontier rows of the far side, keyed by the near root they must be found from.
            far_rows = chosen.join(lay, (F.col(far) == F.col("root")) & (F.col(far_k) == F.col("dist")))
            if dags_all is not None:
                lookup = far_rows.where(has_next).select(
                    "pid",
                    F.col(near).alias("root"),
                    (F.col(near_k) + 1).alias("dist"),
                    F.col("node"),
                    F.col("sigma").alias("s_far"),
                )
                hit = lookup.join(dags_all.select("root", "dist", "node", "prev", "rel", "sigma_prev"), ["root", "dist", "node"])
                pieces.append(self._orient(hit, side, near_col="prev", far_col="node", s_near="sigma_prev"))
            probe_units = chosen.where(~has_next)
            sizes = probe_units.agg(
                F.count(F.lit(1)).alias("units"), F.sum(F.col("f_n" if side == "f" else "b_n")).alias("rows")
            ).collect()[0]
            if int(sizes["units"]) == 0:
                continue
            roots = probe_units.select(F.col(near).alias("root"), F.col(near_k).alias("dist")).distinct()
            frontier = lay.join(roots, ["root", "dist"]).select(
                "root", F.col("node").alias("src"), F.col("sigma").alias("s_near"), "deg"
            )
            edges_out, join_kind = self._adjacent(frontier, int(sizes["rows"] or 0), graph)
            wanted = (
                far_rows.where(~has_next)
                .select("pid", F.col(near).alias("root"), F.col("node").alias("dst"), F.col("sigma").alias("s_far"))
            )
            hit = edges_out.join(wanted, ["root", "dst"])
            pieces.append(self._orient(hit, side, near_col="src", far_col="dst", s_near="s_near"))
            info[f"probe_{side}_units"] = int(sizes["units"])
            info[f"probe_{side}_join"] = join_kind

        up = planned.where(F.col("method") == "p").select("pid", "s", "t", "kf", "kb", "f_n", "b_n")
        n_cand = int(up.agg(F.sum(F.col("f_n") * F.col("b_n"))).collect()[0][0] or 0)
        if n_cand > 0:
            fu = up.join(lay, (F.col("s") == F.col("root")) & (F.col("kf") == F.col("dist"))).select(
                "pid", F.col("node").alias("src"), F.col("sigma").alias("su")
            )
            bv = up.join(lay, (F.col("t") == F.col("root")) & (F.col("kb") == F.col("dist"))).select(
                "pid", F.col("node").alias("dst"), F.col("sigma").alias("sv")
            )
            cand = fu.join(bv, "pid")
            adj = graph.adj.select("src", "dst", "rel")
            chunks = -(-n_cand // self.broadcast_rows) if self.broadcast_rows > 0 else 0
            if 1 <= chunks <= self.max_product_chunks:
                # Each chunk is broadcast and the adjacency streamed past it: no adjacency shuffle.
                parts = [
                    adj.join(F.broadcast(cand.where(F.pmod(F.col("pid"), F.lit(chunks)) == c)), ["src", "dst"])
                    for c in range(chunks)
                ]
                hit = self._union(parts)
                info["product_join"] = f"broadcast x{chunks}"
            else:
                hit = adj.join(cand, ["src", "dst"])
                info["product_join"] = "shuffle"
            pieces.append(hit.select("pid", F.col("src").alias("u"), F.col("dst").alias("v"), "rel", "su", "sv"))
        info["product_candidates"] = n_cand
        if not pieces:
            return self.spark.createDataFrame([], "pid long, u long, v long, rel int, su long, sv long")
        return self._union(pieces)

    @staticmethod
    def _orient(hit: DataFrame, side: str, *, near_col: str, far_col: str, s_near: str) -> DataFrame:
        """Meeting-edge rows with ``u`` on the src side and ``v`` on the dst side."""
        if side == "f":
            return hit.select(
                "pid", F.col(near_col).alias("u"), F.col(far_col).alias("v"), "rel",
                F.col(s_near).alias("su"), F.col("s_far").alias("sv"),
            )
        return hit.select(
            "pid", F.col(far_col).alias("u"), F.col(near_col).alias("v"), "rel",
            F.col("s_far").alias("su"), F.col(s_near).alias("sv"),
        )

    # ------------------------------------------------------------------ paths

    def _unrank(self, met_pairs: DataFrame, meet_edges: DataFrame, dags: list[DataFrame], graph: Graph) -> DataFrame:
        """Build the kept paths from their ranks (see module docstring)."""
        seed, cap = self.seed, self.max_paths

        def ranks_fn(batches):
            return path_sampling.ranks_batch(batches, seed, cap)

        ranks = met_pairs.select("pair_id", "pid", "n_paths").mapInArrow(
            ranks_fn, "pair_id string, pid long, j int, rank long"
        )
        # Meeting edges in a fixed order, each owning ranks [start, start + su*sv).
        w_edges = Window.partitionBy("pid").orderBy("u", "v", "rel").rowsBetween(Window.unboundedPreceding, Window.currentRow)
        weighted = meet_edges.withColumn("w", F.col("su") * F.col("sv"))
        edges_ranged = weighted.withColumn("key", F.sum("w").over(w_edges) - F.col("w"))
        chosen = self._locate(
            edges_ranged.select("pid", "key", "u", "v", "rel", "sv", F.col("key").alias("estart")),
            ranks.select("pid", F.col("rank").alias("key"), "pair_id", "j"),
            ["pid"],
            ["u", "v", "rel", "sv", "estart"],
            ["pair_id", "j"],
        )
        chosen = chosen.withColumn("off", F.col("key") - F.col("estart")).join(
            met_pairs.select("pair_id", "s", "t", "kf", "kb"), "pair_id"
        )
        chosen = self._keep(chosen)
        cursors = chosen.select(
            "pair_id", "j", F.lit(0).alias("side"), F.col("s").alias("root"), F.col("kf").alias("dist"),
            F.col("u").alias("node"), F.expr("off div sv").alias("idx"), F.col("kf").alias("pos"),
        ).unionByName(
            chosen.select(
                "pair_id", "j", F.lit(1).alias("side"), F.col("t").alias("root"), F.col("kb").alias("dist"),
                F.col("v").alias("node"), F.expr("off % sv").alias("idx"), (F.col("kf") + 1).alias("pos"),
            )
        )
        node_trace: list[DataFrame] = [cursors.select("pair_id", "j", "pos", "node")]
        rel_trace: list[DataFrame] = [chosen.select("pair_id", "j", F.col("kf").alias("hop"), "rel")]
        dag_all = self._union(dags) if dags else None
        cursors = self._keep(cursors.where(F.col("dist") > 0))
        while dag_all is not None and cursors.count() > 0:
            keys = cursors.select("root", "dist", "node").distinct()
            preds = dag_all.join(keys, ["root", "dist", "node"], "left_semi")
            w_pred = Window.partitionBy("root", "dist", "node").orderBy("prev", "rel").rowsBetween(
                Window.unboundedPreceding, Window.currentRow
            )
            preds = preds.withColumn("key", F.sum("sigma_prev").over(w_pred) - F.col("sigma_prev"))
            step = self._locate(
                preds.select("root", "dist", "node", "key", "prev", "rel", F.col("key").alias("pstart")),
                cursors.select("root", "dist", "node", F.col("idx").alias("key"), "pair_id", "j", "side", "pos"),
                ["root", "dist", "node"],
                ["prev", "rel", "pstart"],
                ["pair_id", "j", "side", "pos"],
            )
            step = self._keep(
                step.select(
                    "pair_id",
                    "j",
                    "side",
                    "root",
                    (F.col("dist") - 1).alias("dist"),
                    F.col("prev").alias("node"),
                    (F.col("key") - F.col("pstart")).alias("idx"),
                    F.when(F.col("side") == 0, F.col("pos") - 1).otherwise(F.col("pos") + 1).alias("pos"),
                    F.when(F.col("side") == 0, F.col("pos") - 1).otherwise(F.col("pos")).alias("hop"),
                    "rel",
                )
            )
            node_trace.append(step.select("pair_id", "j", "pos", "node"))
            rel_trace.append(step.select("pair_id", "j", "hop", "rel"))
            cursors = self._keep(step.where(F.col("dist") > 0).drop("hop", "rel"))

        nodes_arr = (
            self._union(node_trace)
            .groupBy("pair_id", "j")
            .agg(F.array_sort(F.collect_list(F.struct("pos", "node"))).alias("pn"))
            .select("pair_id", "j", F.transform("pn", lambda x: x["node"]).alias("path_nodes"))
        )
        rels_arr = (
            self._union(rel_trace)
            .join(F.broadcast(graph.relations), "rel")
            .groupBy("pair_id", "j")
            .agg(F.array_sort(F.collect_list(F.struct("hop", "label"))).alias("hl"))
            .select("pair_id", "j", F.transform("hl", lambda x: x["label"]).alias("path_relations"))
        )
        return nodes_arr.join(rels_arr, ["pair_id", "j"]).select(
            "pair_id",
            F.size("path_relations").cast("int").alias("hops"),
            "path_nodes",
            "path_relations",
        )

    @staticmethod
    def _locate(ranges: DataFrame, queries: DataFrame, part: list[str], carry: list[str], qcols: list[str]) -> DataFrame:
        """For each query row, the range row with the largest ``key`` <= the query's ``key``.

        A sorted-merge in one window pass (no range join, no blow-up): ranges and queries are
        interleaved by key within each partition, and each query takes the last range seen.
        """
        r = ranges.select(*part, "key", F.lit(0).alias("kind"), *carry, *[F.lit(None).alias(c) for c in qcols])
        q = queries.select(*part, "key", F.lit(1).alias("kind"), *[F.lit(None).alias(c) for c in carry], *qcols)
        # Give the null placeholder columns the types of their real counterparts.
        for c in carry:
            q = q.withColumn(c, F.col(c).cast(ranges.schema[c].dataType))
        for c in qcols:
            r = r.withColumn(c, F.col(c).cast(queries.schema[c].dataType))
        both = r.unionByName(q)
        w = Window.partitionBy(*part).orderBy("key", "kind").rowsBetween(Window.unboundedPreceding, Window.currentRow)
        picked = both.select(*part, "key", "kind", *qcols, *[F.last(c, ignorenulls=True).over(w).alias(c) for c in carry])
        return picked.where(F.col("kind") == 1).drop("kind")

    def _status_table(self, classified: DataFrame, active_pairs: DataFrame, met: DataFrame) -> DataFrame:
        cap = self.max_paths
        searched = active_pairs.join(met, "pid", "left").select(
            "pair_id",
            "src",
            "dst",
            F.when(F.col("hops").isNotNull(), STATUS_OK).otherwise(STATUS_NO_PATH).alias("status"),
            F.col("hops").cast("int").alias("hops"),
            F.col("n_paths").cast("long").alias("n_paths_total"),
            # least() skips nulls: an unmet pair must keep 0, not the cap.
            F.when(F.col("n_paths").isNull(), F.lit(0))
            .otherwise(F.least(F.col("n_paths"), F.lit(cap)))
            .cast("int")
            .alias("n_paths_kept"),
        )
        searched = searched.withColumn("n_paths_total", F.coalesce("n_paths_total", F.lit(0).cast("long")))
        others = classified.where(F.col("status").isNotNull()).select(
            "pair_id",
            "src",
            "dst",
            "status",
            F.lit(None).cast("int").alias("hops"),
            F.lit(None).cast("long").alias("n_paths_total"),
            F.lit(0).cast("int").alias("n_paths_kept"),
        )
        return searched.unionByName(others)


# ---------------------------------------------------------------------- job entry


def pair_status_uri(out_uri: str) -> str:
    """Where :func:`run_paths` writes the per-pair statuses: a sibling ``<out>_pair_status``."""
    from medreason_dist import storage

    return storage.check_uri(out_uri).rstrip("/") + "_pair_status"


def make_engine(spark: SparkSession, engine: str = "dataframe", **options) -> PathEngine:
    if engine == "dataframe":
        return PathEngine(spark, **options)
    if engine == "graphframes":
        from medreason_dist.spark.graphframes_engine import GraphFramesPathEngine

        return GraphFramesPathEngine(spark, **options)
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
    from medreason_dist import storage
    from medreason_dist.spark.io import read_dataset, write_dataset

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
