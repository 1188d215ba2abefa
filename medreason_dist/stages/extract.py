"""Stage `extract`: typed medical entities of each question and its answer (LLM, JSON schema)."""

from __future__ import annotations

import pyarrow as pa

from medreason_dist.config import Config
from medreason_dist.llm.prompts import extract_prompt
from medreason_dist.llm.schemas import ExtractedEntities
from medreason_dist.stages.common import LlmFn, qa_for_llm, run_llm_sharded
from medreason_dist.stages.resumable import ResumableResult

STEP = "extract"


def extract_entities(cfg: Config, qa_uri: str, *, out_uri: str, rejects_uri: str, fingerprint: str,
                     llm_fn: LlmFn, force: bool = False) -> ResumableResult:
    """Entities of the QA dataset at ``qa_uri`` (the first ``reason.limit`` rows), on workers."""
    return run_llm_sharded(cfg, llm_fn, qa_uri, step=STEP, prompt=extract_prompt, output_model=ExtractedEntities,
                           sampling=cfg.reason.extract, out_uri=out_uri, rejects_uri=rejects_uri, stage=STEP,
                           fingerprint=fingerprint, force=force, prepare=qa_for_llm, limit=cfg.reason.limit)
