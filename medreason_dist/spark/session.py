"""One place that builds SparkSessions, with settings that suit both a laptop and a cluster.

Under ``spark-submit`` the submitter's settings (master, memory, packages) win: we only fill in
defaults that were not given, via ``SparkSession.builder.config`` before ``getOrCreate``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

log = logging.getLogger(__name__)

# Defaults for local runs. A cluster overrides them with --conf or spark-defaults.conf.
LOCAL_DEFAULTS: dict[str, str] = {
    # Local jobs have 2-16 cores: 200 shuffle partitions would be 200 tiny tasks per stage.
    "spark.sql.shuffle.partitions": "8",
    "spark.default.parallelism": "8",
    "spark.sql.session.timeZone": "UTC",
    # Adaptive execution coalesces small shuffles and splits skewed join partitions (hub nodes).
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.adaptive.skewJoin.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "4g",
}

CLUSTER_DEFAULTS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.adaptive.skewJoin.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def spark_session(
    master: str | None = "local[2]",
    app_name: str = "medreason_dist",
    conf: dict[str, Any] | None = None,
    *,
    verbose: bool = False,
):
    """Return a (possibly existing) SparkSession.

    ``master=None`` leaves the master to ``spark-submit``/the cluster. ``conf`` entries override
    the defaults (e.g. ``{"spark.driver.memory": "8g"}``); driver memory only takes effect when
    this call starts the JVM, which is the case for local runs from Python. ``verbose=False``
    sets the JVM's log level to ERROR (WARN when verbose) and keeps py4j's Python logger at
    WARNING (its INFO/DEBUG lines are one per gateway call).
    """
    from pyspark.sql import SparkSession

    is_local = master is not None and master.startswith("local")
    settings = dict(LOCAL_DEFAULTS if is_local else CLUSTER_DEFAULTS)
    if is_local:
        # Local Python workers must run the driver's interpreter (the venv with numpy/pyarrow),
        # not whatever "python3" is first on PATH. PySpark reads PYSPARK_PYTHON when the context
        # starts; an explicit value (spark-submit, the user) is left alone.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings.update({k: str(v) for k, v in (conf or {}).items()})
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    actual_master = spark.sparkContext.master
    if not is_local and actual_master.startswith("local"):
        # Started by spark-submit --master local[...]: use the local sizing unless told otherwise.
        given = dict(spark.sparkContext.getConf().getAll())
        for key in ("spark.sql.shuffle.partitions",):
            if key not in given and key not in (conf or {}):
                settings[key] = LOCAL_DEFAULTS[key]
    # getOrCreate on an existing session ignores static settings; apply the runtime ones.
    for key, value in settings.items():
        if key.startswith("spark.sql.") and spark.conf.get(key, None) != value:
            try:
                spark.conf.set(key, value)
            except Exception as err:  # static SQL conf of an already running session
                log.debug("could not set %s on the running session: %s", key, err)
    spark.sparkContext.setLogLevel("WARN" if verbose else "ERROR")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    return spark
