"""Phase 3: build the kept paths from their ranks, and the per-pair status table.

Paths are counted before any is built (``n_paths`` per met unit, from the search). Ranks in
``[0, n)`` are chosen per pair — all of them, or a seeded sample (:mod:`path_sampling`) — and
*unranked* through the counts: the meeting edges, in ``(u, v, rel)`` order, own consecutive rank
ranges of size ``su * sv``; the offset inside one splits into a src-side and a dst-side index,
and each half walks back to its root choosing predecessors by cumulative ``sigma``. A pair with
millions of shortest paths materialises only ``max_paths`` of them.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

# Spark-free on purpose: it is the one piece that runs in Python workers (mapInArrow).
from medreason_dist.spark import path_sampling
from medreason_dist.spark.paths.contract import STATUS_NO_PATH, STATUS_OK
from medreason_dist.spark.paths.frames import keep, union_all
from medreason_dist.spark.paths.graph import Graph


def assemble_paths(
    met_pairs: DataFrame,
    meet_edges: DataFrame,
    dags: list[DataFrame],
    graph: Graph,
    *,
    seed: int,
    max_paths: int,
) -> DataFrame:
    """``(pair_id, hops, path_nodes, path_relations)`` for the kept ranks of every met pair.

    ``met_pairs(pair_id, pid, s, t, hops, kf, kb, n_paths)``; ``meet_edges(pid, u, v, rel, su,
    sv)`` and the ``dags`` pieces come from the search.
    """
    seed, cap = int(seed), int(max_paths)

    def ranks_fn(batches):
        return path_sampling.ranks_batch(batches, seed, cap)

    ranks = met_pairs.select("pair_id", "pid", "n_paths").mapInArrow(
        ranks_fn, "pair_id string, pid long, j int, rank long"
    )
    # Meeting edges in a fixed order, each owning ranks [start, start + su*sv).
    w_edges = Window.partitionBy("pid").orderBy("u", "v", "rel").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    weighted = meet_edges.withColumn("w", F.col("su") * F.col("sv"))
    edges_ranged = weighted.withColumn("key", F.sum("w").over(w_edges) - F.col("w"))
    chosen = locate_ranges(
        edges_ranged.select("pid", "key", "u", "v", "rel", "sv", F.col("key").alias("estart")),
        ranks.select("pid", F.col("rank").alias("key"), "pair_id", "j"),
        ["pid"],
        ["u", "v", "rel", "sv", "estart"],
        ["pair_id", "j"],
    )
    chosen = chosen.withColumn("off", F.col("key") - F.col("estart")).join(
        met_pairs.select("pair_id", "s", "t", "kf", "kb"), "pair_id"
    )
    chosen = keep(chosen)
    # One cursor per half path: side 0 walks from u back to src, side 1 from v back to dst.
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
    dag_all = union_all(dags) if dags else None
    cursors = keep(cursors.where(F.col("dist") > 0))
    while dag_all is not None and cursors.count() > 0:
        keys = cursors.select("root", "dist", "node").distinct()
        preds = dag_all.join(keys, ["root", "dist", "node"], "left_semi")
        w_pred = Window.partitionBy("root", "dist", "node").orderBy("prev", "rel").rowsBetween(
            Window.unboundedPreceding, Window.currentRow
        )
        preds = preds.withColumn("key", F.sum("sigma_prev").over(w_pred) - F.col("sigma_prev"))
        step = locate_ranges(
            preds.select("root", "dist", "node", "key", "prev", "rel", F.col("key").alias("pstart")),
            cursors.select("root", "dist", "node", F.col("idx").alias("key"), "pair_id", "j", "side", "pos"),
            ["root", "dist", "node"],
            ["prev", "rel", "pstart"],
            ["pair_id", "j", "side", "pos"],
        )
        step = keep(
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
        cursors = keep(step.where(F.col("dist") > 0).drop("hop", "rel"))

    nodes_arr = (
        union_all(node_trace)
        .groupBy("pair_id", "j")
        .agg(F.array_sort(F.collect_list(F.struct("pos", "node"))).alias("pn"))
        .select("pair_id", "j", F.transform("pn", lambda x: x["node"]).alias("path_nodes"))
    )
    rels_arr = (
        union_all(rel_trace)
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


def locate_ranges(
    ranges: DataFrame, queries: DataFrame, part: list[str], carry: list[str], qcols: list[str]
) -> DataFrame:
    """For each query row, the range row with the largest ``key`` <= the query's ``key``.

    Both frames hold ``part`` columns and ``key``; the result has ``part``, the query's ``key``
    and ``qcols``, and the matched range's ``carry`` columns. A sorted-merge in one window pass
    (no range join, no blow-up): ranges and queries are interleaved by key within each
    partition, and each query takes the last range seen.
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


def pair_status_table(classified: DataFrame, active_pairs: DataFrame, met: DataFrame, *, max_paths: int) -> DataFrame:
    """One :data:`STATUS_SCHEMA` row per distinct input row: searched pairs, then the others."""
    cap = int(max_paths)
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
