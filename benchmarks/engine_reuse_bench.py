"""Engine reuse: three consecutive `run_llm` calls on one shared engine vs an engine per call.

Prints one JSON line. Both arms run the same three LLM steps of the pipeline (extract with its
JSON schema, verify with its JSON schema, a free-text eval answer), ``--rows`` rows each, greedy,
on the packaged SmolLM2-135M with the default config's `llm` settings, in one local Ray:

* ``shared``   — inside ``medreason_dist.llm.serve.shared_engines()``: the first call starts one
  vLLM engine as a Ray Serve deployment (its start-up is timed by serve.py), every call goes
  through ``ServeDeploymentProcessorConfig``; the engine is deleted at the end;
* ``per_call`` — ``llm.shared_engine: false``: each call builds ``vLLMEngineProcessorConfig`` and
  so starts (and stops) its own engine actor.

Engine start-ups are counted and timed. ``shared``: the whole ``serve.run`` as serve.py records
it (Serve controller, scheduling, replica start, vLLM import, model load, KV cache, warm-up).
``per_call``: from Ray's task events (the benchmark's Ray runs the dashboard for the state API),
the constructor of each Ray Data engine actor (``vLLMEngineStageUDF``: vLLM import, model load,
KV cache, warm-up) -- without the actor's scheduling and process start, so the per-call figure
is the smaller of the two definitions. (Serve does not record task events for its replicas.)
The machine's load average is printed: on a shared 2-core host the numbers swing.

``same_results`` counts rows whose result (or error reason) is identical in both arms: the
engine, its seed and the greedy requests are the same, so the answers should be too.

    python benchmarks/engine_reuse_bench.py --rows 16 [--order shared-first|per-call-first]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _rows(n: int) -> list[dict]:
    from medreason_dist.config import load_config
    from medreason_dist.stages.common import qa_for_llm
    from medreason_dist.stages.sources import normalize_sources

    cfg = load_config(None)
    spec = [s for s in cfg.eval_sets if s.name == "medqa_test"][0]
    spec.limit = n
    rows = qa_for_llm(normalize_sources([spec], progress=False).qa).to_pylist()
    for r in rows:
        r["reasoning_without_conclusion"] = f"The findings are most consistent with {r['answer_text']}."
    return rows[:n]


def _steps():
    from medreason_dist.llm.prompts import extract_prompt, verify_prompt
    from medreason_dist.llm.schemas import ChosenOption, ExtractedEntities
    from medreason_dist.stages.evaluate import eval_prompt

    greedy = {"temperature": 0.0, "top_p": 1.0}
    return [
        ("extract", extract_prompt, ExtractedEntities, {**greedy, "max_tokens": 96, "repetition_penalty": 1.15}),
        ("verify", verify_prompt, ChosenOption, {**greedy, "max_tokens": 16}),
        ("answer", eval_prompt, None, {**greedy, "max_tokens": 48}),
    ]


def _call(settings, rows, step, prompt, model, sampling):
    import pyarrow as pa
    import ray

    from medreason_dist.llm.engine import output_columns, run_llm

    t0 = time.perf_counter()
    out = run_llm(ray.data.from_arrow(pa.Table.from_pylist(rows)), settings=settings, build_prompt=prompt,
                  output_model=model, sampling=sampling, step=step).take_all()
    seconds = time.perf_counter() - t0
    cols = output_columns(step)
    results = {r["key"]: (r[cols["result"]], r[cols["error"]]) for r in out}
    assert len(out) == len(rows) == len(results), "every row exactly once"
    ok = sum(1 for _, err in results.values() if err is None)
    return seconds, ok, results


def _engine_inits(pattern: str) -> list[tuple[str, float]]:
    """(task id, seconds) of finished actor constructors whose name contains ``pattern`` (state API)."""
    try:
        import ray
        from ray.util.state import list_tasks

        # This Ray, by address: other Ray clusters may run on the same host.
        tasks = list_tasks(address=ray.get_runtime_context().gcs_address,
                           filters=[("state", "=", "FINISHED"), ("type", "=", "ACTOR_CREATION_TASK")],
                           detail=True, limit=10000, raise_on_missing_output=False)
    except Exception as e:  # dashboard missing: no measurement rather than no benchmark
        print(f"state API unavailable: {e}", file=sys.stderr)
        return []
    return sorted((t.task_id, (t.end_time_ms - t.start_time_ms) / 1000.0) for t in tasks
                  if pattern in (t.name or "") and t.start_time_ms and t.end_time_ms)


def _new_inits(pattern: str, seen: set[str], wait_s: float = 30.0) -> list[float]:
    """Start-ups of this call: task events reach the state API a few seconds late."""
    deadline = time.monotonic() + wait_s
    while True:
        fresh = [(tid, sec) for tid, sec in _engine_inits(pattern) if tid not in seen]
        if fresh or time.monotonic() > deadline:
            seen.update(tid for tid, _ in fresh)
            return [round(sec, 2) for _, sec in fresh]
        time.sleep(2)


def _arm(settings, rows, shared: bool) -> dict:
    from medreason_dist.llm import serve as llm_serve

    llm_serve.reset_startups()
    calls, results = [], {}
    seen = {tid for tid, _ in _engine_inits("")}
    t0 = time.perf_counter()
    if shared:
        with llm_serve.shared_engines():
            for step, prompt, model, sampling in _steps():
                before = len(llm_serve.engine_startups())
                seconds, ok, res = _call(settings, rows, step, prompt, model, sampling)
                started = llm_serve.engine_startups()[before:]
                startup = sum(s["seconds"] for s in started)
                calls.append({"step": step, "call_s": round(seconds, 2), "startup_s": round(startup, 2),
                              "work_s": round(seconds - startup, 2), "ok": ok})
                results[step] = res
        startups = llm_serve.engine_startups()
    else:
        settings = settings.model_copy(update={"shared_engine": False})
        for step, prompt, model, sampling in _steps():
            seconds, ok, res = _call(settings, rows, step, prompt, model, sampling)
            inits = _new_inits("vLLMEngineStageUDF", seen)
            calls.append({"step": step, "call_s": round(seconds, 2), "engine_init_s": inits, "ok": ok})
            results[step] = res
        startups = []
    total = time.perf_counter() - t0
    return {"total_s": round(total, 2), "calls": calls, "startups": startups, "results": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--order", choices=["shared-first", "per-call-first"], default="shared-first")
    args = ap.parse_args()

    import ray

    from medreason_dist.config import load_config
    from medreason_dist.ray_runtime import configure_ray_data, worker_env

    cfg = load_config(None)
    rows = _rows(args.rows)
    import socket

    with socket.socket() as sock:  # other Ray clusters on this host may hold the default port
        sock.bind(("127.0.0.1", 0))
        dashboard_port = sock.getsockname()[1]
    ray.init(address="local", num_cpus=cfg.ray.num_cpus, include_dashboard=True, dashboard_port=dashboard_port,
             log_to_driver=False, runtime_env={"env_vars": worker_env()})
    configure_ray_data(False)
    try:
        arms = {}
        order = [True, False] if args.order == "shared-first" else [False, True]
        for shared in order:
            arms["shared" if shared else "per_call"] = _arm(cfg.llm, rows, shared)
    finally:
        ray.shutdown()

    sh, pc = arms["shared"], arms["per_call"]
    same = sum(1 for step in sh["results"] for k, v in sh["results"][step].items() if pc["results"][step].get(k) == v)
    pc_inits = [sec for c in pc["calls"] for sec in c["engine_init_s"]]
    differ = [f"{step}:{k}" for step in sh["results"] for k, v in sh["results"][step].items()
              if pc["results"][step].get(k) != v]
    ok_startups = [s for s in sh["startups"] if s["ok"]]
    print(json.dumps({
        "bench": "engine_reuse",
        "model": cfg.llm.model,
        "rows_per_call": len(rows),
        "steps": [c["step"] for c in sh["calls"]],
        "order": args.order,
        "cpus": os.cpu_count(),
        "loadavg_1m_end": round(os.getloadavg()[0], 2),
        "shared": {
            "total_s": sh["total_s"],
            "engine_startups": len(ok_startups),
            "engine_startup_s": [s["seconds"] for s in ok_startups],  # serve.run, as serve.py records it
            "failed_startups": [s["error"] for s in sh["startups"] if not s["ok"]],
            "call_s": [c["call_s"] for c in sh["calls"]],
            "work_s": [c["work_s"] for c in sh["calls"]],
            "ok_rows": [c["ok"] for c in sh["calls"]],
        },
        "per_call": {
            "total_s": pc["total_s"],
            "engine_startups": len(pc_inits),
            "engine_init_s": pc_inits,  # vLLMEngineStageUDF construction per call (task events)
            "call_s": [c["call_s"] for c in pc["calls"]],
            "ok_rows": [c["ok"] for c in pc["calls"]],
        },
        "saved_s": round(pc["total_s"] - sh["total_s"], 2),
        "startup_s_saved": round(sum(pc_inits) - sum(s["seconds"] for s in ok_startups), 2),
        "same_results": f"{same}/{sum(len(v) for v in sh['results'].values())}",
        "different_rows": differ[:5],
    }))


if __name__ == "__main__":
    main()
