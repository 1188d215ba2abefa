"""The LLM stages of literature mining (search, screen, extract), shard by shard on workers.

Each is one pass of the engine layer over a stored dataset through :func:`run_sharded`: rows
never reach the driver, finished shards have completion markers (a killed stage resumes), and
every input row ends in the output or in the rejects with a reason. Where the answer schema
depends on the review (screening: one property per criterion; extraction: the protocol's
fields), each row names its answer group and the engine layer constrains it to that group's
schema, all in one engine pass; the driver only reads the (small) protocols dataset to build
the schemas.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Callable

import pyarrow as pa

from medreason_dist import storage
from medreason_dist.literature.extraction import chunk_text, extraction_model, merge_extractions
from medreason_dist.literature.prompts import SearchQueries, check_search, extract_prompt, screen_prompt, search_prompt
from medreason_dist.literature.protocol import Protocol
from medreason_dist.literature.records import parse_number
from medreason_dist.literature.screening import as_answer, criteria_model, score
from medreason_dist.stages.common import LlmFn, step_sampling, token_columns, with_column
from medreason_dist.stages.resumable import ResumableResult

SEARCH, SCREEN, EXTRACT = "leads_search", "leads_screen", "leads_extract"
GROUP = "answer_group"  # rows of one group share a prompt builder and an answer schema


def read_protocols(uri: str, options) -> dict[str, Protocol]:
    table = storage.read_table(uri, columns=["review_id", "protocol_json"], options=options)
    return {r["review_id"]: Protocol.model_validate_json(r["protocol_json"]) for r in table.to_pylist()}


def _grouped(cfg, llm_fn: LlmFn, *, step: str, sampling, groups: dict[str, tuple[Callable, type]]):
    """A ``process`` for run_sharded: one engine pass in which each row is asked with its
    group's prompt and constrained to its group's answer schema (``GROUP`` column)."""
    settings = cfg.llm
    params = step_sampling(settings, sampling, cfg.run.seed)
    prompts = {key: prompt for key, (prompt, _) in groups.items()}
    models = {key: model for key, (_, model) in groups.items()}

    def build(row: dict) -> list[dict[str, str]]:
        return prompts[row[GROUP]](row)

    def process(ds):
        return llm_fn(ds, settings=settings, build_prompt=build, output_model=models, sampling=params, step=step,
                      model_key=GROUP)

    return process


def _run(cfg, input_uri: str, process, *, step: str, out_uri: str, rejects_uri: str, fingerprint: str,
         force: bool, **kwargs) -> ResumableResult:
    from medreason_dist.stages.sharded import run_sharded

    return run_sharded(input_uri=input_uri, process=process, error_column=f"{step}_error", out_uri=out_uri,
                       rejects_uri=rejects_uri, stage=step, fingerprint=fingerprint, options=cfg.storage,
                       shard_rows=cfg.leads.batch_rows, token_columns=token_columns(step),
                       light_cpus=cfg.llm.light_stage_cpus, force=force, **kwargs)


def _errors(table: pa.Table, step: str) -> tuple[list, list]:
    detail = f"{step}_error_detail"
    return (table.column(f"{step}_error").to_pylist(),
            table.column(detail).to_pylist() if detail in table.column_names else [None] * table.num_rows)


# -- search -------------------------------------------------------------------------------------


def _search_prepare(table: pa.Table) -> pa.Table:
    table = table.append_column("key", table.column("review_id"))
    return table.append_column(GROUP, pa.array(["search"] * table.num_rows, pa.string()))


def _search_prompt(row: dict) -> list[dict[str, str]]:
    return search_prompt(Protocol.model_validate_json(row["protocol_json"]))


def _search_finalize(table: pa.Table) -> pa.Table:
    errors, details = _errors(table, SEARCH)
    results = table.column(f"{SEARCH}_result").to_pylist()
    cols: dict[str, list] = {"pubmed_query": [], "ctgov_cond": [], "ctgov_intr": [], "ctgov_term": []}
    for i, text in enumerate(results):
        answer = SearchQueries.model_validate_json(text) if errors[i] is None else None
        if answer is not None and (why := check_search(answer)) is not None:
            errors[i], details[i], answer = "query_grammar", why, None  # refused: the grammar says why
        cols["pubmed_query"].append(answer.pubmed if answer else None)
        for key in ("cond", "intr", "term"):
            cols[f"ctgov_{key}"].append((getattr(answer.ctgov, key) or None) if answer else None)
    table = table.drop_columns([c for c in ("protocol_json", "included_titles", GROUP) if c in table.column_names])
    for name, values in cols.items():
        table = with_column(table, name, values, pa.string())
    table = with_column(table, f"{SEARCH}_error", errors, pa.string())
    return with_column(table, f"{SEARCH}_error_detail", details, pa.string())


def generate_queries(cfg, protocols_uri: str, *, out_uri: str, rejects_uri: str, fingerprint: str, llm_fn: LlmFn,
                     force: bool = False) -> ResumableResult:
    process = _grouped(cfg, llm_fn, step=SEARCH, sampling=cfg.leads.search.sampling,
                       groups={"search": (_search_prompt, SearchQueries)})
    return _run(cfg, protocols_uri, process, step=SEARCH, out_uri=out_uri, rejects_uri=rejects_uri,
                fingerprint=fingerprint, force=force, prepare=_search_prepare, finalize=_search_finalize)


# -- screening ----------------------------------------------------------------------------------

LABEL_TYPE = pa.list_(pa.struct([("criterion", pa.string()), ("kind", pa.string()), ("label", pa.string()),
                                 ("rationale", pa.string())]))


def _criteria_key(protocol: Protocol) -> str:
    return ",".join(c.id for c in protocol.criteria())


def _screen_prepare(table: pa.Table, protocols: dict[str, Protocol], mode: str) -> pa.Table:
    reviews = table.column("review_id").to_pylist()
    keys = [f"{r}|{rid}" for r, rid in zip(reviews, table.column("record_id").to_pylist())]
    texts = table.column("full_text").to_pylist()
    modes = ["full_text" if mode == "full_text" and t else "title_abstract" for t in texts]
    table = table.append_column("key", pa.array(keys, pa.string()))
    table = table.append_column("id", table.column("record_id"))  # what a reject row names
    table = table.append_column("screen_mode", pa.array(modes, pa.string()))
    return table.append_column(GROUP, pa.array([_criteria_key(protocols[r]) for r in reviews], pa.string()))


def _screen_prompt(protocols: dict[str, Protocol], max_chars: int):
    def build(row: dict) -> list[dict[str, str]]:
        text = row["full_text"] if row["screen_mode"] == "full_text" else None
        return screen_prompt(protocols[row["review_id"]], row, full_text=text, max_chars=max_chars)

    return build


def _screen_finalize(protocols: dict[str, Protocol], threshold: float):
    def finalize(table: pa.Table) -> pa.Table:
        errors, _ = _errors(table, SCREEN)
        results = table.column(f"{SCREEN}_result").to_pylist()
        reviews = table.column("review_id").to_pylist()
        labels, scores, decisions = [], [], []
        for i, text in enumerate(results):
            if errors[i] is not None:
                labels.append(None), scores.append(None), decisions.append(None)
                continue
            criteria = protocols[reviews[i]].criteria()
            kinds = {c.id: c.kind for c in criteria}
            answer = as_answer(json.loads(text))
            labels.append([{"criterion": lab.criterion, "kind": kinds[lab.criterion], "label": lab.label,
                            "rationale": lab.rationale} for lab in answer.labels])
            scores.append(score(answer, criteria))
            decisions.append(scores[-1] >= threshold)
        table = table.drop_columns([c for c in ("full_text", GROUP, f"{SCREEN}_result") if c in table.column_names])
        table = with_column(table, "labels", labels, LABEL_TYPE)
        table = with_column(table, "score", scores, pa.float64())
        return with_column(table, "predicted_include", decisions, pa.bool_())

    return finalize


def _screen_counts(table: pa.Table) -> dict[str, int]:
    decided = [d for d in table.column("predicted_include").to_pylist() if d is not None]
    return {"predicted_include": sum(decided), "predicted_exclude": len(decided) - sum(decided)}


def screen_records(cfg, records_uri: str, protocols_uri: str, *, out_uri: str, rejects_uri: str, fingerprint: str,
                   llm_fn: LlmFn, force: bool = False) -> ResumableResult:
    protocols = read_protocols(protocols_uri, cfg.storage)
    s = cfg.leads.screen
    groups = {}
    for protocol in protocols.values():
        groups.setdefault(_criteria_key(protocol), (_screen_prompt(protocols, s.max_chars),
                                                    criteria_model(protocol.criteria())))
    process = _grouped(cfg, llm_fn, step=SCREEN, sampling=s.sampling, groups=groups)
    return _run(cfg, records_uri, process, step=SCREEN, out_uri=out_uri, rejects_uri=rejects_uri,
                fingerprint=fingerprint, force=force,
                prepare=lambda t: _screen_prepare(t, protocols, s.mode),
                finalize=_screen_finalize(protocols, s.threshold), count_fn=_screen_counts,
                extra={"mode": s.mode, "threshold": s.threshold})


# -- extraction ---------------------------------------------------------------------------------

CHARACTERISTIC_TYPE = pa.list_(pa.struct([
    ("field", pa.string()), ("reported", pa.bool_()), ("value", pa.string()), ("value_number", pa.float64()),
    ("evidence", pa.string())]))
ARM_TYPE = pa.list_(pa.struct([("label", pa.string()), ("type", pa.string()), ("description", pa.string()),
                               ("intervention_names", pa.list_(pa.string())), ("evidence", pa.string())]))
PARTICIPANT_TYPE = pa.list_(pa.struct([
    ("measure", pa.string()), ("param_type", pa.string()), ("unit", pa.string()), ("group", pa.string()),
    ("value", pa.float64()), ("reported", pa.bool_()), ("evidence", pa.string())]))
RESULT_TYPE = pa.list_(pa.struct([
    ("outcome", pa.string()), ("param_type", pa.string()), ("unit", pa.string()), ("time_frame", pa.string()),
    ("group", pa.string()), ("value", pa.float64()), ("reported", pa.bool_()), ("evidence", pa.string())]))


def approx_tokens(text: str) -> int:
    """About 4 tokens per 3 words for English prose with a BPE tokenizer; a chunk that still
    overflows the context is a ``prompt_too_long`` reject, never cut silently."""
    return math.ceil(len(text.split()) * 4 / 3)


def _extract_prepare(budget: int, reviews: set[str]):
    def prepare(table: pa.Table) -> pa.Table:
        rows = []
        for r in table.to_pylist():
            if not r.get("full_text") or r["review_id"] not in reviews:
                # Extraction reads full texts of reviews with extraction fields; the other records
                # are screened, not extracted.
                continue
            chunks = chunk_text(r["full_text"], budget, approx_tokens)
            for i, chunk in enumerate(chunks, 1):
                rows.append({"key": f"{r['review_id']}|{r['record_id']}|{i}", "id": r["record_id"],
                             "review_id": r["review_id"], "record_id": r["record_id"], "pmid": r["pmid"],
                             "title": r["title"], "full_text": r["full_text"], "chunk": i, "chunks": len(chunks),
                             "chunk_text": chunk, GROUP: r["review_id"]})
        schema = pa.schema([("key", pa.string()), ("id", pa.string()), ("review_id", pa.string()),
                            ("record_id", pa.string()), ("pmid", pa.string()), ("title", pa.string()),
                            ("full_text", pa.string()), ("chunk", pa.int32()), ("chunks", pa.int32()),
                            ("chunk_text", pa.string()), (GROUP, pa.string())])
        return pa.Table.from_pylist(rows, schema=schema)

    return prepare


def _extract_prompt(protocol: Protocol):
    def build(row: dict) -> list[dict[str, str]]:
        return extract_prompt(protocol, row["chunk_text"], chunk=row["chunk"], chunks=row["chunks"])

    return build


def _characteristics(merged: dict, protocol: Protocol) -> list[dict]:
    out = []
    for f in protocol.fields:
        answer = merged["characteristics"].get(f.name) or {"reported": False, "value": None, "evidence": None}
        value = answer.get("value") if answer.get("reported") else None
        out.append({"field": f.name, "reported": bool(answer.get("reported")) and value is not None,
                    "value": None if value is None else str(value),
                    "value_number": parse_number(value) if f.type in ("number", "integer") else None,
                    "evidence": answer.get("evidence") if value is not None else None})
    return out


def _extract_finalize(protocols: dict[str, Protocol]):
    def finalize(table: pa.Table) -> pa.Table:
        errors, details = _errors(table, EXTRACT)
        rows = table.to_pylist()
        by_record: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(rows):
            by_record[f"{r['review_id']}|{r['record_id']}"].append(i)
        out = []
        for key, idx in by_record.items():
            first = rows[idx[0]]
            ok = [rows[i] for i in sorted(idx, key=lambda i: rows[i]["chunk"]) if errors[i] is None]
            failed = [i for i in idx if errors[i] is not None]
            row = {"key": key, "id": first["record_id"], "review_id": first["review_id"],
                   "record_id": first["record_id"], "pmid": first["pmid"], "title": first["title"],
                   "chunks": first["chunks"], "chunks_failed": len(failed),
                   f"{EXTRACT}_input_tokens": sum(rows[i].get(f"{EXTRACT}_input_tokens") or 0 for i in idx),
                   f"{EXTRACT}_output_tokens": sum(rows[i].get(f"{EXTRACT}_output_tokens") or 0 for i in idx),
                   "characteristics": None, "arms": None, "participants": None, "results": None,
                   "conflicts": None, "unsupported": None,
                   f"{EXTRACT}_error": None, f"{EXTRACT}_error_detail": None}
            if not ok:  # no chunk could be read: the record is a reject with its first chunk's reason
                row[f"{EXTRACT}_error"], row[f"{EXTRACT}_error_detail"] = errors[failed[0]], details[failed[0]]
            else:
                merged, counts = merge_extractions([json.loads(r[f"{EXTRACT}_result"]) for r in ok],
                                                   first["full_text"])
                row.update(characteristics=_characteristics(merged, protocols[first["review_id"]]),
                           arms=merged["arms"], participants=merged["participants"], results=merged["results"],
                           conflicts=counts["conflicts"], unsupported=counts["unsupported"])
            out.append(row)
        schema = pa.schema([("key", pa.string()), ("id", pa.string()), ("review_id", pa.string()),
                            ("record_id", pa.string()), ("pmid", pa.string()), ("title", pa.string()),
                            ("chunks", pa.int32()), ("chunks_failed", pa.int32()),
                            (f"{EXTRACT}_input_tokens", pa.int64()), (f"{EXTRACT}_output_tokens", pa.int64()),
                            ("characteristics", CHARACTERISTIC_TYPE), ("arms", ARM_TYPE),
                            ("participants", PARTICIPANT_TYPE), ("results", RESULT_TYPE),
                            ("conflicts", pa.int32()), ("unsupported", pa.int32()),
                            (f"{EXTRACT}_error", pa.string()), (f"{EXTRACT}_error_detail", pa.string())])
        return pa.Table.from_pylist(out, schema=schema)

    return finalize


def extract_studies(cfg, records_uri: str, protocols_uri: str, *, out_uri: str, rejects_uri: str,
                    fingerprint: str, llm_fn: LlmFn, force: bool = False) -> ResumableResult:
    protocols = read_protocols(protocols_uri, cfg.storage)
    e = cfg.leads.extract
    groups = {rid: (_extract_prompt(p), extraction_model(p)) for rid, p in protocols.items() if p.fields}
    if not groups:
        from medreason_dist.runner.contract import StageEmpty

        raise StageEmpty("no protocol lists extraction fields; nothing to extract")
    process = _grouped(cfg, llm_fn, step=EXTRACT, sampling=e.sampling, groups=groups)
    return _run(cfg, records_uri, process, step=EXTRACT, out_uri=out_uri, rejects_uri=rejects_uri,
                fingerprint=fingerprint, force=force, prepare=_extract_prepare(e.chunk_tokens, set(groups)),
                finalize=_extract_finalize(protocols))
