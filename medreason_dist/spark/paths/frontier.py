"""Phase 2: level-synchronous, bidirectional frontier expansion until each unit's ends meet.

Balls are keyed by root node, not by unit: ``layers(root, dist, node, sigma, deg)`` (``sigma``
= number of shortest root->node paths) and ``dag(root, dist, node, prev, rel, sigma_prev)`` (the
BFS predecessor edges). ``stats(root, dist, n, sumdeg)`` sizes every layer so that each unit can
choose, per level, the cheapest way to look for its meeting edges (:func:`plan_level`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medreason_dist.spark.paths.frames import keep, union_all
from medreason_dist.spark.paths.graph import Graph

MET_DDL = "pid long, hops int, kf int, kb int, n_paths long"
MEET_EDGES_DDL = "pid long, u long, v long, rel int, su long, sv long"


@dataclass(frozen=True)
class JoinTuning:
    """How the frontier joins are executed; none of it changes which paths are found."""

    # Frontiers up to this many rows are broadcast: the adjacency is then streamed, not shuffled.
    broadcast_rows: int = 2_000_000
    # Nodes with more adjacency rows than this are split over salt_buckets join keys when a
    # frontier is too big to broadcast, so one hub does not land in one task.
    hub_degree: int = 1_000
    salt_buckets: int = 8
    # Relative cost of one frontier-product candidate (materialised, broadcast, hashed) vs one
    # adjacency row streamed through a probe.
    product_weight: float = 8.0
    # Above this many broadcast chunks the product join is a plain shuffle join instead.
    max_product_chunks: int = 16


@dataclass
class SearchResult:
    met: DataFrame  # (pid, hops, kf, kb, n_paths): units whose ends met, at which radii
    meet_edges: DataFrame  # (pid, u, v, rel, su, sv): u in src's layer kf, v in dst's layer kb
    layers: list[DataFrame]  # pieces of layers(root, dist, node, sigma, deg)
    dags: list[DataFrame]  # pieces of dag(root, dist, node, prev, rel, sigma_prev)
    levels: list[dict[str, Any]]  # per-level diagnostics (methods, join kinds, sizes, seconds)


def search(spark: SparkSession, units: DataFrame, graph: Graph, *, max_hops: int, tuning: JoinTuning) -> SearchResult:
    """Level-synchronous meet-in-the-middle search over all units ``(s, t, pid)`` at once."""
    roots = units.select(F.col("s").alias("root")).union(units.select(F.col("t").alias("root"))).distinct()
    layer0 = keep(
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

    for level in range(1, max_hops + 1):
        n_active = active.count()
        if n_active == 0:
            break
        final = level == max_hops
        stats_all = keep(union_all(stat_pieces)) if len(stat_pieces) > 1 else stat_pieces[0]
        stat_pieces = [stats_all]
        planned = keep(plan_level(active, stats_all, final, product_weight=tuning.product_weight))
        method_counts = {r["method"]: int(r["count"]) for r in planned.groupBy("method").count().collect()}

        info: dict[str, Any] = {"level": level, "active_units": int(n_active), "methods": method_counts}
        t_level = time.perf_counter()
        if not final:
            # Grow the balls the plan asked for. At the last level nothing is grown: the
            # meeting edges are probed directly (see meet), a new layer would be wasted.
            requests = keep(
                planned.where((F.col("method") == "f") & ~F.col("f_next"))
                .select(F.col("s").alias("root"), F.col("kf").alias("dist"))
                .union(
                    planned.where((F.col("method") == "b") & ~F.col("b_next")).select(
                        F.col("t").alias("root"), F.col("kb").alias("dist")
                    )
                )
                .distinct()
            )
            expanded = expand(requests, layers, stats_all, graph, tuning)
            if expanded is not None:
                layer_piece, dag_piece, stat_piece, expand_info = expanded
                layers.append(layer_piece)
                dags.append(dag_piece)
                stat_pieces.append(stat_piece)
                info.update(expand_info)
        layers_all = union_all(layers)
        dags_all = union_all(dags) if dags else None
        meet_now = keep(meet(spark, planned, layers_all, dags_all, graph, info, final, tuning))
        info["seconds"] = round(time.perf_counter() - t_level, 2)
        meet_pieces.append(meet_now)
        met_now = keep(
            meet_now.groupBy("pid")
            .agg(F.sum(F.col("su") * F.col("sv")).alias("n_paths"))
            .join(planned.select("pid", "kf", "kb"), "pid")
            .select("pid", F.lit(level).alias("hops"), "kf", "kb", "n_paths")
        )
        met_pieces.append(met_now)
        levels.append(info)
        if final:
            break
        # Advance the rest; a unit whose grown ball added no node can never meet.
        stats_now = union_all(stat_pieces)
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
        active = keep(moved.where(F.col("n") > 0).select("pid", "s", "t", "kf", "kb"))

    met = keep(union_all(met_pieces)) if met_pieces else spark.createDataFrame([], MET_DDL)
    meet_edges = union_all(meet_pieces) if meet_pieces else spark.createDataFrame([], MEET_EDGES_DDL)
    return SearchResult(met=met, meet_edges=meet_edges, layers=layers, dags=dags, levels=levels)


def plan_level(active: DataFrame, stats_all: DataFrame, final: bool, *, product_weight: float) -> DataFrame:
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
        cost_p = (F.col("f_n") * F.col("b_n")).cast("double") * F.lit(product_weight)
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


def adjacent(frontier: DataFrame, n_rows: int, graph: Graph, tuning: JoinTuning) -> tuple[DataFrame, str]:
    """``adj`` joined with frontier rows ``(..., src, deg)`` on ``src``: one row per edge.

    A frontier of at most ``broadcast_rows`` rows is broadcast: the cached adjacency is
    streamed through a hash lookup and never shuffled. A bigger one is joined by shuffle on
    ``(src, salt)``: a hub's adjacency is spread over ``salt_buckets`` keys and its frontier
    row repeated once per bucket, so no single task receives a whole hub.
    """
    if n_rows <= tuning.broadcast_rows:
        return graph.adj.join(F.broadcast(frontier.drop("deg")), "src"), "broadcast"
    salt = F.when(
        F.col("hub").isNotNull(), F.pmod(F.xxhash64("dst", "rel"), F.lit(tuning.salt_buckets))
    ).otherwise(F.lit(0))
    salted_adj = graph.adj.join(F.broadcast(graph.hubs), "src", "left").select("src", "dst", "rel", salt.alias("salt"))
    salts = F.when(
        F.col("deg") > tuning.hub_degree, F.sequence(F.lit(0), F.lit(tuning.salt_buckets - 1))
    ).otherwise(F.array(F.lit(0)))
    salted = frontier.withColumn("salt", F.explode(salts)).drop("deg")
    return salted_adj.join(salted, ["src", "salt"]).drop("salt"), "salted_shuffle"


def expand(requests: DataFrame, layers: list[DataFrame], stats_all: DataFrame, graph: Graph, tuning: JoinTuning):
    """Grow the requested balls ``(root, dist)`` by one layer.

    Returns ``(layer_piece, dag_piece, stat_piece, info)``, or None when nothing was requested.
    """
    sizes = (
        requests.join(stats_all, ["root", "dist"])
        .agg(F.count(F.lit(1)).alias("roots"), F.sum("n").alias("rows"), F.sum("sumdeg").alias("adj_rows"))
        .collect()[0]
    )
    n_roots, front_rows, adj_rows = int(sizes["roots"]), int(sizes["rows"] or 0), int(sizes["adj_rows"] or 0)
    if n_roots == 0:
        return None
    layers_all = union_all(layers)
    frontier = layers_all.join(requests, ["root", "dist"]).select(
        "root", F.col("dist").alias("pdist"), F.col("node").alias("src"), F.col("sigma").alias("sigma_prev"), "deg"
    )
    x, join_kind = adjacent(frontier, front_rows, graph, tuning)
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
    dag_piece = keep(x.join(visited, ["root", "node"], "left_anti"))
    layer_piece = keep(
        dag_piece.groupBy("root", "dist", "node")
        .agg(F.sum("sigma_prev").alias("sigma"))
        .join(graph.degrees, "node", "left")
        .select("root", "dist", "node", "sigma", F.coalesce(F.col("deg"), F.lit(0)).cast("long").alias("deg"))
    )
    grown = layer_piece.groupBy("root", "dist").agg(
        F.count(F.lit(1)).alias("n"), F.sum("deg").cast("long").alias("sumdeg")
    )
    stat_piece = keep(
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


def meet(
    spark: SparkSession,
    planned: DataFrame,
    layers_all: DataFrame,
    dags_all: DataFrame | None,
    graph: Graph,
    info: dict,
    final: bool,
    tuning: JoinTuning,
) -> DataFrame:
    """Meeting edges ``(pid, u, v, rel, su, sv)``: u in src's layer kf, v in dst's layer kb.

    Per unit, by its planned method:
    * ``f`` / ``b`` with the next layer of that side already built: look the other side's
      frontier nodes up in that layer's dag rows;
    * ``f`` / ``b`` without it (last level only): probe — stream the adjacency of the
      side's frontier (shared by all units with that root) against the other frontier;
    * ``p`` (last level only): join the product of the two frontiers with the adjacency, in
      broadcast chunks of at most ``broadcast_rows`` candidates.

    Records the probe and product join choices in ``info``.
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
            pieces.append(orient(hit, side, near_col="prev", far_col="node", s_near="sigma_prev"))
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
        edges_out, join_kind = adjacent(frontier, int(sizes["rows"] or 0), graph, tuning)
        wanted = (
            far_rows.where(~has_next)
            .select("pid", F.col(near).alias("root"), F.col("node").alias("dst"), F.col("sigma").alias("s_far"))
        )
        hit = edges_out.join(wanted, ["root", "dst"])
        pieces.append(orient(hit, side, near_col="src", far_col="dst", s_near="s_near"))
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
        chunks = -(-n_cand // tuning.broadcast_rows) if tuning.broadcast_rows > 0 else 0
        if 1 <= chunks <= tuning.max_product_chunks:
            # Each chunk is broadcast and the adjacency streamed past it: no adjacency shuffle.
            parts = [
                adj.join(F.broadcast(cand.where(F.pmod(F.col("pid"), F.lit(chunks)) == c)), ["src", "dst"])
                for c in range(chunks)
            ]
            hit = union_all(parts)
            info["product_join"] = f"broadcast x{chunks}"
        else:
            hit = adj.join(cand, ["src", "dst"])
            info["product_join"] = "shuffle"
        pieces.append(hit.select("pid", F.col("src").alias("u"), F.col("dst").alias("v"), "rel", "su", "sv"))
    info["product_candidates"] = n_cand
    if not pieces:
        return spark.createDataFrame([], MEET_EDGES_DDL)
    return union_all(pieces)


def orient(hit: DataFrame, side: str, *, near_col: str, far_col: str, s_near: str) -> DataFrame:
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
