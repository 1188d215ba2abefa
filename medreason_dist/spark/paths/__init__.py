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
  seeded sample, :mod:`medreason_dist.spark.path_sampling`) and *unranked* through the counts:
  pick the meeting edge covering the rank, then walk each half back to its root choosing
  predecessors by cumulative ``sigma``. A pair with millions of shortest paths materialises only
  ``max_paths`` of them.

Layout, one module per phase
----------------------------
* :mod:`.contract` — statuses, output schemas, ``MAX_SUPPORTED_HOPS``.
* :mod:`.frames` — ``keep`` (local checkpoint) and ``union_all``, used by every phase.
* :mod:`.graph` — ``Graph``; ``prepare_graph`` (edge validation, label codes, cached adjacency,
  degrees, hubs), ``classify_pairs`` (statuses of pairs that need no search), ``search_units``.
* :mod:`.frontier` — ``search``: per-level planning, ball expansion and meeting-edge discovery.
* :mod:`.assemble` — ``assemble_paths`` (rank choice and unranking) and ``pair_status_table``.
* :mod:`.engine` — ``PathEngine``, which runs the phases in order, and ``PathResult``.
* :mod:`.job` — ``make_engine``, ``run_paths`` and ``pair_status_uri``: datasets in, committed
  datasets out. The only module that knows about :mod:`medreason_dist.spark.graphframes_engine`.
"""

from medreason_dist.spark.paths.contract import (
    MAX_SUPPORTED_HOPS,
    PATHS_SCHEMA,
    STATUS_DUPLICATE_ID,
    STATUS_INVALID,
    STATUS_NO_PATH,
    STATUS_OK,
    STATUS_SAME_NODE,
    STATUS_SCHEMA,
    STATUS_UNKNOWN_BOTH,
    STATUS_UNKNOWN_DST,
    STATUS_UNKNOWN_SRC,
    STATUSES,
)
from medreason_dist.spark.paths.engine import PathEngine, PathResult, UnitFilter
from medreason_dist.spark.paths.frontier import JoinTuning
from medreason_dist.spark.paths.graph import Graph
from medreason_dist.spark.paths.job import ENGINES, make_engine, pair_status_uri, run_paths

__all__ = [
    "ENGINES",
    "MAX_SUPPORTED_HOPS",
    "PATHS_SCHEMA",
    "STATUSES",
    "STATUS_DUPLICATE_ID",
    "STATUS_INVALID",
    "STATUS_NO_PATH",
    "STATUS_OK",
    "STATUS_SAME_NODE",
    "STATUS_SCHEMA",
    "STATUS_UNKNOWN_BOTH",
    "STATUS_UNKNOWN_DST",
    "STATUS_UNKNOWN_SRC",
    "Graph",
    "JoinTuning",
    "PathEngine",
    "PathResult",
    "UnitFilter",
    "make_engine",
    "pair_status_uri",
    "run_paths",
]
