"""A committed dataset folder opens in every common Parquet reader, without project code, and
shows exactly the committed rows: never a crashed attempt, never a replaced version.

Local disk: pyarrow.dataset, pandas, Polars, DuckDB, Spark, Ray Data, Hugging Face datasets.
S3-protocol server (moto on loopback): pyarrow.dataset, pandas, Polars and Ray Data through their
own S3 clients. DuckDB (httpfs) and Hugging Face (s3fs) need extensions this machine cannot
download or does not install; Spark needs hadoop-aws — those three are checked on local disk.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from medreason_dist import storage

SCHEMA = pa.schema([("id", pa.string()), ("x", pa.int64())])

_CRASHING_WRITER = textwrap.dedent(
    """
    import sys, time
    import pyarrow as pa
    from medreason_dist import storage
    uri, endpoint = sys.argv[1], sys.argv[2]
    opts = storage.StorageOptions(s3_endpoint_url=endpoint, s3_region="us-east-1") if endpoint else None
    schema = pa.schema([("id", pa.string()), ("x", pa.int64())])
    w = storage.DatasetWriter(uri, schema, stage="crash", rows_per_file=3, options=opts)
    w.write(pa.table({"id": [f"c{i}" for i in range(7)], "x": list(range(7))}, schema=schema))
    w._close_file()
    print("WROTE", flush=True)
    time.sleep(600)
    """
)


def _table(n: int, offset: int = 0) -> pa.Table:
    return pa.table({"id": [f"r{i}" for i in range(offset, offset + n)], "x": list(range(offset, offset + n))},
                    schema=SCHEMA)


def _crash_a_writer(uri: str, endpoint: str = "") -> None:
    proc = subprocess.Popen([sys.executable, "-c", _CRASHING_WRITER, uri, endpoint], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "WROTE"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def _history(uri: str, opts=None) -> list[str]:
    """v1 (4 rows) committed, a crashed rewrite, v2 (5 rows) committed, another crashed rewrite."""
    storage.write_table(uri, _table(4), stage="v1", options=opts)
    _crash_a_writer(uri, opts.s3_endpoint_url if opts else "")
    storage.write_table(uri, _table(5, offset=100), stage="v2", options=opts)
    _crash_a_writer(uri, opts.s3_endpoint_url if opts else "")
    return sorted(_table(5, offset=100).column("id").to_pylist())


@pytest.fixture
def local_dataset(tmp_path):
    path = tmp_path / "ds"
    expected = _history(str(path))
    assert list((path / storage.ATTEMPTS_DIR).rglob("*.parquet")), "the crashed attempt left files behind"
    return path, expected


def test_pyarrow_pandas_polars_duckdb_local(local_dataset):
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow.dataset as pads

    path, expected = local_dataset
    assert sorted(pads.dataset(str(path), format="parquet").to_table().column("id").to_pylist()) == expected
    assert sorted(pd.read_parquet(path)["id"]) == expected
    # Polars lists every file of a folder (it skips neither `_` nor `.` names): give it the glob.
    assert sorted(pl.read_parquet(str(path / "*.parquet")).get_column("id").to_list()) == expected
    assert sorted(pl.scan_parquet(str(path / "*.parquet")).collect().get_column("id").to_list()) == expected
    rows = duckdb.sql(f"SELECT id FROM read_parquet('{path}/*.parquet')").fetchall()
    assert sorted(r[0] for r in rows) == expected


def test_huggingface_datasets_local(local_dataset, tmp_path):
    from datasets import load_dataset

    path, expected = local_dataset
    ds = load_dataset("parquet", data_dir=str(path), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert sorted(ds["id"]) == expected


def test_spark_local(local_dataset):
    from conftest_spark import spark  # noqa: F401  (fixture import)

    pytest.importorskip("pyspark")
    from medreason_dist.spark.session import spark_session

    path, expected = local_dataset
    session = spark_session("local[2]", app_name="readers", conf={"spark.driver.memory": "1g"})
    rows = session.read.parquet(str(path)).select("id").collect()
    assert sorted(r.id for r in rows) == expected


@pytest.mark.slow
def test_ray_data_local_and_s3(local_dataset, s3_bucket, s3_server):
    import ray

    path, expected = local_dataset
    bucket, opts = s3_bucket
    s3_expected = _history(f"s3://{bucket}/ds", opts)
    fs = pafs.S3FileSystem(endpoint_override=s3_server.split("//")[1], scheme="http", region="us-east-1",
                           access_key="testing", secret_key="testing")
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        assert sorted(ray.data.read_parquet(str(path)).to_pandas()["id"]) == expected
        got = ray.data.read_parquet(f"{bucket}/ds", filesystem=fs).to_pandas()
        assert sorted(got["id"]) == s3_expected
        # The project's own worker-side reader (files from the manifest, 1/4-CPU tasks) agrees.
        from medreason_dist import raydata

        assert sorted(raydata.read(str(path)).to_pandas()["id"]) == expected
        assert sorted(raydata.read(f"s3://{bucket}/ds", opts, columns=["id"]).to_pandas()["id"]) == s3_expected
        # Two datasets at once, and a plain folder whose hive partition becomes a column.
        import pyarrow.parquet as pq

        plain = path.parent / "plain"
        (plain / "part=a").mkdir(parents=True)
        pq.write_table(_table(2, offset=50), plain / "part=a" / "f0.parquet")
        both = raydata.read([str(path), str(plain)]).to_pandas()
        assert sorted(both["id"]) == sorted(expected + ["r50", "r51"])
        assert set(both.loc[both["id"].isin(["r50", "r51"]), "part"]) == {"a"}
    finally:
        ray.shutdown()


def test_pyarrow_pandas_polars_on_s3(s3_bucket, s3_server):
    import pandas as pd
    import polars as pl
    import pyarrow.dataset as pads

    bucket, opts = s3_bucket
    expected = _history(f"s3://{bucket}/ds", opts)
    fs = pafs.S3FileSystem(endpoint_override=s3_server.split("//")[1], scheme="http", region="us-east-1")
    assert sorted(pads.dataset(f"{bucket}/ds", format="parquet", filesystem=fs).to_table()
                  .column("id").to_pylist()) == expected
    assert sorted(pd.read_parquet(f"{bucket}/ds", filesystem=fs)["id"]) == expected
    polars_opts = {"aws_endpoint_url": s3_server, "aws_allow_http": "true", "aws_region": "us-east-1",
                   "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    got = pl.scan_parquet(f"s3://{bucket}/ds/*.parquet", storage_options=polars_opts).collect()
    assert sorted(got.get_column("id").to_list()) == expected


def test_interrupted_publish_is_finished_by_recover(tmp_path, monkeypatch):
    """Killed after the intent and one file move, before the manifest: our readers keep the old
    version; recover (or the next commit) finishes the interrupted one."""
    import json
    import os

    uri = str(tmp_path / "ds")
    storage.write_table(uri, _table(3), stage="v1")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-publish")

    monkeypatch.setattr(storage, "_finish_publish", killed)
    writer = storage.DatasetWriter(uri, SCHEMA, stage="v2", rows_per_file=4)
    writer.write(_table(6, offset=10))
    with pytest.raises(KeyboardInterrupt):
        writer.commit()
    monkeypatch.undo()
    intent = json.loads((tmp_path / "ds" / storage.PUBLISH_NAME).read_text())
    assert len(intent["moves"]) == 2
    src, dst = intent["moves"][0]
    os.rename(tmp_path / "ds" / src, tmp_path / "ds" / dst)  # the one move that happened
    assert storage.read_table(uri).num_rows == 3  # the manifest still names v1, whose files remain
    assert storage.recover(uri) is True
    assert storage.read_manifest(uri).stage == "v2"
    assert sorted(storage.read_table(uri).column("x").to_pylist()) == list(range(10, 16))
    assert len(list((tmp_path / "ds").glob("*.parquet"))) == 2
    assert not (tmp_path / "ds" / storage.PUBLISH_NAME).exists()
    assert storage.recover(uri) is False


def test_plain_parquet_folder_is_an_input(tmp_path):
    """A folder any tool wrote (no manifest, hive partitions, a _SUCCESS file) reads and has an
    identity that follows its files."""
    import pyarrow.parquet as pq

    folder = tmp_path / "plain"
    (folder / "part=a").mkdir(parents=True)
    pq.write_table(_table(2), folder / "part=a" / "f0.parquet")
    pq.write_table(_table(3, offset=2), folder / "f1.parquet")
    (folder / "_SUCCESS").write_text("")
    info = storage.describe(str(folder))
    assert not info.committed and info.rows == 5
    assert storage.read_table(str(folder)).num_rows == 5
    before = storage.content_identity(str(folder))
    pq.write_table(_table(4, offset=9), folder / "f1.parquet")
    assert storage.content_identity(str(folder)) != before
    assert storage.content_identity(str(tmp_path / "missing")) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(storage.IncompleteDatasetError):
        storage.describe(str(empty))
