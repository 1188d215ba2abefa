"""Spark <-> committed datasets (``medreason_dist.storage``'s manifest contract).

Reads open exactly the files a dataset's manifest lists (never a directory listing, so a crashed
attempt is never read). Writes go to a fresh attempt prefix and are published by
``storage.commit_attempt``, which writes the manifest last.

Spark reads and writes natively whenever the JVM can load the Hadoop filesystem for the URI's
scheme (always for local files; ``s3a``/``gs`` when the hadoop-aws / GCS connector jars are on the
classpath, as on EMR and Dataproc). Otherwise data is staged through pyarrow on the driver — fine
for tests and small data (e.g. a pip-installed pyspark against a loopback S3 server), never meant
for cluster-sized datasets, and logged as a warning each time.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlparse

from pyspark.sql import DataFrame, SparkSession

from medreason_dist import storage

log = logging.getLogger(__name__)

# Hadoop FileSystem implementation Spark needs for each object-store scheme.
HADOOP_FS_CLASSES: dict[str, str] = {
    "s3": "org.apache.hadoop.fs.s3a.S3AFileSystem",
    "gs": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem",
}


def jvm_class_loadable(spark: SparkSession, class_name: str) -> bool:
    """Whether the driver JVM can load ``class_name`` (False without a JVM, e.g. Spark Connect)."""
    try:
        jvm = spark.sparkContext._jvm  # noqa: SLF001 - py4j gateway is the only way to ask
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        jvm.java.lang.Class.forName(class_name, False, loader)
        return True
    except Exception:  # py4j raises Py4JJavaError wrapping ClassNotFoundException
        return False


def spark_native(spark: SparkSession, uri: str) -> bool:
    """True when Spark itself can read/write ``uri``."""
    scheme = urlparse(storage.check_uri(uri)).scheme
    if scheme == "file":
        return True
    class_name = HADOOP_FS_CLASSES.get(scheme)
    return class_name is not None and jvm_class_loadable(spark, class_name)


def configure_object_store(spark: SparkSession, options: storage.StorageOptions | None) -> None:
    """Point s3a at a custom endpoint (MinIO, moto) when the storage options name one."""
    if options is None or not options.s3_endpoint_url:
        return
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # noqa: SLF001
    conf.set("fs.s3a.endpoint", options.s3_endpoint_url)
    conf.set("fs.s3a.path.style.access", "true")
    if options.s3_endpoint_url.startswith("http://"):
        conf.set("fs.s3a.connection.ssl.enabled", "false")
    if options.s3_region:
        conf.set("fs.s3a.endpoint.region", options.s3_region)


def _staging_warning(uri: str, direction: str) -> None:
    scheme = urlparse(uri).scheme
    log.warning(
        "Spark cannot %s %s natively: the JVM has no %s. Staging through pyarrow on the driver — "
        "only suitable for small data and tests; on a cluster put the connector on the classpath "
        "(e.g. spark.jars.packages=org.apache.hadoop:hadoop-aws:<hadoop version>).",
        direction,
        uri,
        HADOOP_FS_CLASSES.get(scheme, f"filesystem for {scheme}://"),
    )


def read_dataset(spark: SparkSession, uri: str, options: storage.StorageOptions | None = None) -> DataFrame:
    """A committed dataset as a DataFrame (raises ``storage.IncompleteDatasetError`` without manifest)."""
    uri = storage.check_uri(uri)
    files = storage.dataset_files(uri, options)  # reads the manifest; refuses incomplete datasets
    if spark_native(spark, uri):
        configure_object_store(spark, options)
        return spark.read.parquet(*[storage.spark_uri(f) for f in files])
    _staging_warning(uri, "read")
    return spark.createDataFrame(storage.read_table(uri, options=options))


def write_dataset(
    df: DataFrame,
    uri: str,
    *,
    stage: str,
    config_hash: str = "",
    rejects: dict[str, int] | None = None,
    extra: dict[str, Any] | None = None,
    options: storage.StorageOptions | None = None,
) -> storage.Manifest:
    """Write ``df`` as the committed content of dataset ``uri``; returns its manifest."""
    uri = storage.check_uri(uri)
    spark = df.sparkSession
    if spark_native(spark, uri):
        configure_object_store(spark, options)
        attempt = storage.new_attempt(uri)
        df.write.mode("errorifexists").option("compression", "zstd").parquet(storage.spark_uri(attempt))
        return storage.commit_attempt(
            uri, attempt, stage=stage, config_hash=config_hash, rejects=rejects, extra=extra, options=options
        )
    _staging_warning(uri, "write")
    return storage.write_table(
        uri, df.toArrow(), stage=stage, config_hash=config_hash, rejects=rejects, extra=extra, options=options
    )
