"""Shard-level resume for LLM steps whose rows never pass through the driver.

The driver splits the input dataset into *shards* — row ranges of its Parquet files, known from
the manifest and the files' footers without reading a row — and hands Ray Data a list of shard
descriptors. Workers do the rest:

    shard descriptors ─► ShardReader (worker: reads its rows, ``prepare``, writes .expect/K)
                      ─► process (the LLM step: ray.data.llm, on workers)
                      ─► ShardWriter (actor: gathers a shard's rows; when all arrived, ``finalize``,
                         writes shard-K.parquet to the output's and the rejects' attempt
                         folders, then the completion marker .done/K.json)

What comes back to the driver is one small row per finished shard (counts). A rerun with the
same fingerprint skips every shard with a marker, so a killed stage redoes only unfinished
shards. When every shard has its marker, the driver commits the two attempt folders with the
sizes and hashes the writers recorded (no data file is opened by the driver) and the stage is
done. Every input row ends exactly once in the output or in the rejects, with its reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import posixpath
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from medreason_dist import storage
from medreason_dist.console import report_progress
from medreason_dist.stages.resumable import REJECT_SCHEMA, ResumableResult

log = logging.getLogger(__name__)

SHARD_COLUMN = "_shard"
_DONE = ".done"
_EXPECT = ".expect"

TableFn = Callable[[pa.Table], pa.Table]


@dataclass(frozen=True)
class Shard:
    index: int
    file: str  # full URI of the input Parquet file
    start: int
    stop: int


# Stages that fan a QA row out into several LLM questions (link: entities, prune: path groups)
# put the QA row itself and its questions in one shard, told apart by a ``row_kind`` column; only
# rows of the asking kind reach the engine, the others come back as prompt errors (by design) and
# the stage's ``finalize`` folds everything back into one output row per QA row.
ROW_KIND = "row_kind"
CARRIED = "row"  # the QA row, carried through the engine untouched


class NotForTheEngine(Exception):
    """Raised by a prompt builder for a shard row that is carried, not asked."""


def ask_only(kind: str, prompt):
    """A prompt builder that asks ``prompt`` for rows of ``kind`` and carries every other row."""

    def build(row: dict) -> list[dict[str, str]]:
        if row[ROW_KIND] != kind:
            raise NotForTheEngine(row[ROW_KIND])
        return prompt(row)

    return build


def with_carried_rows(rows: pa.Table, questions: pa.Table | None) -> pa.Table:
    """A shard's QA rows (marked carried) followed by its question rows."""
    carried = rows.append_column(ROW_KIND, pa.array([CARRIED] * rows.num_rows, pa.string()))
    if questions is None or questions.num_rows == 0:
        return carried
    return pa.concat_tables([carried, questions], promote_options="permissive")


def plan_shards(input_uri: str, shard_rows: int, options=None, limit: int | None = None) -> list[Shard]:
    """Row ranges of the input's files, ``shard_rows`` each (the last of a file may be shorter);
    deterministic for given content, so a rerun finds the same shards."""
    info = storage.describe(input_uri, options)
    shards: list[Shard] = []
    taken = 0
    for file_uri in info.files:
        fs, path = storage.filesystem(file_uri, options)
        rows = pq.read_metadata(path, filesystem=fs).num_rows
        if limit is not None:
            rows = min(rows, limit - taken)
        for start in range(0, rows, shard_rows):
            shards.append(Shard(len(shards), file_uri, start, min(start + shard_rows, rows)))
        taken += rows
        if limit is not None and taken >= limit:
            break
    return shards


def _shard_name(index: int) -> str:
    return f"shard-{index:06d}"


def _put(uri: str, data: bytes, options) -> None:
    storage.write_bytes(uri, data, options)  # one PUT on object stores; whole or absent


class ShardReader:
    """Ray Data callable: one shard descriptor in, that shard's prepared rows out."""

    def __init__(self, *, prepare: TableFn | None, attempt_uri: str, options):
        self.prepare, self.attempt_uri, self.options = prepare, attempt_uri, options

    def __call__(self, batch: pa.Table) -> pa.Table:
        tables = []
        for d in batch.to_pylist():
            fs, path = storage.filesystem(d["file"], self.options)
            table = pq.read_table(path, filesystem=fs).slice(d["start"], d["stop"] - d["start"])
            if self.prepare is not None:
                table = self.prepare(table)
            if table.num_rows == 0:  # nothing will reach the writer: the shard is done already
                _put(storage.join(self.attempt_uri, _DONE, _shard_name(d["index"]) + ".json"),
                     json.dumps(_marker(d["index"], table.schema)).encode(), self.options)
                continue
            # The writer learns how many rows to wait for from here (prepare may drop rows).
            _put(storage.join(self.attempt_uri, _EXPECT, _shard_name(d["index"]) + ".json"),
                 json.dumps({"rows": table.num_rows}).encode(), self.options)
            tables.append(table.append_column(SHARD_COLUMN, pa.array([d["index"]] * table.num_rows, pa.int64())))
        return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})


def _marker(shard: int, schema: pa.Schema, rows: int = 0, ok: int = 0, rejected: int = 0, **more) -> dict:
    return {"shard": shard, "rows": rows, "ok": ok, "rejected": rejected, "reasons": {}, "tokens": {},
            "counts": {}, "schema": schema.serialize().to_pybytes().hex(), "files": {}, **more}


def _file_entry(data: bytes, rows: int, rel: str) -> dict:
    return {"path": rel, "rows": rows, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


class ShardWriter:
    """Ray Data actor: gathers each shard's result rows; a complete shard is written and marked."""

    def __init__(self, *, out_attempt: str, rejects_attempt: str, error_column: str, key: str, stage: str,
                 finalize: TableFn | None, token_columns: dict[str, str], count_fn, options):
        self.out_attempt, self.rejects_attempt = out_attempt, rejects_attempt
        self.error_column, self.key, self.stage = error_column, key, stage
        self.finalize, self.token_columns, self.count_fn, self.options = finalize, token_columns, count_fn, options
        self.pending: dict[int, list[pa.Table]] = {}
        self.expected: dict[int, int] = {}

    def _expected(self, shard: int) -> int:
        if shard not in self.expected:
            raw = storage.read_bytes(storage.join(self.out_attempt, _EXPECT, _shard_name(shard) + ".json"),
                                     self.options)
            self.expected[shard] = int(json.loads(raw)["rows"])
        return self.expected[shard]

    def __call__(self, batch: pa.Table) -> pa.Table:
        finished = []
        if batch.num_rows:
            shards = batch.column(SHARD_COLUMN)
            for shard in pc.unique(shards).to_pylist():
                self.pending.setdefault(shard, []).append(batch.filter(pc.equal(shards, shard)))
                have = sum(t.num_rows for t in self.pending[shard])
                if have >= self._expected(shard):
                    finished.append(self.write_shard(shard, pa.concat_tables(self.pending.pop(shard),
                                                                             promote_options="permissive")))
        return pa.Table.from_pylist(finished, schema=pa.schema([("shard", pa.int64()), ("ok", pa.int64()),
                                                                ("rejected", pa.int64())]))

    def write_shard(self, shard: int, table: pa.Table) -> dict:
        table = table.drop_columns([SHARD_COLUMN])
        keys = table.column(self.key).to_pylist()
        if len(set(keys)) != len(keys):
            raise ValueError(f"stage {self.stage}: shard {shard} has duplicate {self.key!r} values")
        if self.finalize is not None:
            table = self.finalize(table)
        errors = table.column(self.error_column)
        ok = table.filter(pc.is_null(errors))
        bad = table.filter(pc.invert(pc.is_null(errors)))
        detail = self.error_column + "_detail"
        rejects = pa.table({
            "key": bad.column(self.key).cast(pa.string()),
            "id": (bad.column("id") if "id" in bad.column_names else bad.column(self.key)).cast(pa.string()),
            "stage": pa.array([self.stage] * bad.num_rows, pa.string()),
            "reason": bad.column(self.error_column).cast(pa.string()),
            "detail": bad.column(detail).cast(pa.string()) if detail in bad.column_names
            else pa.nulls(bad.num_rows, pa.string()),
        }, schema=REJECT_SCHEMA)
        name = _shard_name(shard) + ".parquet"
        marker = _marker(shard, ok.schema, table.num_rows, ok.num_rows, bad.num_rows)
        marker["reasons"] = dict(Counter(rejects.column("reason").to_pylist()))
        marker["tokens"] = {n: int(pc.sum(pc.fill_null(table.column(c), 0)).as_py() or 0)
                            for n, c in self.token_columns.items() if c in table.column_names}
        marker["counts"] = self.count_fn(table) if self.count_fn else {}
        for attempt, part, kind in ((self.out_attempt, ok, "out"), (self.rejects_attempt, rejects, "rejects")):
            if part.num_rows:
                data = _parquet_bytes(part)
                _put(storage.join(attempt, name), data, self.options)
                marker["files"][kind] = _file_entry(data, part.num_rows, name)
        # The marker last: a shard without one is redone whole on the next run.
        _put(storage.join(self.out_attempt, _DONE, _shard_name(shard) + ".json"), json.dumps(marker).encode(),
             self.options)
        return {"shard": shard, "ok": ok.num_rows, "rejected": bad.num_rows}


def _markers(out_attempt: str, options) -> dict[int, dict]:
    fs, root = storage.filesystem(storage.join(out_attempt, _DONE), options)
    found = {}
    for info in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True)):
        if info.type == pafs.FileType.File and info.path.endswith(".json"):
            with fs.open_input_stream(info.path) as f:
                marker = json.loads(f.read())
            found[int(marker["shard"])] = marker
    return found


def run_sharded(
    *,
    input_uri: str,
    process: Callable[["ray.data.Dataset"], "ray.data.Dataset"],  # noqa: F821
    error_column: str,
    out_uri: str,
    rejects_uri: str,
    stage: str,
    fingerprint: str,
    options: storage.StorageOptions | None = None,
    prepare: TableFn | None = None,
    finalize: TableFn | None = None,
    count_fn: Callable[[pa.Table], dict[str, int]] | None = None,
    key: str = "key",
    shard_rows: int = 256,
    limit: int | None = None,
    token_columns: dict[str, str] | None = None,
    extra: dict | None = None,
    force: bool = False,
    empty_schema: pa.Schema | None = None,
    light_cpus: float = 0.25,
) -> ResumableResult:
    """Run ``process`` over the input dataset shard by shard on workers; commit output + rejects."""
    import ray

    out_attempt = storage.join(out_uri, storage.ATTEMPTS_DIR, fingerprint)
    rejects_attempt = storage.join(rejects_uri, storage.ATTEMPTS_DIR, fingerprint)
    if force:
        for attempt in (out_attempt, rejects_attempt):
            storage.delete_dir(attempt, options)
    elif all(storage.is_committed(u, options) and storage.read_manifest(u, options).config_hash == fingerprint
             for u in (out_uri, rejects_uri)):
        log.info("stage %s: already committed with this fingerprint", stage)
        out, rej = storage.read_manifest(out_uri, options), storage.read_manifest(rejects_uri, options)
        return ResumableResult(out, rej, out.extra.get("rows_in", 0), 0)
    shards = plan_shards(input_uri, shard_rows, options, limit)
    done = _markers(out_attempt, options)
    todo = [s for s in shards if s.index not in done]
    total = sum(s.stop - s.start for s in shards)
    resumed = sum(done[s.index]["rows"] for s in shards if s.index in done)
    log.info("stage %s: %d shards (%d rows), %d already done, %d to process", stage, len(shards), total,
             len(shards) - len(todo), len(todo))
    report_progress(stage, resumed, total)
    if todo:
        descriptors = ray.data.from_items([{"index": s.index, "file": s.file, "start": s.start, "stop": s.stop}
                                           for s in todo], override_num_blocks=len(todo))
        rows = descriptors.map_batches(ShardReader, batch_size=1, batch_format="pyarrow", num_cpus=light_cpus,
                                       fn_constructor_kwargs={"prepare": prepare, "attempt_uri": out_attempt,
                                                              "options": options},
                                       compute=ray.data.ActorPoolStrategy(size=1))
        finished = process(rows).map_batches(
            ShardWriter, batch_format="pyarrow", num_cpus=light_cpus, compute=ray.data.ActorPoolStrategy(size=1),
            fn_constructor_kwargs={"out_attempt": out_attempt, "rejects_attempt": rejects_attempt,
                                   "error_column": error_column, "key": key, "stage": stage, "finalize": finalize,
                                   "token_columns": token_columns or {}, "count_fn": count_fn, "options": options})
        processed = resumed
        for batch in finished.iter_batches(batch_format="pyarrow", batch_size=None):
            processed += int(pc.sum(batch.column("ok")).as_py() or 0) + int(pc.sum(batch.column("rejected")).as_py() or 0)
            report_progress(stage, processed, total)
        done = _markers(out_attempt, options)
    missing = [s.index for s in shards if s.index not in done]
    if missing:
        raise RuntimeError(f"stage {stage}: {len(missing)} shards produced no result, e.g. {missing[:3]}")
    markers = [done[s.index] for s in shards]
    return _commit(markers, out_uri, out_attempt, rejects_uri, rejects_attempt, stage=stage, fingerprint=fingerprint,
                   options=options, total=total, resumed=resumed, extra=extra, empty_schema=empty_schema)


def _commit(markers, out_uri, out_attempt, rejects_uri, rejects_attempt, *, stage, fingerprint, options, total,
            resumed, extra, empty_schema) -> ResumableResult:
    reasons: Counter = Counter()
    tokens: Counter = Counter()
    counts: Counter = Counter()
    for m in markers:
        reasons.update(m["reasons"])
        tokens.update(m["tokens"])
        counts.update(m["counts"])
    # The output schema of a shard that had rows (an empty shard never saw the step's columns).
    with_rows = [m for m in markers if m["files"].get("out")] or [m for m in markers if m["rows"]] or markers
    schema = pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(with_rows[0]["schema"]))) if with_rows else empty_schema
    rej = storage.commit_attempt(rejects_uri, rejects_attempt, stage=stage + ".rejects", config_hash=fingerprint,
                                 rejects=dict(reasons), schema=REJECT_SCHEMA, options=options,
                                 known_files=[m["files"]["rejects"] for m in markers if "rejects" in m["files"]])
    out = storage.commit_attempt(out_uri, out_attempt, stage=stage, config_hash=fingerprint, rejects=dict(reasons),
                                 tokens=dict(tokens), schema=schema, options=options,
                                 extra=dict(extra or {}, rows_in=total, shards=len(markers), **dict(counts)),
                                 known_files=[m["files"]["out"] for m in markers if "out" in m["files"]])
    return ResumableResult(out, rej, resumed, total - resumed)
