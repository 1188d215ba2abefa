"""Phase 1: the prepared graph, and which input pairs need a search at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medreason_dist.spark.paths.contract import (
    STATUS_DUPLICATE_ID,
    STATUS_INVALID,
    STATUS_SAME_NODE,
    STATUS_UNKNOWN_BOTH,
    STATUS_UNKNOWN_DST,
    STATUS_UNKNOWN_SRC,
)
from medreason_dist.spark.paths.frames import keep


@dataclass
class Graph:
    """Prepared graph: node ids, both-direction adjacency with integer relation codes."""

    node_ids: DataFrame  # (node_id)
    adj: DataFrame  # (src, dst, rel), each undirected edge in both directions; cached
    degrees: DataFrame  # (node, deg)
    hubs: DataFrame  # (src, hub=True) for nodes with more than hub_degree adjacency rows
    relations: DataFrame  # (rel int, label string)
    stats: dict[str, Any]


def prepare_graph(
    spark: SparkSession,
    nodes: DataFrame,
    edges: DataFrame,
    *,
    relation_column: str,
    hub_degree: int,
) -> Graph:
    """Validate edges, encode labels, build the two-direction adjacency and degrees.

    Two passes over the edges: one aggregation that yields the reject counts and the label
    vocabulary together, one that builds the de-duplicated adjacency (cached, columnar; the
    caller unpersists ``Graph.adj`` when done).
    """
    node_ids = keep(
        nodes.select(F.col("node_id").cast("long").alias("node_id")).where(F.col("node_id").isNotNull()).distinct()
    )
    n_nodes = node_ids.count()
    label_col = F.col(relation_column).cast("string")
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
    relations = spark.createDataFrame(
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
    n_undirected = adj.count() // 2
    n_clean = n_edges_in - sum(rejects.values())
    if n_clean > n_undirected:
        rejects["edge_duplicate"] = int(n_clean - n_undirected)
    degrees = keep(adj.groupBy(F.col("src").alias("node")).agg(F.count(F.lit(1)).alias("deg")))
    # Hubs get their adjacency split over salt buckets in shuffle joins (few rows: broadcast).
    hubs = keep(
        degrees.where(F.col("deg") > hub_degree).select(F.col("node").alias("src"), F.lit(True).alias("hub"))
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


def classify_pairs(pairs: DataFrame, graph: Graph) -> tuple[DataFrame, dict[str, int]]:
    """Status for every distinct input row; ``status`` is null for pairs that need a search."""
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
    classified = keep(classified)
    n_distinct = classified.count()
    counts = {"pairs_in": int(n_rows), "pairs_duplicate_rows": int(n_rows - n_distinct)}
    return classified, counts


def search_units(classified: DataFrame) -> DataFrame:
    """``(s, t, pid)``: one search unit per distinct (src, dst) of the pairs that need a search.

    Repeated entity pairs (many pair_ids, same endpoints) are searched once.
    """
    return keep(
        classified.where(F.col("status").isNull())
        .select(F.col("src").alias("s"), F.col("dst").alias("t"))
        .distinct()
        .withColumn("pid", F.monotonically_increasing_id())
    )
