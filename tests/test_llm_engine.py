"""LLM engine layer: pure pre/post-processing, settings, and real runs through ray.data.llm."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Literal, Optional

import pyarrow as pa
import pytest
import ray_helpers
from ray_helpers import Verdict
from net_helpers import free_port
from pydantic import BaseModel, ValidationError

from medreason_dist.llm import engine
from medreason_dist.llm.engine import (
    ENGINE_ERROR,
    INVALID_JSON,
    OUTPUT_TRUNCATED,
    PROMPT_ERROR,
    PROMPT_TOO_LONG,
    SCHEMA_VALIDATION,
    PromptTokenizer,
    finalize_row,
    interpret_output,
    run_llm,
)
from medreason_dist.llm.settings import LLMSettings

REPO = Path(__file__).resolve().parent.parent
MODEL_CACHE = str(REPO / ".cache" / "medreason_dist")


def qa_prompt(row: dict) -> list[dict]:
    options = " ".join(f"{k}) {v}" for k, v in sorted(row["options"].items()))
    return [
        {"role": "system", "content": "You answer medical multiple-choice questions in JSON."},
        {"role": "user", "content": f"{row['question']}\nOptions: {options}"},
    ]


# --------------------------------------------------------------------------------------------
# Output interpretation


def test_valid_json_is_canonicalised():
    it = interpret_output(' {"confidence": "high",  "answer": "B"} ', Verdict)
    assert it.error is None
    assert json.loads(it.result) == {"answer": "B", "confidence": "high"}


def test_code_fenced_json_from_hosted_models_is_accepted():
    it = interpret_output('```json\n{"answer": "C", "confidence": "low"}\n```', Verdict)
    assert it.error is None and json.loads(it.result)["answer"] == "C"


@pytest.mark.parametrize(
    "text, truncated, reason",
    [
        ("The answer is B", False, INVALID_JSON),
        ('{"answer": "B", "confid', True, OUTPUT_TRUNCATED),
        ('{"answer": "E", "confidence": "high"}', False, SCHEMA_VALIDATION),
        ('{"answer": "B"}', False, SCHEMA_VALIDATION),
        ('["B", "high"]', False, SCHEMA_VALIDATION),
        ("", False, INVALID_JSON),
    ],
)
def test_bad_structured_output_becomes_a_reason(text, truncated, reason):
    it = interpret_output(text, Verdict, truncated=truncated)
    assert (it.result, it.error) == (None, reason)
    assert it.detail and len(it.detail) <= 500


def test_free_text_passes_through_and_blank_is_an_error():
    assert interpret_output("Step 1: ...", None).result == "Step 1: ..."
    assert interpret_output("  \n", None).error == "empty_output"


def test_check_messages_rejects_malformed_prompts():
    ok = engine.check_messages([{"role": "user", "content": "hi"}])
    assert ok == [{"role": "user", "content": "hi"}]
    for bad in ([], "hi", [{"role": "user"}], [{"role": "robot", "content": "x"}], [{"role": "user", "content": 3}]):
        with pytest.raises(ValueError):
            engine.check_messages(bad)


def test_length_rule_reserves_room_for_the_answer():
    assert engine.length_rejection(1000, 48, 2048) is None
    assert engine.length_rejection(2000, 48, 2048) is None
    assert "exceeds max_model_len=2048" in engine.length_rejection(2001, 48, 2048)


# --------------------------------------------------------------------------------------------
# Finalising processor rows (the shapes ray.data.llm hands back)


def _row(**extra):
    base = {"id": 7, "question": "q", "__mr_reject": None, "__mr_reject_detail": None, "__mr_prompt_ids": [1, 2]}
    base.update(extra)
    return base


def _finalize(row, profile="cpu", model=Verdict, max_tokens=32):
    return finalize_row(row, step="pick", profile=profile, output_model=model, max_tokens=max_tokens)


def test_finalize_success_keeps_original_columns_only():
    row = _row(
        generated_text='{"answer": "A", "confidence": "low"}',
        num_input_tokens=40,
        num_generated_tokens=12,
        generated_tokens=[5] * 12,
        prompt_token_ids=[1, 2],
        sampling_params={"max_tokens": 32},
        __inference_error__="",
        request_id=3,
        batch_uuid="x",
        time_taken_llm=0.1,
        params="SamplingParams(...)",
    )
    out = _finalize(row)
    assert out == {
        "id": 7,
        "question": "q",
        "pick_result": '{"answer":"A","confidence":"low"}',
        "pick_error": None,
        "pick_error_detail": None,
        "pick_input_tokens": 40,
        "pick_output_tokens": 12,
    }


def test_finalize_prompt_rejection_and_engine_error():
    rejected = _finalize(_row(__mr_reject=PROMPT_TOO_LONG, __mr_reject_detail="prompt has 9000 tokens",
                              __inference_error__="rejected before the engine: prompt_too_long"))
    assert rejected["pick_error"] == PROMPT_TOO_LONG and rejected["pick_input_tokens"] == 0
    assert rejected["pick_error_detail"] == "prompt has 9000 tokens"

    failed = _finalize(_row(__inference_error__="ValueError: boom", generated_text="", num_input_tokens=0,
                            num_generated_tokens=0))
    assert failed["pick_error"] == ENGINE_ERROR and "boom" in failed["pick_error_detail"]
    assert failed["pick_result"] is None


def test_finalize_marks_output_cut_at_max_tokens_as_truncated():
    out = _finalize(_row(generated_text='{"answer": "A", "conf', num_input_tokens=40, num_generated_tokens=32,
                         __inference_error__=""))
    assert out["pick_error"] == OUTPUT_TRUNCATED and out["pick_output_tokens"] == 32


def test_finalize_http_responses():
    ok = _finalize(_row(__inference_error__="", http_response={
        "choices": [{"message": {"content": '{"answer": "D", "confidence": "high"}'}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 9},
    }), profile="http")
    assert ok["pick_error"] is None and ok["pick_input_tokens"] == 50 and ok["pick_output_tokens"] == 9
    assert "http_response" not in ok

    err = _finalize(_row(__inference_error__="", http_response={"error": {"message": "rate limited"}}), profile="http")
    assert err["pick_error"] == ENGINE_ERROR and "rate limited" in err["pick_error_detail"]

    cut = _finalize(_row(__inference_error__="", http_response={
        "choices": [{"message": {"content": '{"answer": '}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 32},
    }), profile="http")
    assert cut["pick_error"] == OUTPUT_TRUNCATED


def test_usage_summary_counts_rejects_tokens_and_cost():
    table = pa.table({
        "pick_error": [None, "invalid_json", None, "prompt_too_long"],
        "pick_input_tokens": [100, 80, 120, 0],
        "pick_output_tokens": [10, 20, 30, 0],
    })
    settings = LLMSettings(prices={"packaged:smollm2-135m-instruct": {"input_usd_per_mtok": 1.0,
                                                                      "output_usd_per_mtok": 2.0}})
    summary = engine.usage_summary(table, "pick", settings)
    assert summary["rows"] == 4 and summary["ok"] == 2
    assert summary["rejects"] == {"invalid_json": 1, "prompt_too_long": 1}
    assert (summary["input_tokens"], summary["output_tokens"]) == (300, 60)
    assert summary["cost_usd"] == pytest.approx((300 * 1.0 + 60 * 2.0) / 1e6)


# --------------------------------------------------------------------------------------------
# Prompt step with the real packaged tokenizer


@pytest.fixture(scope="module")
def prompt_tokenizer():
    def build(row):
        if row["question"] is None:
            raise KeyError("question")
        return qa_prompt(row)

    return PromptTokenizer(step="pick", build_prompt=build, tokenizer_ref="packaged:smollm2-135m-instruct",
                           cache_dir=MODEL_CACHE, max_model_len=256, max_tokens=32, need_ids=True)


def test_prompt_step_tokenizes_and_rejects(prompt_tokenizer):
    ok_row = {"question": "Which organ makes insulin?", "options": {"A": "liver", "B": "pancreas"}}
    ok = prompt_tokenizer.prepare(ok_row)
    assert ok["__mr_reject"] is None
    assert ok["__mr_prompt_tokens"] == len(ok["__mr_prompt_ids"]) > 10
    expected_text = prompt_tokenizer.tokenizer.apply_chat_template(qa_prompt(ok_row), tokenize=False,
                                                                   add_generation_prompt=True)
    assert prompt_tokenizer.tokenizer.decode(ok["__mr_prompt_ids"]) == expected_text

    long = prompt_tokenizer.prepare({"question": "pain " * 400, "options": {"A": "x"}})
    assert long["__mr_reject"] == PROMPT_TOO_LONG and long["__mr_prompt_ids"] == []

    broken = prompt_tokenizer.prepare({"question": None, "options": {}})
    assert broken["__mr_reject"] == PROMPT_ERROR and "question" in broken["__mr_reject_detail"]


def test_prompt_step_refuses_reserved_columns(prompt_tokenizer):
    batch = pa.table({"question": ["q"], "options": [{"A": "x"}], "prompt": ["clash"]})
    with pytest.raises(ValueError, match="reserved"):
        prompt_tokenizer(batch)
    good = prompt_tokenizer(pa.table({"question": ["q"], "options": [{"A": "x"}]}))
    assert good.column("__mr_reject").to_pylist() == [None]


# --------------------------------------------------------------------------------------------
# Settings and processor configs (no engine started)


def test_settings_reject_unknown_keys_and_secrets():
    with pytest.raises(ValidationError, match="extra"):
        LLMSettings(profil="cpu")
    with pytest.raises(ValidationError, match="NAME of an environment variable"):
        LLMSettings(profile="http", http={"base_url": "http://h/v1", "api_key_env": "sk-live-123"})
    with pytest.raises(ValidationError, match="base_url"):
        LLMSettings(profile="http")
    with pytest.raises(ValidationError, match="engine_kwargs may not set"):
        LLMSettings(engine_kwargs={"max_model_len": 99})
    assert LLMSettings().estimate_cost_usd(10, 10) is None


def test_cpu_profile_config():
    s = LLMSettings(cpu={"cpus_per_engine": 2, "memory_fraction": 0.25, "omp_threads_bind": "nobind"})
    cfg = engine.vllm_processor_config(s, "/models/x")
    (bundle,) = cfg.placement_group_config["bundles"]
    assert bundle["CPU"] == 2 and not bundle.get("GPU")
    assert cfg.engine_kwargs["gpu_memory_utilization"] == 0.25
    assert cfg.engine_kwargs["max_model_len"] == 2048 and cfg.engine_kwargs["enforce_eager"] is True
    assert cfg.runtime_env == {"env_vars": {"VLLM_CPU_OMP_THREADS_BIND": "nobind"}}
    assert cfg.should_continue_on_error and cfg.accelerator_type is None

    fixed = engine.vllm_processor_config(LLMSettings(cpu={"kv_cache_gib": 1.5}), "/models/x")
    assert fixed.engine_kwargs["kv_cache_memory_bytes"] == int(1.5 * 2**30)
    assert "gpu_memory_utilization" not in fixed.engine_kwargs
    assert fixed.runtime_env is None or not fixed.runtime_env.get("env_vars")

    # The reserved-core count reaches the engine actor as vllm-cpu's env var (a string).
    reserved = engine.vllm_processor_config(LLMSettings(cpu={"reserved_cpus": 0}), "/models/x")
    assert reserved.runtime_env == {"env_vars": {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}}
    with pytest.raises(ValidationError, match="reserved_cpus"):
        LLMSettings(cpu={"reserved_cpus": -1})


def test_gpu_profile_config():
    s = LLMSettings(profile="gpu", model="meta-llama/Llama-3.1-8B-Instruct", concurrency=4,
                    gpu={"tensor_parallel_size": 2, "accelerator_type": "L4"})
    cfg = engine.vllm_processor_config(s, s.model)
    assert cfg.concurrency == 4 and cfg.accelerator_type == "L4"
    assert cfg.engine_kwargs["tensor_parallel_size"] == 2
    assert cfg.placement_group_config is None


def test_http_profile_config_reads_key_from_named_env(monkeypatch):
    s = LLMSettings(profile="http", model="gpt-x", http={"base_url": "https://api.example/v1/", "api_key_env": "MR_KEY",
                                                        "qps": 5, "max_retries": 2})
    monkeypatch.delenv("MR_KEY", raising=False)
    with pytest.raises(RuntimeError, match="MR_KEY"):
        engine.http_processor_config(s)
    monkeypatch.setenv("MR_KEY", "secret-value")
    cfg = engine.http_processor_config(s)
    assert cfg.url == "https://api.example/v1/chat/completions"
    assert cfg.headers == {"Authorization": "Bearer secret-value"}
    assert (cfg.qps, cfg.max_retries) == (5, 2)


class _Inner(BaseModel):
    name: str


class _WithOptionalSub(BaseModel):
    inner: Optional[_Inner] = None


def test_schema_that_arrow_would_corrupt_is_refused_for_http():
    fmt = engine.http_response_format("s", _WithOptionalSub.model_json_schema(), True)
    assert not engine._arrow_round_trips(fmt)
    assert engine._arrow_round_trips(engine.http_response_format("s", Verdict.model_json_schema(), True))


def test_run_llm_argument_checks():
    ds = None  # arguments are checked before the dataset is touched (and before Ray starts)
    kw = dict(settings=LLMSettings(), build_prompt=qa_prompt, output_model=None)
    with pytest.raises(ValueError, match="snake_case"):
        run_llm(ds, sampling={}, step="Bad Step", **kw)
    with pytest.raises(ValueError, match="output_model"):
        run_llm(ds, sampling={"structured_outputs": {"json": {}}}, step="s", **kw)
    with pytest.raises(ValueError, match="max_tokens"):
        run_llm(ds, sampling={"max_tokens": 4096}, step="s", **kw)


# --------------------------------------------------------------------------------------------
# Real runs inside local Ray


@pytest.fixture(scope="module")
def local_ray():
    with ray_helpers.local_ray(__name__) as ray:
        yield ray


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_vllm_cpu_structured_outputs_on_packaged_smollm2(local_ray, capsys):
    import ray.data

    rows = [{"id": i, "question": q, "options": o} for i, q, o in ray_helpers.QUESTIONS]
    rows.append({"id": "long", "question": "chest pain " * 1200, "options": {"A": "x", "B": "y"}})
    rows.append({"id": "broken", "question": "no options here", "options": None})
    settings = LLMSettings(cache_dir=MODEL_CACHE, max_model_len=2048, batch_size=8)

    started = time.monotonic()
    out = run_llm(ray.data.from_items(rows), settings=settings, build_prompt=qa_prompt, output_model=Verdict,
                  sampling={"temperature": 0.0, "max_tokens": 40}, step="pick")
    got = {r["id"]: r for r in out.take_all()}
    elapsed = time.monotonic() - started

    assert sorted(got) == sorted(r["id"] for r in rows)  # every row exactly once
    for qid, question, options in ray_helpers.QUESTIONS:
        r = got[qid]
        assert r["question"] == question and r["options"] == options  # original columns kept
        assert r["pick_error"] is None, r
        Verdict.model_validate_json(r["pick_result"])  # schema-constrained output validates
        assert r["pick_input_tokens"] > 0 and 0 < r["pick_output_tokens"] <= 40

    long = got["long"]
    assert long["pick_error"] == PROMPT_TOO_LONG and long["pick_result"] is None
    assert long["pick_input_tokens"] == 0  # never reached the engine
    assert got["broken"]["pick_error"] == PROMPT_ERROR

    summary = engine.usage_summary(pa.Table.from_pylist(list(got.values())), "pick", settings)
    assert summary["ok"] == 4 and summary["rejects"] == {PROMPT_ERROR: 1, PROMPT_TOO_LONG: 1}
    with capsys.disabled():
        print(f"\n[vllm-cpu] 6 rows incl. engine start-up: {elapsed:.1f}s; "
              f"{summary['output_tokens']} output tokens")


# A minimal OpenAI-compatible endpoint on loopback, to exercise the HTTP profile's wire format.
def _serve_chat_completions(requests: list) -> tuple[str, callable]:
    from aiohttp import web

    async def chat(request):
        body = await request.json()
        requests.append({"auth": request.headers.get("Authorization"), "body": body})
        question = body["messages"][-1]["content"]
        if "overloaded" in question:
            return web.json_response({"error": {"message": "model overloaded"}}, status=400)
        letter = "B" if "insulin" in question else "C"
        content = json.dumps({"answer": letter, "confidence": "high"})
        return web.json_response({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(question.split()), "completion_tokens": 7},
        })

    port = free_port()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    ready = threading.Event()
    state = {}

    def run():
        import asyncio

        loop = asyncio.new_event_loop()
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        state["loop"], state["runner"] = loop, runner
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)

    def stop():
        state["loop"].call_soon_threadsafe(state["loop"].stop)
        thread.join(10)

    return f"http://127.0.0.1:{port}/v1", stop


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_http_profile_against_openai_compatible_endpoint(local_ray, monkeypatch):
    import ray.data

    requests: list = []
    base_url, stop = _serve_chat_completions(requests)
    monkeypatch.setenv("MR_TEST_KEY", "k-123")
    try:
        settings = LLMSettings(profile="http", model="hosted-model", max_model_len=512,
                               http={"base_url": base_url, "api_key_env": "MR_TEST_KEY", "qps": 20,
                                     "max_retries": 1},
                               prices={"hosted-model": {"input_usd_per_mtok": 3.0, "output_usd_per_mtok": 15.0}})
        rows = [
            {"id": "a", "question": "Which organ produces insulin?", "options": {"A": "x", "B": "y"}},
            {"id": "b", "question": "Which vitamin prevents scurvy?", "options": {"C": "z"}},
            {"id": "c", "question": "overloaded question", "options": {"A": "x"}},
            {"id": "d", "question": "word " * 3000, "options": {"A": "x"}},
        ]
        out = run_llm(ray.data.from_items(rows), settings=settings, build_prompt=qa_prompt, output_model=Verdict,
                      sampling={"temperature": 0.0, "max_tokens": 32}, step="pick")
        got = {r["id"]: r for r in out.take_all()}
    finally:
        stop()

    assert json.loads(got["a"]["pick_result"]) == {"answer": "B", "confidence": "high"}
    assert got["b"]["pick_error"] is None and got["a"]["pick_output_tokens"] == 7
    assert got["c"]["pick_error"] == ENGINE_ERROR and "overloaded" in got["c"]["pick_error_detail"]
    assert got["d"]["pick_error"] == PROMPT_TOO_LONG
    assert len(requests) == 3  # the over-long prompt was never sent
    sent = requests[0]
    assert sent["auth"] == "Bearer k-123"
    assert sent["body"]["model"] == "hosted-model" and sent["body"]["max_tokens"] == 32
    assert sent["body"]["response_format"]["json_schema"]["schema"] == Verdict.model_json_schema()
    summary = engine.usage_summary(pa.Table.from_pylist(list(got.values())), "pick", settings)
    assert summary["cost_usd"] > 0


def test_http_payload_has_the_same_fields_for_asked_and_rejected_rows():
    # Ray Data merges the rows' payload structs per batch; a shard whose rows were all carried past
    # the engine used to give a payload without messages/response_format, and the merge failed.
    fmt = engine.http_response_format("pick", engine.json_schema_of(Verdict), strict=True)
    pre = engine._http_preprocess({"temperature": 0.0, "max_tokens": 8}, "m", fmt)
    asked = pre({"__mr_reject": None, "__mr_messages": json.dumps([{"role": "user", "content": "hi"}])})
    rejected = pre({"__mr_reject": engine.PROMPT_TOO_LONG, "__mr_messages": None})

    def shape(value):
        return {k: shape(v) for k, v in value.items()} if isinstance(value, dict) else type(value).__name__

    assert shape(asked["payload"]) == shape(rejected["payload"])
    assert rejected["__inference_error__"] and not asked["__inference_error__"]
    assert rejected["payload"]["messages"] == [] and asked["payload"]["messages"][0]["content"] == "hi"


class Other(BaseModel):
    """A second answer schema, for steps whose rows answer in different shapes."""

    label: Literal["YES", "NO"]


def test_rows_of_one_step_can_answer_in_their_own_schemas():
    # Per-row schemas: the engine request of each row carries its group's schema, and the
    # answer is validated against that group's model.
    models, key = {"verdict": Verdict, "other": Other}, "group"
    schemas = {k: json.dumps(engine.json_schema_of(m)) for k, m in models.items()}
    for pre in (engine._vllm_preprocess({"max_tokens": 8}, schemas, key),
                engine._serve_preprocess({"max_tokens": 8}, schemas, key)):
        rows = [pre(_row(group=g)) for g in ("verdict", "other")]
        sent = [r.get("sampling_params") or r["request_kwargs"]["sampling"] for r in rows]
        assert [json.loads(s["structured_outputs"]["json"]) for s in sent] == [
            Verdict.model_json_schema(), Other.model_json_schema()]
    ok = finalize_row(_row(group="other", generated_text='{"label": "YES"}', num_generated_tokens=3,
                           __inference_error__=""), step="pick", profile="cpu", output_model=models,
                      max_tokens=32, model_key=key)
    wrong = finalize_row(_row(group="verdict", generated_text='{"label": "YES"}', num_generated_tokens=3,
                              __inference_error__=""), step="pick", profile="cpu", output_model=models,
                         max_tokens=32, model_key=key)
    assert ok["pick_error"] is None and wrong["pick_error"] == engine.SCHEMA_VALIDATION
    with pytest.raises(ValueError, match="model_key"):
        engine.run_llm(None, settings=None, build_prompt=None, output_model=models, sampling={}, step="pick")
