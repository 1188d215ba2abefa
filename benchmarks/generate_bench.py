"""Throughput of the `generate` stage's LLM step vs vLLM alone vs one request at a time.

Prints one JSON line. All arms use the packaged model, the same prompts (the generate stage's
prompt for N vendored MedQA test questions), the stage's JSON schema (structured outputs) and
the stage's sampling settings from the config (``reason.generate``):

* ``pipeline``  — our engine layer (`run_llm`: Ray Data + ray.data.llm + vLLM, continuous
  batching), excluding engine start-up, which is measured separately (a 1-row run);
* ``vllm``      — `vllm.LLM.generate` on the whole list of prompts in one call, same engine
  settings (incl. the cpu profile's environment, e.g. reserved cores);
* ``sequential``— the anchors' way: one request at a time in a loop, timed on the first
  ``--sequential-sample`` prompts. It runs on the same engine as ``vllm`` and, when the config
  changes vLLM's CPU defaults, also on an engine with vLLM's defaults; the speed-up is taken
  against the faster of the two, so the baseline is never handicapped by our tuning.

    python benchmarks/generate_bench.py --n 64 --sequential-sample 8 [--set llm.x=y ...]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _prompts(n: int) -> list[dict]:
    from medreason_dist.config import load_config
    from medreason_dist.stages.common import qa_for_llm
    from medreason_dist.stages.sources import normalize_sources

    cfg = load_config(None, ["eval_sets.0.limit=1"])
    spec = [s for s in cfg.eval_sets if s.name == "medqa_test"][0]
    spec.limit = n
    rows = qa_for_llm(normalize_sources([spec], progress=False).qa).to_pylist()
    for r in rows:
        # MedQA test questions are not linked to the demo KG: the pathless prompt variant.
        r["kept_paths_text_json"] = "[]"
        r["n_kept_paths"] = 0
    return rows


def _pipeline_run(rows, cfg, sampling):
    import pyarrow as pa
    import ray

    from medreason_dist.llm.engine import run_llm
    from medreason_dist.llm.prompts import generate_prompt
    from medreason_dist.llm.schemas import GeneratedReasoning

    start = time.perf_counter()
    ds = run_llm(ray.data.from_arrow(pa.Table.from_pylist(rows)), settings=cfg.llm, build_prompt=generate_prompt,
                 output_model=GeneratedReasoning, sampling=sampling, step="generate")
    out = pa.concat_tables(list(ds.iter_batches(batch_size=None, batch_format="pyarrow")))
    wall = time.perf_counter() - start
    return wall, int(sum(x or 0 for x in out.column("generate_output_tokens").to_pylist())), \
        sum(1 for e in out.column("generate_error").to_pylist() if e)


def _engine(cfg, env: dict[str, str]):
    """A vllm.LLM with the engine settings of ``cfg.llm`` (cpu profile) and ``env`` applied."""
    from vllm import LLM

    from medreason_dist.llm.engine import vllm_processor_config
    from medreason_dist.llm.vllm_spec import engine_model_source

    for key in ("VLLM_CPU_OMP_THREADS_BIND", "VLLM_CPU_NUM_OF_RESERVED_CPU"):
        os.environ.pop(key, None)
    os.environ.update(env)  # read by vLLM's engine process when it starts
    source = engine_model_source(cfg.llm)
    kwargs = dict(vllm_processor_config(cfg.llm, source).engine_kwargs)
    kwargs.pop("task_type", None)  # ray.data.llm's own key, not a vLLM engine argument
    t0 = time.perf_counter()
    llm = LLM(model=source, **kwargs)
    return llm, time.perf_counter() - t0


def _sequential(llm, texts, params) -> tuple[float, float]:
    """(output tokens/s, seconds per request) sending one request at a time."""
    llm.reset_prefix_cache()  # a fresh question's prompt is not cached; earlier arms cached these
    t0 = time.perf_counter()
    tokens = sum(len(llm.generate([t], params, use_tqdm=False)[0].outputs[0].token_ids) for t in texts)
    wall = time.perf_counter() - t0
    return tokens / wall, wall / len(texts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--sequential-sample", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=None, help="default: reason.generate.max_tokens")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from medreason_dist.config import load_config
    from medreason_dist.llm.engine import json_schema_of
    from medreason_dist.llm.vllm_spec import cpu_engine_env, engine_model_source
    from medreason_dist.llm.prompts import generate_prompt
    from medreason_dist.llm.schemas import GeneratedReasoning
    from medreason_dist.ray_runtime import ensure_ray
    from medreason_dist.stages.common import step_sampling

    cfg = load_config(None, [f"llm.batch_size={args.n}", *args.set])
    if cfg.llm.profile != "cpu":
        raise SystemExit("generate_bench measures the cpu profile (vllm-cpu)")
    if args.max_tokens:
        cfg.reason.generate.max_tokens = args.max_tokens
    sampling = step_sampling(cfg.llm, cfg.reason.generate, cfg.run.seed)
    rows = _prompts(args.n)
    ensure_ray(cfg.ray)

    # (1) our pipeline. Engine start-up = a 1-row run with max_tokens=1.
    startup_wall, _, _ = _pipeline_run(rows[:1], cfg, dict(sampling, max_tokens=1))
    pipe_wall, pipe_tokens, pipe_errors = _pipeline_run(rows, cfg, sampling)
    pipe_net = max(pipe_wall - startup_wall, 1e-9)
    import ray

    ray.shutdown()

    # (2) vLLM alone, same engine settings, all prompts in one call; (3) one at a time.
    from transformers import AutoTokenizer
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    tok = AutoTokenizer.from_pretrained(engine_model_source(cfg.llm))
    texts = [tok.apply_chat_template(generate_prompt(r), tokenize=False, add_generation_prompt=True) for r in rows]
    params = SamplingParams(**sampling, structured_outputs=StructuredOutputsParams(
        json=json.dumps(json_schema_of(GeneratedReasoning))))
    env = cpu_engine_env(cfg.llm.cpu)
    llm, vllm_startup = _engine(cfg, env)
    llm.generate(texts[:1], SamplingParams(max_tokens=2), use_tqdm=False)  # warm-up, as the pipeline's 1-row run
    llm.reset_prefix_cache()
    t0 = time.perf_counter()
    outs = llm.generate(texts, params, use_tqdm=False)
    vllm_wall = time.perf_counter() - t0
    vllm_tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    k = min(args.sequential_sample, len(texts))
    seq = {"same_engine": _sequential(llm, texts[:k], params)}
    # Prefill alone (max_tokens=1), batched and one at a time: prompt processing gains nothing
    # from batching when it is compute-bound (CPU), which caps the speed-up below.
    prefill = SamplingParams(max_tokens=1)
    llm.reset_prefix_cache()
    t0 = time.perf_counter()
    llm.generate(texts, prefill, use_tqdm=False)
    prefill_batched_s = (time.perf_counter() - t0) / len(texts)
    llm.reset_prefix_cache()
    t0 = time.perf_counter()
    for t in texts[:k]:
        llm.generate([t], prefill, use_tqdm=False)
    prefill_single_s = (time.perf_counter() - t0) / k
    if env:
        del llm
        gc.collect()
        llm, _ = _engine(cfg, {})
        llm.generate(texts[:1], SamplingParams(max_tokens=2), use_tqdm=False)
        seq["vllm_default_engine"] = _sequential(llm, texts[:k], params)
    seq_tps, seq_s_per_request = max(seq.values())

    pipe_tps = pipe_tokens / pipe_net
    vllm_tps = vllm_tokens / vllm_wall
    print(json.dumps({
        "bench": "generate", "model": cfg.llm.model, "n_prompts": len(rows), "sampling": sampling,
        "structured_outputs": "GeneratedReasoning", "engine_env": env,
        "pipeline_output_tokens": pipe_tokens, "pipeline_wall_s": round(pipe_wall, 2),
        "pipeline_engine_startup_s": round(startup_wall, 2), "pipeline_tokens_per_s": round(pipe_tps, 1),
        "pipeline_row_errors": pipe_errors,
        "vllm_output_tokens": vllm_tokens, "vllm_wall_s": round(vllm_wall, 2),
        "vllm_engine_startup_s": round(vllm_startup, 2), "vllm_tokens_per_s": round(vllm_tps, 1),
        "sequential_prompts_timed": k, "sequential_tokens_per_s": {a: round(v[0], 1) for a, v in seq.items()},
        "prompt_tokens_mean": round(sum(len(tok(t, add_special_tokens=False).input_ids) for t in texts) / len(texts), 1),
        "output_tokens_mean": round(vllm_tokens / len(texts), 1),
        "prefill_s_per_prompt": {"batched": round(prefill_batched_s, 4), "one_at_a_time": round(prefill_single_s, 4)},
        # Even if batched decoding cost nothing, batching cannot beat this: a sequential request's
        # time over the batched prefill time per prompt.
        "speedup_ceiling_free_decode": round(seq_s_per_request / prefill_batched_s, 2),
        "efficiency_vs_vllm": round(pipe_tps / vllm_tps, 3), "speedup_vs_sequential": round(pipe_tps / seq_tps, 2),
        "targets": {"efficiency_vs_vllm": 0.85, "speedup_vs_sequential": 8},
    }))


if __name__ == "__main__":
    main()
