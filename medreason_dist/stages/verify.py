"""Stage `verify`: answer the question again from the reasoning alone (its conclusion removed).

Multiple choice: the chosen letter is compared with the gold letter in code. Free text: an LLM
judge decides. Rows that disagree are rejected as ``answer_mismatch``. The survivors form the
SFT dataset, exported as Parquet and as JSONL that Hugging Face ``datasets`` loads.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from medreason_dist import storage
from medreason_dist.config import Config
from medreason_dist.llm.prompts import PROMPT_VERSION, verify_free_text_prompt, verify_prompt
from medreason_dist.llm.schemas import ChosenOption, JudgeVerdict
from medreason_dist.stages.common import LlmFn, run_llm_sharded, with_column
from medreason_dist.stages.generate import strip_conclusion
from medreason_dist.stages.resumable import ResumableResult
from medreason_dist.version import code_version

STEP = "verify"

SFT_SCHEMA = pa.schema([
    ("id", pa.string()), ("source", pa.string()), ("split", pa.string()), ("question", pa.string()),
    ("options", pa.map_(pa.string(), pa.string())), ("options_json", pa.string()), ("answer_text", pa.string()), ("answer_idx", pa.string()),
    ("reasoning", pa.string()), ("paths_used_json", pa.string()), ("entity_links_json", pa.string()),
    ("pathless", pa.bool_()), ("provenance_json", pa.string()),
])


def _compare(kind: str):
    def finalize(table: pa.Table) -> pa.Table:
        errors = table.column(f"{STEP}_error").to_pylist()
        details = table.column(f"{STEP}_error_detail").to_pylist()
        results = table.column(f"{STEP}_result").to_pylist()
        gold = table.column("answer_idx").to_pylist()
        for i, res in enumerate(results):
            if errors[i] is not None:
                continue
            parsed = json.loads(res)
            if kind == "mc" and parsed["answer"] != gold[i]:
                errors[i], details[i] = "answer_mismatch", f"reasoning supports {parsed['answer']}, gold {gold[i]}"
            elif kind == "free" and not parsed["correct"]:
                errors[i], details[i] = "answer_mismatch", "judge: reasoning does not reach the reference answer"
        table = with_column(table, f"{STEP}_error", errors, pa.string())
        return with_column(table, f"{STEP}_error_detail", details, pa.string())

    return finalize


def _rows_of_kind(table: pa.Table, kind: str) -> pa.Table:
    """The multiple-choice (``mc``) or free-text rows of a generated batch, ready for the judge."""
    mc = pc.invert(pc.is_null(table.column("answer_idx")))
    rows = table.filter(mc if kind == "mc" else pc.invert(mc))
    return with_column(rows, "reasoning_without_conclusion",
                       [strip_conclusion(t) for t in rows.column("generate_result").to_pylist()], pa.string())


def verify_rows(cfg: Config, generated_uri: str, *, out_uri: str, rejects_uri: str, free_out_uri: str,
                free_rejects_uri: str, fingerprint: str, llm_fn: LlmFn, force: bool = False) -> list[ResumableResult]:
    """Verify the generated dataset at ``generated_uri``: multiple-choice and free-text rows, on workers."""
    from functools import partial

    results = []
    for kind, prompt, model, out, rejects in (
            ("mc", verify_prompt, ChosenOption, out_uri, rejects_uri),
            ("free", verify_free_text_prompt, JudgeVerdict, free_out_uri, free_rejects_uri)):
        results.append(run_llm_sharded(
            cfg, llm_fn, generated_uri, step=STEP, prompt=prompt, output_model=model, sampling=cfg.reason.verify,
            out_uri=out, rejects_uri=rejects, stage=STEP if kind == "mc" else STEP + ".free_text",
            fingerprint=fingerprint, finalize=_compare(kind), force=force, prepare=partial(_rows_of_kind, kind=kind),
        ))
    return results


def build_sft(cfg: Config, verified: pa.Table, fingerprint: str) -> pa.Table:
    provenance = json.dumps({"model": cfg.llm.served_model_name, "prompt_version": PROMPT_VERSION,
                             "config_hash": fingerprint, "code_version": code_version()})
    rows = []
    for r in verified.to_pylist():
        rows.append({
            "id": r["id"], "source": r["source"], "split": r["split"], "question": r["question"],
            "options": list(json.loads(r["options_json"] or "{}").items()),
            "options_json": r["options_json"], "answer_text": r["answer_text"], "answer_idx": r["answer_idx"],
            "reasoning": r["generate_result"].strip(), "paths_used_json": r["kept_paths_json"],
            "entity_links_json": r["links_json"], "pathless": bool(r["pathless"]), "provenance_json": provenance,
        })
    return pa.Table.from_pylist(rows, schema=SFT_SCHEMA)


def export_jsonl(table: pa.Table, uri: str, options=None) -> None:
    """JSONL with plain fields (options as an object, paths as a list) for `datasets.load_dataset`."""
    lines = []
    for r in table.to_pylist():
        lines.append(json.dumps({
            "id": r["id"], "source": r["source"], "question": r["question"],
            "options": json.loads(r["options_json"] or "{}"), "answer": r["answer_text"],
            "answer_idx": r["answer_idx"], "reasoning": r["reasoning"],
            "paths": [p["text"] for p in json.loads(r["paths_used_json"] or "[]")],
            "entity_links": json.loads(r["entity_links_json"] or "[]"), "pathless": r["pathless"],
            "provenance": json.loads(r["provenance_json"]),
        }, ensure_ascii=False))
    storage.write_bytes(uri, ("\n".join(lines) + ("\n" if lines else "")).encode(), options)


def collect_rejects(ctx) -> pa.Table:
    """Every QA row a reasoning stage dropped, with its stage and reason."""
    from medreason_dist.datasets import REASON_REJECTS
    from medreason_dist.stages.resumable import REJECT_SCHEMA

    tables = [ctx.read(ref).cast(REJECT_SCHEMA) for ref in REASON_REJECTS]
    return pa.concat_tables(tables) if tables else REJECT_SCHEMA.empty_table()


def _sum_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    # A loop, not Counter addition: Counter drops zero counts, which the manifest keeps.
    total: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return total


def verify_and_build_sft(ctx, *, llm_fn: LlmFn) -> storage.Manifest:
    """The verify stage: verify both kinds of rows, build the SFT dataset (+ JSONL), gather all
    rejects of the reasoning stages. ``ctx`` is the runner's StageContext."""
    from collections import Counter

    from medreason_dist import datasets as D
    from medreason_dist.stages.generate import cites_path

    cfg, opts = ctx.config, ctx.options
    results = verify_rows(cfg, ctx.uri(D.GENERATE), out_uri=ctx.uri(D.VERIFIED), rejects_uri=ctx.uri(D.VERIFY_REJECTS),
                          free_out_uri=ctx.uri(D.VERIFIED_FREE_TEXT),
                          free_rejects_uri=ctx.uri(D.VERIFY_REJECTS_FREE_TEXT), fingerprint=ctx.fingerprint,
                          llm_fn=llm_fn, force=ctx.force)
    verified = pa.concat_tables([ctx.read(D.VERIFIED), ctx.read(D.VERIFIED_FREE_TEXT)], promote_options="permissive")
    sft = build_sft(cfg, verified, ctx.fingerprint)
    jsonl_uri = storage.join(ctx.uri(D.SFT_JSONL), "sft.jsonl")
    export_jsonl(sft, jsonl_uri, opts)
    all_rejects = collect_rejects(ctx)
    storage.write_table(ctx.uri(D.REJECTS), all_rejects, stage="reason.rejects", config_hash=ctx.fingerprint,
                        rejects=dict(Counter(all_rejects.column("reason").to_pylist())), options=opts)
    citing = sum(cites_path(r["reasoning"], r["paths_used_json"]) for r in sft.to_pylist())
    return storage.write_table(
        ctx.uri(D.SFT), sft, stage="verify", config_hash=ctx.fingerprint,
        rejects=_sum_counts([r.rejects.rejects for r in results]),
        tokens=_sum_counts([r.output.tokens for r in results]),
        extra={"rows_in": sum(r.output.extra.get("rows_in", 0) for r in results), "citing_path_rows": int(citing),
               "pathless_rows": int(sum(sft.column("pathless").to_pylist())), "jsonl": jsonl_uri},
        options=opts)
