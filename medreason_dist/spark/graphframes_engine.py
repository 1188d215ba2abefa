"""The ``graphframes`` path engine: connected components first, then the DataFrame search.

GraphFrames' connected components (a DataFrame algorithm that scales to billions of edges) labels
every node with its component; units whose two ends lie in different components cannot have a
path, so they are reported ``no_path_within_max_hops`` without entering the frontier expansion.
On PrimeKG (one giant component plus small islands) this mainly spares the expansion of hopeless
pairs that start on an island; results are identical to the ``dataframe`` engine's.

The GraphFrames JVM package must be on the classpath (``spark.jars.packages``); it is not
bundled with pyspark and cannot be downloaded on an offline machine. Requesting this engine
without it is an error — never a silent fallback to the other engine.

This module holds only what is GraphFrames-specific (the availability check and the component
prefilter) and imports nothing from ``medreason_dist.spark.paths``: the engine factory there
(``paths.job.make_engine``) plugs :func:`units_in_one_component` into the ordinary
``PathEngine`` as its unit filter, so the dependency runs one way.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medreason_dist.spark.io import jvm_class_loadable

log = logging.getLogger(__name__)

GRAPHFRAMES_ARTIFACT = "io.graphframes:graphframes-spark4_2.13"
GRAPHFRAMES_DEFAULT_VERSION = "0.12.1"
GRAPHFRAMES_JVM_CLASS = "org.graphframes.GraphFramePythonAPI"


class GraphFramesUnavailableError(RuntimeError):
    """The graphframes engine was requested but its JVM package is not on the classpath."""


def graphframes_coordinates() -> str:
    return f"{GRAPHFRAMES_ARTIFACT}:{GRAPHFRAMES_DEFAULT_VERSION}"


def graphframes_missing_reason(spark: SparkSession) -> str | None:
    """None when the engine can run, else a message saying exactly what to add."""
    try:
        import graphframes  # noqa: F401
    except ImportError:
        return "the graphframes Python package is not installed (pip install graphframes-py)"
    if not jvm_class_loadable(spark, GRAPHFRAMES_JVM_CLASS):
        return (
            f"the GraphFrames JVM package is not on the Spark classpath (class {GRAPHFRAMES_JVM_CLASS} "
            f"not loadable). Add it with --packages {graphframes_coordinates()} or "
            f"--conf spark.jars.packages={graphframes_coordinates()} (any {GRAPHFRAMES_ARTIFACT} "
            "release >= 0.9 that matches your Spark/Scala), or use --engine dataframe."
        )
    return None


def require_graphframes(spark: SparkSession) -> None:
    """Raise :class:`GraphFramesUnavailableError` (saying what to add) unless the engine can run."""
    reason = graphframes_missing_reason(spark)
    if reason is not None:
        raise GraphFramesUnavailableError(f"engine 'graphframes' cannot run: {reason}")


def units_in_one_component(
    units: DataFrame, node_ids: DataFrame, adj: DataFrame
) -> tuple[DataFrame, dict[str, int]]:
    """Search units ``(s, t, pid)`` whose two ends share a connected component, and counts.

    ``node_ids(node_id)`` and ``adj(src, dst, ...)`` (both directions) are the prepared graph's.
    Units across components cannot have a path; dropping them here leaves them unmet, so they
    are reported ``no_path_within_max_hops`` exactly as the full search would.
    """
    from graphframes import GraphFrame

    vertices = node_ids.select(F.col("node_id").alias("id"))
    edges = adj.where(F.col("src") < F.col("dst")).select("src", "dst").distinct()
    components = GraphFrame(vertices, edges).connectedComponents(
        broadcastThreshold=-1, use_local_checkpoints=True
    )
    comp = components.select(F.col("id"), F.col("component"))
    labelled = units.join(
        comp.select(F.col("id").alias("s"), F.col("component").alias("cs")), "s"
    ).join(comp.select(F.col("id").alias("t"), F.col("component").alias("ct")), "t")
    # Checkpointed (lineage cut, as every intermediate of the search): it is counted right away
    # and then drives the whole search.
    kept = labelled.where(F.col("cs") == F.col("ct")).select("s", "t", "pid").localCheckpoint(eager=True)
    n_units, n_kept = units.count(), kept.count()
    prefilter = {"units": int(n_units), "units_in_different_components": int(n_units - n_kept)}
    log.info("graphframes prefilter: %s", prefilter)
    return kept, prefilter
