"""Throughput of the `generate` stage's LLM step vs vLLM alone vs one request at a time.

Prints one JSON line. All three arms use the packaged model, the same prompts (the generate
stage's prompt for N vendored MedQA test questions) and the same sampling settings:

* ``pipeline``  — our engine layer (`run_llm`: Ray Data + ray.data.llm + vLLM, continuous
  batching), excluding engine start-up, which is measured separately (a 1-row run);
* ``vllm``      — `vllm.LLM.generate` on the whole list of prompts in one call;
* ``sequential``— the anchors' way: one request at a time in a loop (same vLLM engine), timed on
  a subset when ``--sequential-sample`` is smaller than N (the JSON says so).

    python benchmarks/generate_bench.py --n 64 --sequential-sample 8
"""

from __future__ import annotations

import argparse
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
        r["kept_paths_text_json"] = "[]"
        r["n_kept_paths"] = 0
    return rows


def _pipeline_run(rows, cfg, sampling):
    import pyarrow as pa
    import ray

    from medreason_dist.llm.engine import run_llm
    from medreason_dist.llm.prompts import generate_prompt

    start = time.perf_counter()
    ds = run_llm(ray.data.from_arrow(pa.Table.from_pylist(rows)), settings=cfg.llm, build_prompt=generate_prompt,
                 output_model=None, sampling=sampling, step="generate")
    out = pa.concat_tables(list(ds.iter_batches(batch_size=None, batch_format="pyarrow")))
    wall = time.perf_counter() - start
    return wall, int(sum(x or 0 for x in out.column("generate_output_tokens").to_pylist())), \
        sum(1 for e in out.column("generate_error").to_pylist() if e)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--sequential-sample", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=256)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from medreason_dist.config import load_config
    from medreason_dist.llm.prompts import generate_prompt
    from medreason_dist.ray_runtime import ensure_ray

    cfg = load_config(None, [f"llm.batch_size={args.n}"])
    sampling = {"temperature": 0.0, "max_tokens": args.max_tokens}
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
    from vllm import LLM, SamplingParams

    from medreason_dist.llm.engine import engine_model_source

    model = engine_model_source(cfg.llm)
    tok = AutoTokenizer.from_pretrained(model)
    texts = [tok.apply_chat_template(generate_prompt(r), tokenize=False, add_generation_prompt=True) for r in rows]
    t0 = time.perf_counter()
    llm = LLM(model=model, max_model_len=cfg.llm.max_model_len, dtype=cfg.llm.dtype, seed=cfg.llm.seed,
              enforce_eager=cfg.llm.cpu.enforce_eager, gpu_memory_utilization=cfg.llm.cpu.memory_fraction)
    vllm_startup = time.perf_counter() - t0
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens)
    t0 = time.perf_counter()
    outs = llm.generate(texts, params, use_tqdm=False)
    vllm_wall = time.perf_counter() - t0
    vllm_tokens = sum(len(o.outputs[0].token_ids) for o in outs)

    k = min(args.sequential_sample, len(texts))
    t0 = time.perf_counter()
    seq_tokens = 0
    for text in texts[:k]:
        seq_tokens += len(llm.generate([text], params, use_tqdm=False)[0].outputs[0].token_ids)
    seq_wall = time.perf_counter() - t0

    pipe_tps = pipe_tokens / pipe_net
    vllm_tps = vllm_tokens / vllm_wall
    seq_tps = seq_tokens / seq_wall
    print(json.dumps({
        "bench": "generate", "model": cfg.llm.model, "n_prompts": len(rows), "max_tokens": args.max_tokens,
        "pipeline_output_tokens": pipe_tokens, "pipeline_wall_s": round(pipe_wall, 2),
        "pipeline_engine_startup_s": round(startup_wall, 2), "pipeline_tokens_per_s": round(pipe_tps, 1),
        "pipeline_row_errors": pipe_errors,
        "vllm_output_tokens": vllm_tokens, "vllm_wall_s": round(vllm_wall, 2),
        "vllm_engine_startup_s": round(vllm_startup, 2), "vllm_tokens_per_s": round(vllm_tps, 1),
        "sequential_prompts_timed": k, "sequential_tokens_per_s": round(seq_tps, 1),
        "efficiency_vs_vllm": round(pipe_tps / vllm_tps, 3), "speedup_vs_sequential": round(pipe_tps / seq_tps, 2),
        "targets": {"efficiency_vs_vllm": 0.85, "speedup_vs_sequential": 8},
    }))


if __name__ == "__main__":
    main()
