"""Datasets on local disk and on a real S3-protocol server: URI safety, manifest, atomic commit."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import boto3
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from medreason_dist import storage


def _table(n: int, offset: int = 0) -> pa.Table:
    return pa.table({"id": [f"r{i}" for i in range(offset, offset + n)], "x": list(range(offset, offset + n))})


@pytest.mark.parametrize(
    "uri",
    ["s3://bucket/../x", "s3:///prefix", "gs://", "file:///tmp/a/../../etc", "../out", "a/../../b",
     "ftp://host/x", "", "s3://bucket/x?versionId=1", "http://example.org/x"],
)
def test_unsafe_uris_are_rejected(uri):
    with pytest.raises(storage.UnsafeUriError):
        storage.check_uri(uri)


def test_uri_normalisation(tmp_path):
    assert storage.check_uri(str(tmp_path)) == "file://" + str(tmp_path)
    assert storage.check_uri("s3://b/p/q/") == "s3://b/p/q"
    assert storage.check_uri("gs://b") == "gs://b"
    assert storage.spark_uri("s3://b/p") == "s3a://b/p"
    with pytest.raises(storage.UnsafeUriError):
        storage.join("s3://b/p", "../q")


def test_local_roundtrip_and_manifest(tmp_path):
    uri = str(tmp_path / "ds")
    manifest = storage.write_table(uri, _table(10), stage="unit", config_hash="abc",
                                   rejects={"bad": 2}, tokens={"input": 5}, extra={"k": 1})
    again = storage.read_manifest(uri)
    assert again == manifest
    assert again.rows == 10 and again.rejects == {"bad": 2} and again.tokens == {"input": 5}
    assert again.config_hash == "abc" and again.code_version
    assert "id: string" in again.schema_
    assert storage.read_table(uri).to_pydict() == _table(10).to_pydict()
    raw = json.loads((tmp_path / "ds" / ".manifest.json").read_text())
    assert raw["schema"] and raw["content_hash"] == manifest.content_hash


def test_content_hash_tracks_content(tmp_path):
    a = storage.write_table(str(tmp_path / "a"), _table(5), stage="u")
    b = storage.write_table(str(tmp_path / "b"), _table(5), stage="u")
    c = storage.write_table(str(tmp_path / "c"), _table(5, offset=1), stage="u")
    assert a.content_hash == b.content_hash != c.content_hash


def test_empty_dataset_keeps_schema(tmp_path):
    uri = str(tmp_path / "empty")
    storage.write_table(uri, _table(0), stage="u")
    table = storage.read_table(uri)
    assert table.num_rows == 0 and table.schema.names == ["id", "x"]


def test_writer_splits_files_and_rewrite_replaces_old_attempt(tmp_path):
    uri = str(tmp_path / "ds")
    w = storage.DatasetWriter(uri, _table(1).schema, stage="u", rows_per_file=4)
    for i in range(3):
        w.write(_table(3, offset=3 * i))
    m = w.commit()
    assert m.rows == 9 and len(m.files) == 3
    storage.write_table(uri, _table(2), stage="u")
    assert storage.read_table(uri).num_rows == 2
    # the previous version's files and every attempt folder are gone after the commit
    assert sorted(p.name for p in (tmp_path / "ds").glob("*.parquet")) == [f.path for f in storage.read_manifest(uri).files]
    assert not list((tmp_path / "ds" / storage.ATTEMPTS_DIR).glob("*"))


def test_missing_dataset_is_incomplete(tmp_path):
    with pytest.raises(storage.IncompleteDatasetError):
        storage.read_table(str(tmp_path / "nothing"))


def test_commit_attempt_from_external_writer(tmp_path):
    """Spark (or any engine) writes Parquet into an attempt; commit reads footers for counts."""
    uri = str(tmp_path / "ext")
    attempt = storage.new_attempt(uri)
    local = storage.local_path(attempt)
    local.mkdir(parents=True)
    pq.write_table(_table(4), local / "part-0.parquet")
    pq.write_table(_table(3, 4), local / "part-1.parquet")
    (local / "_SUCCESS").write_text("")
    m = storage.commit_attempt(uri, attempt, stage="ext", extra={"engine": "test"})
    assert m.rows == 7 and len(m.files) == 2
    assert sorted(storage.read_table(uri).column("x").to_pylist()) == list(range(7))


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import pyarrow as pa
    from medreason_dist import storage
    uri, endpoint = sys.argv[1], sys.argv[2]
    opts = storage.StorageOptions(s3_endpoint_url=endpoint, s3_region="us-east-1") if endpoint else None
    schema = pa.schema([("id", pa.string()), ("x", pa.int64())])
    w = storage.DatasetWriter(uri, schema, stage="killed", rows_per_file=5, options=opts)
    for i in range(4):
        w.write(pa.table({"id": [f"k{i}{j}" for j in range(5)], "x": list(range(5))}, schema=schema))
    print("WROTE", flush=True)
    time.sleep(600)   # killed here, before commit
    w.commit()
    """
)


def _kill_mid_write(uri: str, endpoint: str = "") -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, uri, endpoint], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "WROTE", line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def test_killed_local_write_is_refused(tmp_path):
    uri = str(tmp_path / "ds")
    _kill_mid_write(uri)
    assert list((tmp_path / "ds" / storage.ATTEMPTS_DIR).rglob("*.parquet"))  # data files were written...
    assert not list((tmp_path / "ds").glob("*.parquet"))  # ...only where no reader looks...
    with pytest.raises(storage.IncompleteDatasetError, match="did not finish"):
        storage.read_table(uri)  # ...but never committed


def test_killed_rewrite_keeps_previous_version(tmp_path):
    uri = str(tmp_path / "ds")
    storage.write_table(uri, _table(3), stage="first")
    _kill_mid_write(uri)
    assert storage.read_table(uri).num_rows == 3
    assert storage.read_manifest(uri).stage == "first"


@pytest.fixture
def s3_uri(s3_bucket):
    bucket, opts = s3_bucket
    return f"s3://{bucket}/data/ds", opts, bucket


def test_s3_roundtrip_through_pyarrow_and_boto3(s3_uri, s3_server):
    uri, opts, bucket = s3_uri
    m = storage.write_table(uri, _table(25), stage="s3", rejects={"x": 1}, options=opts)
    assert storage.read_table(uri, options=opts).num_rows == 25
    # The objects are really on the server: boto3 sees the manifest and the listed files.
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    body = s3.get_object(Bucket=bucket, Key="data/ds/.manifest.json")["Body"].read()
    manifest = json.loads(body)
    assert manifest["rows"] == 25 and manifest["rejects"] == {"x": 1}
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="data/ds/")["Contents"]}
    for f in m.files:
        assert f"data/ds/{f.path}" in keys
    # and pyarrow reads the same file straight off the server
    fs = pafs.S3FileSystem(endpoint_override=s3_server.split("//")[1], scheme="http", region="us-east-1")
    assert pq.read_table(f"{bucket}/data/ds/{m.files[0].path}", filesystem=fs).num_rows == 25


def test_s3_killed_write_is_refused_and_previous_kept(s3_uri, s3_server):
    uri, opts, bucket = s3_uri
    _kill_mid_write(uri, s3_server)
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="data/ds/").get("Contents", [])]
    assert any(k.endswith(".parquet") for k in keys) and not any(k.endswith(".manifest.json") for k in keys)
    with pytest.raises(storage.IncompleteDatasetError):
        storage.read_table(uri, options=opts)
    storage.write_table(uri, _table(4), stage="good", options=opts)
    _kill_mid_write(uri, s3_server)
    assert storage.read_table(uri, options=opts).num_rows == 4


def test_s3_unknown_bucket_is_a_clear_error(s3_server):
    opts = storage.StorageOptions(s3_endpoint_url=s3_server, s3_region="us-east-1")
    with pytest.raises(storage.StorageError):
        storage.read_table("s3://no-such-bucket-here/x", options=opts)
