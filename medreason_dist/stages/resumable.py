"""Row-level resume for streaming stages.

A stage hands over its input rows (each with a unique ``key``) and a function that turns a Ray
Dataset of rows into a Ray Dataset of results (one result row per input row). Results are
streamed back in small batches and each batch is written as one Parquet *progress part* under
``<out>/.progress/<fingerprint>/``. A part is a single object PUT on S3/GCS and a write-then-
rename on local disk, so it is either whole or absent. On a re-run the keys found in progress
parts are skipped, so a stage killed mid-way only redoes the rows it had not finished.

When every key is done the parts are split into the stage's output dataset (rows without an
error) and its rejects dataset (rows with a reason), both committed with manifests; then the
progress parts are removed.
"""

from __future__ import annotations

import logging
import os
import posixpath
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from medreason_dist import storage
from medreason_dist.console import report_progress

log = logging.getLogger(__name__)

REJECT_SCHEMA = pa.schema(
    [("key", pa.string()), ("id", pa.string()), ("stage", pa.string()), ("reason", pa.string()),
     ("detail", pa.string())]
)


@dataclass
class ResumableResult:
    output: storage.Manifest
    rejects: storage.Manifest
    resumed_rows: int
    processed_rows: int


def _progress_dir(out_uri: str, fingerprint: str) -> str:
    return storage.join(out_uri, ".progress", fingerprint)


def _read_parts(progress_uri: str, options) -> list[pa.Table]:
    fs, root = storage.filesystem(progress_uri, options)
    tables = []
    for info in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True)):
        if info.type != pafs.FileType.File or not info.path.endswith(".parquet"):
            continue
        try:
            tables.append(pq.read_table(info.path, filesystem=fs))
        except Exception as err:  # a torn local write from a killed process: redo those rows
            log.warning("discarding unreadable progress part %s: %s", info.path, err)
            fs.delete_file(info.path)
    return tables


def _write_part(progress_uri: str, table: pa.Table, options) -> None:
    fs, root = storage.filesystem(progress_uri, options)
    fs.create_dir(root, recursive=True)
    name = f"part-{uuid.uuid4().hex}.parquet"
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = posixpath.join(root, "." + name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, posixpath.join(root, name))
    else:  # one PUT: object stores publish it whole or not at all
        pq.write_table(table, posixpath.join(root, name), filesystem=fs)


def run_resumable(
    *,
    rows: pa.Table,
    process: Callable[["ray.data.Dataset"], "ray.data.Dataset"],  # noqa: F821
    error_column: str,
    out_uri: str,
    rejects_uri: str,
    stage: str,
    fingerprint: str,
    options: storage.StorageOptions | None = None,
    key: str = "key",
    batch_rows: int = 16,
    token_columns: dict[str, str] | None = None,
    extra: dict | None = None,
    finalize: Callable[[pa.Table], pa.Table] | None = None,
    force: bool = False,
) -> ResumableResult:
    """Process ``rows`` with ``process`` unless already done (``force``: redo all); commit output + rejects."""
    import ray

    if rows.num_rows and len(set(rows.column(key).to_pylist())) != rows.num_rows:
        raise ValueError(f"stage {stage}: input column {key!r} is not unique")
    if force:  # recompute every row: saved progress and a committed output do not count
        storage.delete_dir(storage.join(out_uri, ".progress"), options)
    elif _already_committed(out_uri, rejects_uri, fingerprint, options):
        out, rej = storage.read_manifest(out_uri, options), storage.read_manifest(rejects_uri, options)
        log.info("stage %s: already committed with this fingerprint", stage)
        return ResumableResult(out, rej, rows.num_rows, 0)
    progress = _progress_dir(out_uri, fingerprint)
    parts = _read_parts(progress, options)
    done = set()
    for part in parts:
        done.update(part.column(key).to_pylist())
    todo_mask = pc.invert(pc.is_in(rows.column(key), value_set=pa.array(sorted(done), pa.string())))
    todo = rows.filter(todo_mask) if done else rows
    log.info("stage %s: %d rows, %d already done, %d to process", stage, rows.num_rows,
             rows.num_rows - todo.num_rows, todo.num_rows)
    if todo.num_rows:
        # One block per progress part, so results stream back (and are saved) as they finish
        # instead of arriving all at once at the end.
        blocks = [todo.slice(i, batch_rows) for i in range(0, todo.num_rows, batch_rows)]
        result = process(ray.data.from_arrow(blocks))
        done_rows = rows.num_rows - todo.num_rows
        report_progress(stage, done_rows, rows.num_rows)
        for batch in result.iter_batches(batch_size=batch_rows, batch_format="pyarrow"):
            if batch.num_rows:
                _write_part(progress, batch, options)
                parts.append(batch)
                done_rows += batch.num_rows
                report_progress(stage, done_rows, rows.num_rows)
    table = pa.concat_tables(parts, promote_options="permissive") if parts else pa.table({key: pa.array([], pa.string())})
    # Keep only keys of this input (a changed input under the same fingerprint is impossible,
    # but a duplicated part after a crash between write and rename is not) and one row per key.
    table = _first_per_key(table, key)
    missing = set(rows.column(key).to_pylist()) - set(table.column(key).to_pylist())
    if missing:
        raise RuntimeError(f"stage {stage}: {len(missing)} rows produced no result, e.g. {sorted(missing)[:3]}")
    if rows.num_rows == 0:  # nothing ran: keep the input's columns, with empty result columns
        table = rows.append_column(error_column, pa.nulls(0, pa.string())).append_column(
            error_column + "_detail", pa.nulls(0, pa.string()))
    elif finalize is not None:
        table = finalize(table)
    errors = table.column(error_column)
    ok = table.filter(pc.is_null(errors))
    bad = table.filter(pc.invert(pc.is_null(errors)))
    detail_col = error_column + "_detail"
    rejects = pa.table({
        "key": bad.column(key).cast(pa.string()),
        "id": bad.column("id").cast(pa.string()) if "id" in bad.column_names else bad.column(key).cast(pa.string()),
        "stage": pa.array([stage] * bad.num_rows, pa.string()),
        "reason": bad.column(error_column).cast(pa.string()),
        "detail": bad.column(detail_col).cast(pa.string()) if detail_col in bad.column_names
        else pa.nulls(bad.num_rows, pa.string()),
    }, schema=REJECT_SCHEMA)
    reasons = Counter(rejects.column("reason").to_pylist())
    tokens = {}
    for name, column in (token_columns or {}).items():
        if column in table.column_names:
            tokens[name] = int(pc.sum(pc.fill_null(table.column(column), 0)).as_py() or 0)
    rej_manifest = storage.write_table(rejects_uri, rejects, stage=stage + ".rejects", config_hash=fingerprint,
                                       rejects=dict(reasons), options=options)
    out_manifest = storage.write_table(out_uri, ok, stage=stage, config_hash=fingerprint, rejects=dict(reasons),
                                       tokens=tokens, extra=dict(extra or {}, rows_in=rows.num_rows),
                                       options=options)
    storage.delete_dir(storage.join(out_uri, ".progress"), options)
    return ResumableResult(out_manifest, rej_manifest, rows.num_rows - todo.num_rows, todo.num_rows)


def _already_committed(out_uri: str, rejects_uri: str, fingerprint: str, options) -> bool:
    for uri in (rejects_uri, out_uri):
        if not storage.is_committed(uri, options) or storage.read_manifest(uri, options).config_hash != fingerprint:
            return False
    return True


def _first_per_key(table: pa.Table, key: str) -> pa.Table:
    keys = table.column(key).to_pylist()
    seen: set = set()
    keep = []
    for i, k in enumerate(keys):
        if k not in seen:
            seen.add(k)
            keep.append(i)
    return table.take(pa.array(keep, pa.int64())) if len(keep) != table.num_rows else table
