"""Stage `extract`: typed medical entities of each question and its answer (LLM, JSON schema).

With ``reason.grounding: dictionary`` no model is asked: every row passes through with an empty
extraction (and zero tokens), and the link stage finds entities with the KG lexicon alone.
"""

from __future__ import annotations

import json

import pyarrow as pa

from medreason_dist.config import Config
from medreason_dist.llm.engine import output_columns
from medreason_dist.llm.prompts import extract_prompt
from medreason_dist.llm.schemas import ExtractedEntities
from medreason_dist.stages.common import LlmFn, qa_for_llm, run_llm_sharded, token_columns, with_column
from medreason_dist.stages.resumable import ResumableResult

STEP = "extract"
NOTHING_EXTRACTED = json.dumps({"question_entities": [], "answer_entities": []})


def without_extraction(rows: pa.Table) -> pa.Table:
    """The columns the LLM step would add, for a run that asks no model."""
    cols = output_columns(STEP)
    n = rows.num_rows
    rows = with_column(rows, cols["result"], [NOTHING_EXTRACTED] * n, pa.string())
    rows = with_column(rows, cols["error"], [None] * n, pa.string())
    rows = with_column(rows, cols["error_detail"], [None] * n, pa.string())
    rows = with_column(rows, cols["input_tokens"], [0] * n, pa.int64())
    return with_column(rows, cols["output_tokens"], [0] * n, pa.int64())


def extract_entities(cfg: Config, qa_uri: str, *, out_uri: str, rejects_uri: str, fingerprint: str,
                     llm_fn: LlmFn, force: bool = False) -> ResumableResult:
    """Entities of the QA dataset at ``qa_uri`` (the first ``reason.limit`` rows), on workers."""
    if cfg.reason.grounding == "dictionary":
        from medreason_dist.stages.sharded import run_sharded

        light = cfg.llm.light_stage_cpus
        return run_sharded(
            input_uri=qa_uri, process=lambda ds: ds.map_batches(without_extraction, batch_format="pyarrow",
                                                                num_cpus=light),
            error_column=f"{STEP}_error", out_uri=out_uri, rejects_uri=rejects_uri, stage=STEP,
            fingerprint=fingerprint, options=cfg.storage, shard_rows=cfg.reason.batch_rows,
            token_columns=token_columns(STEP), light_cpus=light, prepare=qa_for_llm, limit=cfg.reason.limit,
            force=force, extra={"grounding": "dictionary"})
    return run_llm_sharded(cfg, llm_fn, qa_uri, step=STEP, prompt=extract_prompt, output_model=ExtractedEntities,
                           sampling=cfg.reason.extract, out_uri=out_uri, rejects_uri=rejects_uri, stage=STEP,
                           fingerprint=fingerprint, force=force, prepare=qa_for_llm, limit=cfg.reason.limit)
