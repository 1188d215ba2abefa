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


def provenance_of(cfg: Config, fingerprint: str) -> str:
    return json.dumps({"model": cfg.llm.served_model_name, "prompt_version": PROMPT_VERSION,
                       "config_hash": fingerprint, "code_version": code_version()})


def sft_rows(verified: pa.Table, provenance: str) -> pa.Table:
    """SFT rows from verified rows (a batch at a time, on workers)."""
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


def build_sft(cfg: Config, verified: pa.Table, fingerprint: str) -> pa.Table:
    return sft_rows(verified, provenance_of(cfg, fingerprint))


def sft_counts(sft: pa.Table) -> pa.Table:
    """Per batch: rows whose reasoning cites a KG path, and rows without a path."""
    from medreason_dist.stages.generate import cites_path

    citing = sum(cites_path(r, p) for r, p in zip(sft.column("reasoning").to_pylist(),
                                                   sft.column("paths_used_json").to_pylist()))
    return pa.table({"citing": [int(citing)], "pathless": [int(sum(sft.column("pathless").to_pylist()))]})


def jsonl_lines(table: pa.Table) -> list[str]:
    """SFT rows as JSON lines with plain fields (options as an object, paths as a list)."""
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
    return lines


def export_jsonl(table: pa.Table, uri: str, options=None) -> None:
    """The SFT rows as one JSONL file that `datasets.load_dataset("json", ...)` reads."""
    lines = jsonl_lines(table)
    storage.write_bytes(uri, ("\n".join(lines) + ("\n" if lines else "")).encode(), options)


def _sum_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    # A loop, not Counter addition: Counter drops zero counts, which the manifest keeps.
    total: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return total


def _export_jsonl_task(sft_uri: str, jsonl_uri: str, options) -> int:
    """Runs on a worker: stream the SFT dataset into one JSONL file, batch by batch."""
    from medreason_dist import raydata

    fs, path = storage.filesystem(jsonl_uri, options)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    n = 0
    with fs.open_output_stream(path) as out:
        for batch in raydata.stream_batches(sft_uri, options):
            lines = jsonl_lines(pa.Table.from_batches([batch]))
            out.write("".join(line + "\n" for line in lines).encode())
            n += len(lines)
    return n


def verify_and_build_sft(ctx, *, llm_fn: LlmFn) -> storage.Manifest:
    """The verify stage: verify both kinds of rows, build the SFT dataset (+ JSONL) and gather all
    rejects of the reasoning stages — all on workers. ``ctx`` is the runner's StageContext."""
    from functools import partial

    import ray

    from medreason_dist import datasets as D
    from medreason_dist import raydata
    from medreason_dist.stages.resumable import REJECT_SCHEMA

    cfg, opts = ctx.config, ctx.options
    results = verify_rows(cfg, ctx.uri(D.GENERATE), out_uri=ctx.uri(D.VERIFIED), rejects_uri=ctx.uri(D.VERIFY_REJECTS),
                          free_out_uri=ctx.uri(D.VERIFIED_FREE_TEXT),
                          free_rejects_uri=ctx.uri(D.VERIFY_REJECTS_FREE_TEXT), fingerprint=ctx.fingerprint,
                          llm_fn=llm_fn, force=ctx.force)
    verified = [ctx.uri(D.VERIFIED), ctx.uri(D.VERIFIED_FREE_TEXT)]
    jsonl_uri = storage.join(ctx.uri(D.SFT_JSONL), "sft.jsonl")
    light = cfg.llm.light_stage_cpus
    manifest = raydata.transform(
        verified, ctx.uri(D.SFT), partial(sft_rows, provenance=provenance_of(cfg, ctx.fingerprint)), stage="verify",
        schema=SFT_SCHEMA, options=opts, num_cpus=light, config_hash=ctx.fingerprint,
        rejects=_sum_counts([r.rejects.rejects for r in results]), tokens=_sum_counts([r.output.tokens for r in results]),
        extra={"rows_in": sum(r.output.extra.get("rows_in", 0) for r in results), "jsonl": jsonl_uri})
    counts = {"citing_path_rows": 0, "pathless_rows": 0}
    if manifest.rows:
        per_batch = raydata.read(ctx.uri(D.SFT), opts).map_batches(sft_counts, batch_format="pyarrow", num_cpus=light)
        counts = {"citing_path_rows": int(per_batch.sum("citing")), "pathless_rows": int(per_batch.sum("pathless"))}
    ray.get(ray.remote(num_cpus=light)(_export_jsonl_task).remote(ctx.uri(D.SFT), jsonl_uri, opts))
    rejects = [ctx.uri(ref) for ref in D.REASON_REJECTS]
    reasons = _sum_counts([storage.read_manifest(u, opts).rejects for u in rejects])
    raydata.union(rejects, ctx.uri(D.REJECTS), stage="reason.rejects", schema=REJECT_SCHEMA, options=opts,
                  config_hash=ctx.fingerprint, rejects=reasons)
    return storage.annotate_manifest(ctx.uri(D.SFT), counts, opts)
