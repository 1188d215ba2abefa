"""Object storage and committed Parquet datasets.

A *dataset* is a directory URI (``file:///abs``, a plain path, ``s3://bucket/prefix`` or
``gs://bucket/prefix``) whose top level holds Parquet data files and a ``.manifest.json``.
Any Parquet reader (pyarrow, pandas, Spark, Ray Data, Hugging Face datasets on the folder;
Polars and DuckDB on ``<folder>/*.parquet``) sees exactly the committed rows: everything that is
not committed data (manifest, commit intent, write attempts, resume progress) has a name that
starts with ``.``, which all of them skip (Hugging Face skips no ``_`` names, so ``.`` it is).

Commit protocol (works on object stores, which have no atomic rename):

1. a writer puts its files under a hidden attempt prefix ``<uri>/.attempts/<attempt-id>/``
   (a crashed writer leaves only hidden files: no reader sees them);
2. commit writes the intent ``<uri>/.publish.json`` (the new manifest and the file moves), moves
   the attempt's files to the top level under names unique to the attempt
   (``part-<attempt-id>-NNNNN.parquet``; a rename on local disk, a server-side copy on S3/GCS),
   then writes ``.manifest.json`` — the commit point — and only then deletes the previous
   version's files and the intent.

This module's readers open only the files the manifest lists, so they always see one whole
version. A process killed *during* step 2 (moves only, no computation) leaves the intent; the
next commit to that dataset, or :func:`recover`, finishes it. Until then a plain reader may see
the previous version plus some of the new files: that window is the one place where
object stores without multi-object transactions show through.

A folder of Parquet files written by any other tool (no manifest) is a *plain* dataset: it can
be read and fingerprinted (its identity comes from the files' paths, sizes and modification
times) but never written through this module's commit.
"""

from __future__ import annotations

import contextlib
import contextvars
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

MANIFEST_NAME = ".manifest.json"
ATTEMPTS_DIR = ".attempts"
PUBLISH_NAME = ".publish.json"
MANIFEST_FORMAT = "medreason_dist.dataset/1"
SUPPORTED_SCHEMES = ("file", "s3", "gs")


class StorageError(Exception):
    """Base class for storage errors."""


class UnsafeUriError(StorageError, ValueError):
    """The URI is malformed or could escape its root (``..``, empty bucket, unknown scheme)."""


class IncompleteDatasetError(StorageError):
    """The dataset has no committed manifest (never written, or the writer died mid-way)."""


class UndeclaredDatasetError(StorageError):
    """Code running as a stage opened or committed a dataset the stage did not declare."""


# Set by the runner while a stage runs: the dataset URIs the stage declared. Dataset reads and
# commits outside them fail, so a stage cannot grow a hidden input or output.
_DECLARED: contextvars.ContextVar[tuple[str, tuple[str, ...]] | None] = contextvars.ContextVar(
    "medreason_declared_datasets", default=None)


@contextlib.contextmanager
def declared_only(stage: str, uris: Iterable[str]):
    """Within the block, only ``uris`` (and datasets inside them) may be opened or committed."""
    token = _DECLARED.set((stage, tuple(check_uri(u).rstrip("/") for u in uris)))
    try:
        yield
    finally:
        _DECLARED.reset(token)


def _check_declared(uri: str, action: str) -> None:
    scope = _DECLARED.get()
    if scope is None:
        return
    stage, allowed = scope
    uri = uri.rstrip("/")
    if not any(uri == a or uri.startswith(a + "/") for a in allowed):
        raise UndeclaredDatasetError(
            f"stage {stage} tried to {action} {uri}, which is not among its declared datasets; declare it in "
            "medreason_dist/datasets.py and in the stage's reads or writes in pipeline.py")


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


def _put_whole(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write a small file so readers see the old or the new content, never a torn one: one PUT
    on object stores, write-then-rename on local disk."""
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.{uuid.uuid4().hex[:8]}.tmp")
        with fs.open_output_stream(tmp) as f:
            f.write(data)
        fs.move(tmp, path)
    else:
        with fs.open_output_stream(path) as f:
            f.write(data)


def _data_files_under(fs: pafs.FileSystem, path: str, *, recursive: bool) -> list[pafs.FileInfo]:
    """Visible Parquet files under ``path`` (hidden ``_``/``.`` names skipped, as readers do)."""
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=recursive, allow_not_found=True))
    out = []
    for info in infos:
        if info.type != pafs.FileType.File or not info.path.endswith(".parquet"):
            continue
        rel = posixpath.relpath(info.path, path)
        if any(part.startswith(("_", ".")) for part in rel.split("/")):
            continue
        out.append(info)
    return sorted(out, key=lambda i: i.path)


class _PublishIntent(BaseModel):
    """What a commit is about to do; lets a later process finish a commit that was killed."""

    model_config = ConfigDict(extra="forbid")
    manifest: Manifest
    moves: list[tuple[str, str]]  # (source, destination) paths relative to the dataset root


def _attempt_id(attempt_path: str) -> str:
    return posixpath.basename(attempt_path.rstrip("/"))


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
    known_files: list[dict[str, Any]] | None = None,
) -> Manifest:
    """Commit the Parquet files under ``attempt_uri`` as the content of dataset ``uri``.

    Row counts and schema come from the Parquet footers, so any writer (pyarrow, Spark, Ray
    workers) can produce the files; ``known_files`` (path relative to the attempt, rows, bytes,
    sha256, as the workers that wrote them recorded) spares reading those files here. See the
    module docstring for the protocol.
    """
    uri = check_uri(uri)
    _check_declared(uri, "commit")
    attempt_uri = check_uri(attempt_uri)
    fs, root = filesystem(uri, options)
    _, attempt_path = filesystem(attempt_uri, options)
    recover(uri, options)  # a commit killed earlier finishes first, so its files are accounted for
    sources = [i.path for i in _data_files_under(fs, attempt_path, recursive=True)]
    if not sources:  # an empty dataset still needs its schema for readers: a zero-row file
        schema = schema if schema is not None else pa.schema([])
        fs.create_dir(attempt_path, recursive=True)
        empty = posixpath.join(attempt_path, "part-00000.parquet")
        pq.write_table(schema.empty_table(), empty, filesystem=fs)
        sources = [empty]
    tag = _attempt_id(attempt_path)
    entries: list[FileEntry] = []
    moves: list[tuple[str, str]] = []
    schemas: list[pa.Schema] = []
    known = {k["path"]: k for k in known_files or []}
    for index, path in enumerate(sources):
        final = f"part-{tag}-{index:05d}.parquet"
        recorded = known.get(posixpath.relpath(path, attempt_path))
        if recorded is not None:
            entries.append(FileEntry(path=final, rows=recorded["rows"], bytes=recorded["bytes"],
                                     sha256=recorded["sha256"]))
        else:
            meta = pq.read_metadata(path, filesystem=fs)
            sha, size = _file_sha256(fs, path)
            entries.append(FileEntry(path=final, rows=meta.num_rows, bytes=size, sha256=sha))
            schemas.append(meta.schema.to_arrow_schema())
        moves.append((_relative(root, path), final))
    if schema is None:
        schema = schemas[0] if schemas else pq.read_schema(sources[0], filesystem=fs)
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
    intent = _PublishIntent(manifest=manifest, moves=moves)
    _put_whole(fs, posixpath.join(root, PUBLISH_NAME), intent.model_dump_json(by_alias=True).encode())
    _finish_publish(fs, root, intent)
    log.info("committed dataset %s rows=%d files=%d", uri, manifest.rows, len(manifest.files))
    return manifest


def _finish_publish(fs: pafs.FileSystem, root: str, intent: _PublishIntent) -> None:
    """Steps after the intent is written; safe to repeat after a crash at any point."""
    for src, dst in intent.moves:
        src_path, dst_path = posixpath.join(root, src), posixpath.join(root, dst)
        if fs.get_file_info(src_path).type == pafs.FileType.File:
            fs.move(src_path, dst_path)  # rename locally; copy + delete on object stores
        elif fs.get_file_info(dst_path).type != pafs.FileType.File:
            raise StorageError(f"cannot finish commit of {root}: {src} is gone and {dst} was never written")
    _put_whole(fs, posixpath.join(root, MANIFEST_NAME), intent.manifest.to_json().encode())
    keep = {e.path for e in intent.manifest.files}
    for info in _data_files_under(fs, root, recursive=False):
        if posixpath.basename(info.path) not in keep:  # the previous version's files
            fs.delete_file(info.path)
    fs.delete_file(posixpath.join(root, PUBLISH_NAME))
    _remove_stale_attempts(fs, root)


def recover(uri: str, options: StorageOptions | None = None) -> bool:
    """Finish a commit of ``uri`` that a killed process left half-published; True if it did."""
    fs, root = filesystem(uri, options)
    path = posixpath.join(root, PUBLISH_NAME)
    if fs.get_file_info(path).type != pafs.FileType.File:
        return False
    with fs.open_input_stream(path) as f:
        raw = f.read()
    try:
        intent = _PublishIntent.model_validate_json(raw)
    except ValueError:  # torn intent: the process died before any move, so nothing to finish
        fs.delete_file(path)
        return False
    log.warning("finishing an interrupted commit of %s", uri)
    _finish_publish(fs, root, intent)
    return True


def _remove_stale_attempts(fs: pafs.FileSystem, root: str) -> None:
    attempts = posixpath.join(root, ATTEMPTS_DIR)
    for info in fs.get_file_info(pafs.FileSelector(attempts, allow_not_found=True)):
        try:
            if info.type == pafs.FileType.Directory:
                fs.delete_dir(info.path)
            else:
                fs.delete_file(info.path)
        except OSError as err:  # another writer may be using it; harmless to leave
            log.warning("could not remove stale attempt %s: %s", info.path, err)
    try:  # the empty folder too, so a committed dataset holds only its parts and manifest
        if fs.get_file_info(attempts).type == pafs.FileType.Directory and not fs.get_file_info(
                pafs.FileSelector(attempts, allow_not_found=True)):
            fs.delete_dir(attempts)
    except OSError as err:
        log.warning("could not remove %s: %s", attempts, err)


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
        _check_declared(self.uri, "write")
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
    _check_declared(uri, "read")
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


def annotate_manifest(uri: str, extra: dict[str, Any], options: StorageOptions | None = None) -> Manifest:
    """Merge ``extra`` into a committed manifest (one PUT: readers see the old or the new one)."""
    manifest = read_manifest(uri, options)
    manifest.extra = {**manifest.extra, **extra}
    fs, root = filesystem(uri, options)
    _put_whole(fs, posixpath.join(root, MANIFEST_NAME), manifest.to_json().encode())
    return manifest


def is_committed(uri: str, options: StorageOptions | None = None) -> bool:
    try:
        read_manifest(uri, options)
        return True
    except IncompleteDatasetError:
        return False


class DatasetFiles(BaseModel):
    """What a reader opens: a committed dataset's manifest files, or a plain Parquet folder's."""

    model_config = ConfigDict(extra="forbid")
    uri: str
    files: list[str]  # full URIs
    rows: int
    content_hash: str
    committed: bool  # False: a plain folder written by another tool (no manifest)


def _plain_identity(infos: list[pafs.FileInfo], root: str) -> str:
    digest = hashlib.sha256()
    for info in infos:
        digest.update(f"{_relative(root, info.path)}:{info.size}:{info.mtime_ns}\n".encode())
    return "plain:" + digest.hexdigest()


def describe(uri: str, options: StorageOptions | None = None) -> DatasetFiles:
    """The files, row count and content identity of a dataset, committed or plain.

    A folder without a manifest but with visible Parquet files (any tool's output, hive
    partitions included) is read as it is; its identity is derived from the files' paths,
    sizes and modification times. A folder with neither raises :class:`IncompleteDatasetError`.
    """
    uri = check_uri(uri)
    try:
        manifest = read_manifest(uri, options)
    except IncompleteDatasetError as missing:
        fs, root = filesystem(uri, options)
        infos = _data_files_under(fs, root, recursive=True) if fs.get_file_info(root).type == \
            pafs.FileType.Directory else []
        if not infos:
            raise missing
        rows = sum(pq.read_metadata(i.path, filesystem=fs).num_rows for i in infos)
        return DatasetFiles(uri=uri, files=[_to_uri(uri, i.path) for i in infos], rows=rows,
                            content_hash=_plain_identity(infos, root), committed=False)
    return DatasetFiles(uri=uri, files=[join(uri, e.path) for e in manifest.files], rows=manifest.rows,
                        content_hash=manifest.content_hash, committed=True)


def is_readable(uri: str, options: StorageOptions | None = None) -> bool:
    """Whether :func:`read_table` would find data: a committed dataset or a plain Parquet folder."""
    try:
        describe(uri, options)
        return True
    except IncompleteDatasetError:
        return False


def content_identity(uri: str, options: StorageOptions | None = None) -> str | None:
    """The content hash a fingerprint uses for an input (None when absent)."""
    try:
        return describe(uri, options).content_hash
    except IncompleteDatasetError:
        return None


def dataset_files(uri: str, options: StorageOptions | None = None) -> list[str]:
    return describe(uri, options).files


def read_table(
    uri: str, columns: list[str] | None = None, options: StorageOptions | None = None
) -> pa.Table:
    """Read exactly the committed files of a dataset (never a half-written attempt), or every
    Parquet file of a plain folder."""
    info = describe(uri, options)
    fs, _ = filesystem(uri, options)
    paths = [filesystem(f, options)[1] for f in info.files]
    missing = [p for p in paths if fs.get_file_info(p).type != pafs.FileType.File]
    if missing:
        raise IncompleteDatasetError(f"dataset {uri} lists files that are gone: {missing[:3]}")
    tables = [pq.read_table(p, filesystem=fs, columns=columns) for p in paths]
    table = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
    if table.num_rows != info.rows:
        raise IncompleteDatasetError(
            f"dataset {uri} has {table.num_rows} rows but its manifest says {info.rows}"
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
