"""One vLLM engine per model for a run (medreason_dist.llm.serve) behind run_llm."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import ray_helpers
from ray_helpers import Verdict

from medreason_dist.llm import engine, vllm_spec
from medreason_dist.llm import serve as llm_serve
from medreason_dist.llm.engine import PROMPT_ERROR, PROMPT_TOO_LONG, finalize_row, run_llm
from medreason_dist.llm.settings import LLMSettings

REPO = Path(__file__).resolve().parent.parent
MODEL_CACHE = str(REPO / ".cache" / "medreason_dist")


def qa_prompt(row: dict) -> list[dict]:
    options = " ".join(f"{k}) {v}" for k, v in sorted(json.loads(row["options_json"]).items()))
    return [
        {"role": "system", "content": "You answer medical multiple-choice questions in JSON."},
        {"role": "user", "content": f"{row['question']}\nOptions: {options}"},
    ]


def topic_prompt(row: dict) -> list[dict]:
    return [{"role": "user", "content": f"In three words, what medical topic is this about? {row['question']}"}]


# --------------------------------------------------------------------------------------------
# Pure parts: the serve path's rows and their finalisation


def test_serve_preprocess_saves_columns_the_serve_stage_uses():
    pre = engine._serve_preprocess({"temperature": 0.0, "max_tokens": 8})
    row = {"id": 3, "method": "biopsy", "time_taken": 1.5, "__mr_prompt_ids": [1, 2, 3], "__mr_reject": None}
    out = pre(row)
    assert out["method"] == llm_serve.METHOD and out["dtype"] is None and out["__inference_error__"] == ""
    assert out["request_kwargs"] == {"prompt_ids": [1, 2, 3], "sampling": {"temperature": 0.0, "max_tokens": 8}}
    assert out["__mr_saved__method"] == "biopsy" and out["__mr_saved__time_taken"] == 1.5
    assert "__mr_saved__id" not in out  # only the columns the stage reads or writes
    rejected = pre({"id": 4, "__mr_prompt_ids": [], "__mr_reject": PROMPT_TOO_LONG})
    assert rejected["__inference_error__"] and "request_kwargs" not in rejected


def _serve_row(**extra):
    # What the ServeDeploymentStage hands back for one generated row (see serve.py).
    row = {"id": 7, "method": "generate_ids", "dtype": None, "time_taken": 0.4, "request_id": "0",
           "batch_uuid": "b", "__mr_serve": True, "__mr_saved__method": "biopsy", "__mr_reject": None,
           "__mr_reject_detail": None, "generated_text": '{"answer": "B", "confidence": "high"}',
           "num_input_tokens": 30, "num_generated_tokens": 9, "__mr_engine_error": "", "__inference_error__": ""}
    row.update(extra)
    return row


def test_finalize_serve_row_restores_input_columns_in_place():
    out = finalize_row(_serve_row(), step="pick", profile="cpu", output_model=Verdict, max_tokens=32)
    assert list(out)[:2] == ["id", "method"]  # the input's own column, at its place
    assert out["method"] == "biopsy" and "time_taken" not in out and "dtype" not in out
    assert json.loads(out["pick_result"]) == {"answer": "B", "confidence": "high"}
    assert (out["pick_input_tokens"], out["pick_output_tokens"]) == (30, 9)


def test_finalize_serve_engine_error_and_truncation_match_the_vllm_path():
    err = finalize_row(_serve_row(__mr_engine_error="ValueError: bad grammar", generated_text=""),
                       step="pick", profile="cpu", output_model=Verdict, max_tokens=32)
    assert err["pick_error"] == engine.ENGINE_ERROR and "bad grammar" in err["pick_error_detail"]
    assert err["pick_input_tokens"] == 0
    cut = finalize_row(_serve_row(generated_text='{"answer": "B", "conf', num_generated_tokens=32),
                       step="pick", profile="cpu", output_model=Verdict, max_tokens=32)
    assert cut["pick_error"] == engine.OUTPUT_TRUNCATED


def test_no_shared_engine_outside_a_run_or_when_switched_off():
    assert llm_serve.engine_for(LLMSettings()) is None  # no sharing scope, no engine up
    assert llm_serve.engine_for(LLMSettings(shared_engine=False)) is None
    assert llm_serve.engine_for(LLMSettings(profile="http", http={"base_url": "http://x/v1"})) is None


def test_engine_identity_follows_engine_settings_only():
    base = LLMSettings(cache_dir=MODEL_CACHE)
    key, spec = llm_serve.engine_identity(base)
    assert llm_serve.engine_identity(base.model_copy(update={"batch_size": 3}))[0] == key
    assert llm_serve.engine_identity(base.model_copy(update={"max_model_len": 1024}))[0] != key
    assert spec["engine_kwargs"] == vllm_spec.vllm_engine_spec(base)[0]


# --------------------------------------------------------------------------------------------
# Real runs: two steps through one engine


@pytest.fixture(scope="module")
def local_ray():
    # Ray's LLM package binds some loggers to the sys.stderr of its first import: import it here,
    # not under a test's capsys, whose stream is closed after the test.
    llm_serve._serve_llm()
    with ray_helpers.local_ray(__name__) as ray:
        yield ray


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_steps_share_one_engine(local_ray):
    import ray.data
    from ray import serve

    # `id`, `method` and `time_taken` are names the serve path also uses: they must survive.
    rows = [{"id": qid, "method": f"m{i}", "time_taken": float(i), "question": q, "options_json": json.dumps(o)}
            for i, (qid, q, o) in enumerate(ray_helpers.QUESTIONS)]
    rows.append({"id": "long", "method": "m", "time_taken": 0.0, "question": "chest pain " * 1200,
                 "options_json": json.dumps({"A": "x"})})
    rows.append({"id": "broken", "method": "m", "time_taken": 0.0, "question": "no options", "options_json": "nope"})
    settings = LLMSettings(cache_dir=MODEL_CACHE, max_model_len=2048, batch_size=8,
                           cpu={"kv_cache_gib": 0.5, "reserved_cpus": 0})
    llm_serve.reset_startups()
    started = time.monotonic()
    with llm_serve.shared_engines():
        pick = run_llm(ray.data.from_items(rows), settings=settings, build_prompt=qa_prompt, output_model=Verdict,
                       sampling={"temperature": 0.0, "max_tokens": 40}, step="pick").take_all()
        engine_up = llm_serve.engine_for(settings)
        topic = run_llm(ray.data.from_items(rows), settings=settings, build_prompt=topic_prompt, output_model=None,
                        sampling={"temperature": 0.0, "max_tokens": 12}, step="topic").take_all()
        startups = llm_serve.engine_startups()
        app = engine_up.app_name
        assert serve.status().applications[app].status == "RUNNING"
    elapsed = time.monotonic() - started

    assert len(startups) == 1 and startups[0]["ok"] and startups[0]["seconds"] > 0  # one start-up for two steps
    assert startups[0]["app_name"] == app
    assert app not in serve.status().applications  # stopped at the end of the run
    assert llm_serve.engine_startups()[0]["stopped_after_s"] > 0

    by_step = {"pick": {r["id"]: r for r in pick}, "topic": {r["id"]: r for r in topic}}
    for step, got in by_step.items():
        assert sorted(got) == sorted(r["id"] for r in rows)  # every row exactly once
        for i, (qid, question, _) in enumerate(ray_helpers.QUESTIONS):
            r = got[qid]
            assert (r["question"], r["method"], r["time_taken"]) == (question, f"m{i}", float(i))
            assert r[f"{step}_error"] is None, r
            assert r[f"{step}_input_tokens"] > 0 and r[f"{step}_output_tokens"] > 0
        assert got["long"][f"{step}_error"] == PROMPT_TOO_LONG and got["long"][f"{step}_input_tokens"] == 0
    for qid, *_ in ray_helpers.QUESTIONS:
        Verdict.model_validate_json(by_step["pick"][qid]["pick_result"])  # schema-constrained output
        assert by_step["topic"][qid]["topic_result"].strip()
        assert by_step["pick"][qid]["pick_output_tokens"] <= 40
    assert by_step["pick"]["broken"]["pick_error"] == PROMPT_ERROR
    assert not set(pick[0]) & {"dtype", "request_kwargs", "choices", "usage"}
    # (no capsys: Ray binds its log handlers to the stream of their first use, and capsys's
    # stream is closed after the test) -- shown with `pytest -s`.
    print(f"\n[shared engine] start-up {startups[0]['seconds']:.1f}s; two steps x {len(rows)} rows "
          f"incl. start-up: {elapsed:.1f}s")
