"""What the path engine promises its callers: pair statuses and the two output schemas."""

from __future__ import annotations

from pyspark.sql import types as T

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
