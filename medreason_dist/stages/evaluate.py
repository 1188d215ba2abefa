"""Stage `eval`: multiple-choice benchmarks through the same engine layer as generation.

Each model answers every item of every configured evaluation set (resumable per model); the
answers are parsed tolerantly and scored per benchmark with a 95% interval. Models are compared
side by side in one results table (e.g. the base student vs the fine-tuned one).
"""

from __future__ import annotations

import json
import logging

import pyarrow as pa

from medreason_dist import storage
from medreason_dist.config import Config, StepSampling
from medreason_dist.eval.prompts import build_mc_messages
from medreason_dist.eval.score import score_predictions, write_results
from medreason_dist.stages.common import LlmFn, qa_for_llm, run_llm_rows, with_column

log = logging.getLogger(__name__)
STEP = "eval"


def eval_prompt(row: dict) -> list[dict[str, str]]:
    return build_mc_messages({"question": row["question"], "options": json.loads(row["options_json"] or "{}")})


def eval_rows(qa: pa.Table, limit_per_benchmark: int | None) -> pa.Table:
    """QA rows keyed by (benchmark, position): benchmarks may repeat an item on purpose."""
    rows = qa_for_llm(qa)
    keys, keep = [], []
    seen: dict[str, int] = {}
    for i, source in enumerate(rows.column("source").to_pylist()):
        n = seen.get(source, 0)
        seen[source] = n + 1
        if limit_per_benchmark is None or n < limit_per_benchmark:
            keep.append(i)
            keys.append(f"{source}#{n}")
    rows = rows.take(pa.array(keep, pa.int64()))
    return with_column(rows, "key", keys, pa.string())


def evaluate_models(cfg: Config, eval_qa: pa.Table, models: dict[str, str], *, results_uri: str, items_uri: str,
                    raw_uri: str, fingerprint: str, llm_fn: LlmFn, force: bool = False) -> storage.Manifest:
    rows = eval_rows(eval_qa, cfg.eval.limit_per_benchmark)
    sampling = StepSampling(temperature=0.0, max_tokens=cfg.eval.max_tokens)  # greedy
    by_key = {r["key"]: r for r in rows.to_pylist()}
    answered = []
    tokens: dict[str, int] = {}
    for name, ref in models.items():
        res = run_llm_rows(cfg, llm_fn, rows, step=STEP, prompt=eval_prompt, output_model=None, sampling=sampling,
                           settings=cfg.llm.model_copy(update={"model": ref}),
                           out_uri=storage.join(raw_uri, name), rejects_uri=storage.join(raw_uri, name + "_errors"),
                           stage=f"eval.{name}", fingerprint=storage.config_hash_of([fingerprint, name, ref]), force=force)
        for k, v in res.output.tokens.items():
            tokens[f"{name}.{k}"] = v
        for r in storage.read_table(storage.join(raw_uri, name), options=cfg.storage).to_pylist():
            answered.append(dict(r, model=name, options=json.loads(r["options_json"] or "{}")))
        # Items the engine could not answer count as wrong (and are reported as unparsed).
        for r in storage.read_table(storage.join(raw_uri, name + "_errors"), options=cfg.storage).to_pylist():
            base = by_key[r["key"]]
            answered.append(dict(base, model=name, options=json.loads(base["options_json"] or "{}"),
                                 **{f"{STEP}_error": r["reason"], f"{STEP}_result": None}))
    result = score_predictions(answered, output_column=f"{STEP}_result", error_column=f"{STEP}_error")
    return write_results(results_uri, items_uri, result, config_hash=fingerprint,
                         extra={"models": models, "tokens": tokens}, options=cfg.storage)
