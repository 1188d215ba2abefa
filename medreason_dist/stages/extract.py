"""Stage `extract`: typed medical entities of each question and its answer (LLM, JSON schema)."""

from __future__ import annotations

import pyarrow as pa

from medreason_dist.config import Config
from medreason_dist.llm.prompts import extract_prompt
from medreason_dist.llm.schemas import ExtractedEntities
from medreason_dist.stages.common import LlmFn, qa_for_llm, run_llm_rows
from medreason_dist.stages.resumable import ResumableResult

STEP = "extract"


def extract_entities(cfg: Config, qa: pa.Table, *, out_uri: str, rejects_uri: str, fingerprint: str,
                     llm_fn: LlmFn, force: bool = False) -> ResumableResult:
    rows = qa_for_llm(qa)
    if cfg.reason.limit:
        rows = rows.slice(0, cfg.reason.limit)
    return run_llm_rows(cfg, llm_fn, rows, step=STEP, prompt=extract_prompt, output_model=ExtractedEntities,
                        sampling=cfg.reason.extract, out_uri=out_uri, rejects_uri=rejects_uri, stage=STEP,
                        fingerprint=fingerprint, force=force)
