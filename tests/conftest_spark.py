"""Spark fixtures shared by the path-engine tests.

Register with ``pytest_plugins = ["conftest_spark"]`` in ``tests/conftest.py``; until then the
test modules import the fixture directly (``from conftest_spark import spark``). Either way
there is one local[2] SparkSession per test run: starting a JVM costs seconds.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark():
    pyspark = pytest.importorskip("pyspark")
    del pyspark
    from medreason_dist.spark.session import spark_session

    # Test data are tiny: 4 shuffle partitions halve the task count of every stage.
    session = spark_session(
        "local[2]", app_name="medreason_dist-tests", conf={"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": "4"}
    )
    yield session
    # The session is shared across modules; stopping it here is safe because this runs once,
    # after the last test that used it.
    session.stop()
