"""Read raw records from JSONL, JSON, Parquet or a Hugging Face dataset, with row numbers.

Readers never raise on a bad record: they yield ``(row_number, record_or_BadRow, raw_text)``
so the caller can quarantine it. A whole file that cannot be opened is a configuration error
and raises :class:`SourceFileError` naming the file.
"""

from __future__ import annotations

import io
import json
from typing import Iterator

import pyarrow.parquet as pq

from medreason_dist import storage
from medreason_dist.config import SourceSpec, resolve_packaged
from medreason_dist.sources.schema import BadRow

Record = tuple[int, "dict | BadRow", str]


class SourceFileError(RuntimeError):
    """A configured source file is missing or unreadable; the message names it."""

    exit_code = 2  # the config names a file that is not there: a usage error, not a crash


def _format_for(spec: SourceSpec, path: str) -> str:
    if spec.format != "auto":
        return spec.format
    lowered = path.lower()
    for suffix, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"), (".parquet", "parquet")):
        if lowered.endswith(suffix):
            return fmt
    raise SourceFileError(f"source {spec.name!r}: cannot tell the format of {path}; set format:")


def _open_bytes(path: str, options: storage.StorageOptions | None) -> bytes:
    try:
        return storage.read_bytes(path, options)
    except (OSError, FileNotFoundError) as err:
        raise SourceFileError(f"cannot read source file {path}: {err}") from err


def _jsonl(data: bytes) -> Iterator[Record]:
    for number, line in enumerate(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            yield number, BadRow("malformed_json", f"{err.msg} at column {err.colno}"), line[:2000]
            continue
        if not isinstance(rec, dict):
            yield number, BadRow("not_an_object", type(rec).__name__), line[:2000]
            continue
        yield number, rec, line[:2000]


def _json(data: bytes, path: str) -> Iterator[Record]:
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as err:
        yield 0, BadRow("malformed_json", f"whole file: {err.msg} at line {err.lineno}"), data[:2000].decode(
            "utf-8", "replace")
        return
    if isinstance(doc, dict) and all(isinstance(v, dict) for v in doc.values()):
        # e.g. PubMedQA's original release: {pmid: record}
        items = [dict(v, _key=k) for k, v in doc.items()]
    elif isinstance(doc, dict) and isinstance(doc.get("data"), list):
        items = doc["data"]
    elif isinstance(doc, list):
        items = doc
    else:
        yield 0, BadRow("unrecognised_layout", f"top level of {path} is {type(doc).__name__}"), ""
        return
    for number, rec in enumerate(items, 1):
        raw = json.dumps(rec, ensure_ascii=False, default=str)[:2000]
        if isinstance(rec, dict):
            yield number, rec, raw
        else:
            yield number, BadRow("not_an_object", type(rec).__name__), raw


def _parquet(path: str, options: storage.StorageOptions | None) -> Iterator[Record]:
    fs, fs_path = storage.filesystem(path, options)
    try:
        pf = pq.ParquetFile(fs_path, filesystem=fs)
    except Exception as err:  # pyarrow raises several types for broken files
        raise SourceFileError(f"cannot read Parquet source {path}: {err}") from err
    number = 0
    for batch in pf.iter_batches(batch_size=4096):
        for rec in batch.to_pylist():
            number += 1
            yield number, rec, json.dumps(rec, ensure_ascii=False, default=str)[:2000]


def _hf(spec: SourceSpec) -> Iterator[Record]:
    import datasets  # loaded only when a config asks for a hub dataset

    hf = spec.hf
    assert hf is not None
    ds = datasets.load_dataset(hf.path, hf.name, split=hf.split, revision=hf.revision)
    for number, rec in enumerate(ds, 1):
        yield number, dict(rec), json.dumps(rec, ensure_ascii=False, default=str)[:2000]


def read_records(spec: SourceSpec, options: storage.StorageOptions | None = None) -> tuple[str, Iterator[Record]]:
    """Return ``(display_name, records)`` for a source spec."""
    if spec.format == "hf" or spec.hf is not None:
        if spec.hf is None:
            raise SourceFileError(f"source {spec.name!r}: format 'hf' needs an 'hf:' block")
        return f"hf:{spec.hf.path}", _hf(spec)
    if spec.path is None:
        raise SourceFileError(f"source {spec.name!r}: no path given")
    path = resolve_packaged(spec.path)
    fmt = _format_for(spec, path)
    if fmt == "parquet":
        return path, _parquet(path, options)
    data = _open_bytes(path, options)
    return path, (_jsonl(data) if fmt == "jsonl" else _json(data, path))
