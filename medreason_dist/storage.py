"""Object storage and committed Parquet datasets.

A *dataset* is a directory URI (``file:///abs``, a plain path, ``s3://bucket/prefix`` or
``gs://bucket/prefix``) that holds Parquet data files and a ``_manifest.json``.

Commit protocol (works on object stores, which have no atomic rename):

1. every write goes to a fresh attempt prefix ``<uri>/_attempts/<attempt-id>/``;
2. when all data files are written, ``_manifest.json`` is written *last*; it lists the committed
   files relative to the dataset root together with row counts and the schema.

Readers only ever open the files the manifest lists, so a writer killed half-way leaves a
dataset with no manifest (readers refuse it with :class:`IncompleteDatasetError`) or, on a
re-write, the previous complete version (its manifest still points at its own attempt).
Stale attempts are removed after a successful commit.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import posixpath
import uuid
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from medreason_dist.version import code_version

log = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.json"
ATTEMPTS_DIR = "_attempts"
MANIFEST_FORMAT = "medreason_dist.dataset/1"
SUPPORTED_SCHEMES = ("file", "s3", "gs")


class StorageError(Exception):
    """Base class for storage errors."""


class UnsafeUriError(StorageError, ValueError):
    """The URI is malformed or could escape its root (``..``, empty bucket, unknown scheme)."""


class IncompleteDatasetError(StorageError):
    """The dataset has no committed manifest (never written, or the writer died mid-way)."""


class StorageOptions(BaseModel):
    """Connection settings; credentials always come from the provider's standard chain."""

    model_config = ConfigDict(extra="forbid")

    s3_endpoint_url: str | None = Field(
        default=None, description="S3-protocol endpoint override, e.g. http://127.0.0.1:9000 (MinIO, moto)."
    )
    s3_region: str | None = Field(default=None, description="AWS region; default from the provider chain.")


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str  # relative to the dataset root
    rows: int
    bytes: int
    sha256: str


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str = MANIFEST_FORMAT
    stage: str
    rows: int
    files: list[FileEntry]
    schema_: str = Field(alias="schema")
    content_hash: str
    config_hash: str = ""
    code_version: str = ""
    rejects: dict[str, int] = Field(default_factory=dict)
    tokens: dict[str, int] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)
    created_at: str = ""

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)


# --------------------------------------------------------------------------------------------
# URIs


def check_uri(uri: str) -> str:
    """Validate and normalise a dataset URI.

    Plain paths become ``file://`` URIs with an absolute path. Rejects ``..`` segments (a
    config value must not be able to climb out of its storage root), empty buckets, and
    unsupported schemes, naming the offending URI.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise UnsafeUriError(f"empty storage URI: {uri!r}")
    uri = uri.strip()
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):
        path = uri
        scheme = "file"
        netloc = ""
    elif scheme not in SUPPORTED_SCHEMES:
        raise UnsafeUriError(f"unsupported URI scheme {scheme!r} in {uri!r}; use one of {SUPPORTED_SCHEMES}")
    else:
        path = parsed.path
        netloc = parsed.netloc
    if parsed.query or parsed.fragment:
        raise UnsafeUriError(f"storage URI must not carry a query or fragment: {uri!r}")
    segments = [s for s in path.split("/")]
    if ".." in segments:
        raise UnsafeUriError(f"'..' is not allowed in storage URIs: {uri!r}")
    if scheme == "file":
        if netloc not in ("", "localhost"):
            raise UnsafeUriError(f"file URI with a host is not supported: {uri!r}")
        abs_path = os.path.abspath(path)
        return "file://" + abs_path
    if not netloc:
        raise UnsafeUriError(f"{scheme}:// URI has an empty bucket: {uri!r}")
    key = posixpath.normpath(path).lstrip("/") if path.strip("/") else ""
    return f"{scheme}://{netloc}/{key}".rstrip("/") if key else f"{scheme}://{netloc}"


def join(uri: str, *parts: str) -> str:
    """Join path parts onto a URI; parts are checked like any URI."""
    base = check_uri(uri)
    for p in parts:
        if p.startswith("/") or ".." in p.split("/"):
            raise UnsafeUriError(f"unsafe path part {p!r} joined onto {uri!r}")
    return check_uri(base.rstrip("/") + "/" + "/".join(p.strip("/") for p in parts if p))


def filesystem(uri: str, options: StorageOptions | None = None) -> tuple[pafs.FileSystem, str]:
    """Return a pyarrow filesystem and the path inside it for ``uri``."""
    uri = check_uri(uri)
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return pafs.LocalFileSystem(), parsed.path
    if parsed.scheme == "s3":
        kwargs: dict[str, Any] = {}
        if options and options.s3_endpoint_url:
            ep = urlparse(options.s3_endpoint_url)
            kwargs["endpoint_override"] = ep.netloc or ep.path
            kwargs["scheme"] = ep.scheme or "https"
        if options and options.s3_region:
            kwargs["region"] = options.s3_region
        elif options and options.s3_endpoint_url:
            kwargs["region"] = "us-east-1"
        return pafs.S3FileSystem(**kwargs), parsed.netloc + parsed.path
    if parsed.scheme == "gs":
        return pafs.GcsFileSystem(), parsed.netloc + parsed.path
    raise UnsafeUriError(f"unsupported URI {uri!r}")  # unreachable: check_uri filtered it


def _to_uri(template_uri: str, fs_path: str) -> str:
    scheme = urlparse(template_uri).scheme
    if scheme == "file":
        return "file://" + fs_path
    return f"{scheme}://{fs_path}"


def spark_uri(uri: str) -> str:
    """The URI spelled the way Hadoop filesystems expect (``s3a://`` for S3)."""
    uri = check_uri(uri)
    if uri.startswith("s3://"):
        return "s3a://" + uri[len("s3://") :]
    return uri


def exists(uri: str, options: StorageOptions | None = None) -> bool:
    fs, path = filesystem(uri, options)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def file_identity(uri: str, options: StorageOptions | None = None) -> dict | None:
    """Size and modification time of a file: a cheap change detector (None if absent)."""
    fs, path = filesystem(uri, options)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        return None
    return {"size": info.size, "mtime_ns": info.mtime_ns}


def read_bytes(uri: str, options: StorageOptions | None = None) -> bytes:
    fs, path = filesystem(uri, options)
    with fs.open_input_stream(path) as f:
        return f.read()


def write_bytes(uri: str, data: bytes, options: StorageOptions | None = None) -> None:
    fs, path = filesystem(uri, options)
    parent = posixpath.dirname(path)
    if parent:
        fs.create_dir(parent, recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(data)


def delete_dir(uri: str, options: StorageOptions | None = None) -> None:
    fs, path = filesystem(uri, options)
    if fs.get_file_info(path).type == pafs.FileType.Directory:
        fs.delete_dir(path)


# --------------------------------------------------------------------------------------------
# Datasets


def new_attempt(uri: str) -> str:
    """A fresh attempt prefix under the dataset, for writers (ours or Spark's)."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    return join(uri, ATTEMPTS_DIR, f"{stamp}-{uuid.uuid4().hex[:12]}")


def _file_sha256(fs: pafs.FileSystem, path: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with fs.open_input_stream(path) as f:
        while True:
            chunk = f.read(8 << 20)
            if not chunk:
                break
            size += len(chunk)
            digest.update(chunk)
    return digest.hexdigest(), size


def _content_hash(entries: Iterable[FileEntry]) -> str:
    digest = hashlib.sha256()
    for e in sorted(entries, key=lambda e: e.path):
        digest.update(f"{e.sha256}:{e.rows}\n".encode())
    return digest.hexdigest()


def _relative(root_path: str, file_path: str) -> str:
    rel = posixpath.relpath(file_path, root_path)
    if rel.startswith(".."):
        raise UnsafeUriError(f"file {file_path!r} is outside dataset {root_path!r}")
    return rel


def commit_attempt(
    uri: str,
    attempt_uri: str,
    *,
    stage: str,
    config_hash: str = "",
    rejects: dict[str, int] | None = None,
    tokens: dict[str, int] | None = None,
    extra: dict[str, Any] | None = None,
    schema: pa.Schema | None = None,
    options: StorageOptions | None = None,
) -> Manifest:
    """Commit the Parquet files under ``attempt_uri`` as the content of dataset ``uri``.

    Row counts and schema come from the Parquet footers, so any writer (pyarrow, Spark, Ray)
    can produce the files. The manifest is written last; then older attempts are removed.
    """
    uri = check_uri(uri)
    attempt_uri = check_uri(attempt_uri)
    fs, root = filesystem(uri, options)
    _, attempt_path = filesystem(attempt_uri, options)
    infos = fs.get_file_info(pafs.FileSelector(attempt_path, recursive=True, allow_not_found=True))
    data_files = sorted(
        i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(".parquet")
        and not posixpath.basename(i.path).startswith(("_", "."))
    )
    entries: list[FileEntry] = []
    schemas: list[pa.Schema] = []
    for path in data_files:
        meta = pq.read_metadata(path, filesystem=fs)
        sha, size = _file_sha256(fs, path)
        entries.append(FileEntry(path=_relative(root, path), rows=meta.num_rows, bytes=size, sha256=sha))
        schemas.append(meta.schema.to_arrow_schema())
    if schema is None:
        schema = schemas[0] if schemas else pa.schema([])
    manifest = Manifest(
        stage=stage,
        rows=sum(e.rows for e in entries),
        files=entries,
        schema=schema.to_string(show_schema_metadata=False),
        content_hash=_content_hash(entries),
        config_hash=config_hash,
        code_version=code_version(),
        rejects={k: int(v) for k, v in (rejects or {}).items()},
        tokens={k: int(v) for k, v in (tokens or {}).items()},
        extra=extra or {},
        created_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )
    # An empty dataset still needs its schema for readers: store it as a zero-row file.
    if not entries:
        empty_path = posixpath.join(attempt_path, "part-00000.parquet")
        fs.create_dir(attempt_path, recursive=True)
        pq.write_table(schema.empty_table(), empty_path, filesystem=fs)
        sha, size = _file_sha256(fs, empty_path)
        manifest.files = [FileEntry(path=_relative(root, empty_path), rows=0, bytes=size, sha256=sha)]
        manifest.content_hash = _content_hash(manifest.files)
    with fs.open_output_stream(posixpath.join(root, MANIFEST_NAME)) as f:
        f.write(manifest.to_json().encode())
    _remove_stale_attempts(fs, root, keep=attempt_path)
    log.info("committed dataset %s rows=%d files=%d", uri, manifest.rows, len(manifest.files))
    return manifest


def _remove_stale_attempts(fs: pafs.FileSystem, root: str, keep: str) -> None:
    attempts = posixpath.join(root, ATTEMPTS_DIR)
    for info in fs.get_file_info(pafs.FileSelector(attempts, allow_not_found=True)):
        if info.type == pafs.FileType.Directory and info.path.rstrip("/") != keep.rstrip("/"):
            try:
                fs.delete_dir(info.path)
            except OSError as err:  # another writer may be using it; harmless to leave
                log.warning("could not remove stale attempt %s: %s", info.path, err)


class DatasetWriter:
    """Streams tables into an attempt prefix; :meth:`commit` publishes them atomically."""

    def __init__(
        self,
        uri: str,
        schema: pa.Schema,
        *,
        stage: str,
        rows_per_file: int = 1_000_000,
        options: StorageOptions | None = None,
    ) -> None:
        self.uri = check_uri(uri)
        self.schema = schema
        self.stage = stage
        self.options = options
        self.rows_per_file = rows_per_file
        self.attempt_uri = new_attempt(self.uri)
        self._fs, self._attempt_path = filesystem(self.attempt_uri, options)
        self._fs.create_dir(self._attempt_path, recursive=True)
        self._writer: pq.ParquetWriter | None = None
        self._file_index = 0
        self._rows_in_file = 0
        self.rows = 0

    def _open(self) -> pq.ParquetWriter:
        path = posixpath.join(self._attempt_path, f"part-{self._file_index:05d}.parquet")
        return pq.ParquetWriter(path, self.schema, filesystem=self._fs, compression="zstd")

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
        if table.num_rows == 0:
            return
        table = table.select(self.schema.names).cast(self.schema)
        offset = 0
        while offset < table.num_rows:
            if self._writer is None:
                self._writer = self._open()
            room = self.rows_per_file - self._rows_in_file
            piece = table.slice(offset, room)
            self._writer.write_table(piece)
            offset += piece.num_rows
            self._rows_in_file += piece.num_rows
            self.rows += piece.num_rows
            if self._rows_in_file >= self.rows_per_file:
                self._close_file()

    def _close_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._file_index += 1
            self._rows_in_file = 0

    def commit(
        self,
        *,
        config_hash: str = "",
        rejects: dict[str, int] | None = None,
        tokens: dict[str, int] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Manifest:
        self._close_file()
        return commit_attempt(
            self.uri,
            self.attempt_uri,
            stage=self.stage,
            config_hash=config_hash,
            rejects=rejects,
            tokens=tokens,
            extra=extra,
            schema=self.schema,
            options=self.options,
        )


def write_table(
    uri: str,
    table: pa.Table,
    *,
    stage: str,
    config_hash: str = "",
    rejects: dict[str, int] | None = None,
    tokens: dict[str, int] | None = None,
    extra: dict[str, Any] | None = None,
    options: StorageOptions | None = None,
) -> Manifest:
    """Write a whole table as a committed dataset."""
    writer = DatasetWriter(uri, table.schema, stage=stage, options=options)
    writer.write(table)
    return writer.commit(config_hash=config_hash, rejects=rejects, tokens=tokens, extra=extra)


def read_manifest(uri: str, options: StorageOptions | None = None) -> Manifest:
    uri = check_uri(uri)
    fs, root = filesystem(uri, options)
    path = posixpath.join(root, MANIFEST_NAME)
    try:
        with fs.open_input_stream(path) as f:
            raw = f.read()
    except (FileNotFoundError, OSError) as err:
        if fs.get_file_info(path).type == pafs.FileType.NotFound:
            hint = " (an uncommitted attempt exists: the writer did not finish)" if fs.get_file_info(
                posixpath.join(root, ATTEMPTS_DIR)).type == pafs.FileType.Directory else ""
            raise IncompleteDatasetError(f"dataset {uri} has no {MANIFEST_NAME}{hint}") from None
        raise StorageError(f"cannot read manifest of {uri}: {err}") from err
    try:
        return Manifest.model_validate_json(raw)
    except ValueError as err:
        raise IncompleteDatasetError(f"dataset {uri} has an unreadable manifest: {err}") from err


def is_committed(uri: str, options: StorageOptions | None = None) -> bool:
    try:
        read_manifest(uri, options)
        return True
    except IncompleteDatasetError:
        return False


def dataset_files(uri: str, options: StorageOptions | None = None) -> list[str]:
    manifest = read_manifest(uri, options)
    base = check_uri(uri)
    return [join(base, e.path) for e in manifest.files]


def read_table(
    uri: str, columns: list[str] | None = None, options: StorageOptions | None = None
) -> pa.Table:
    """Read exactly the committed files of a dataset (never a half-written attempt)."""
    manifest = read_manifest(uri, options)
    fs, root = filesystem(uri, options)
    paths = [posixpath.join(root, e.path) for e in manifest.files]
    missing = [p for p in paths if fs.get_file_info(p).type != pafs.FileType.File]
    if missing:
        raise IncompleteDatasetError(f"dataset {uri} lists files that are gone: {missing[:3]}")
    tables = [pq.read_table(p, filesystem=fs, columns=columns) for p in paths]
    table = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
    if table.num_rows != manifest.rows:
        raise IncompleteDatasetError(
            f"dataset {uri} has {table.num_rows} rows but its manifest says {manifest.rows}"
        )
    return table


def local_path(uri: str) -> Path:
    """The local filesystem path of a ``file://`` URI (error for remote URIs)."""
    uri = check_uri(uri)
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise StorageError(f"{uri} is not on the local filesystem")
    return Path(parsed.path)


def config_hash_of(obj: Any) -> str:
    """Stable short hash of a JSON-able object (configs, stage parameters)."""
    payload = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
