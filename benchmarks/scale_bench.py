"""Scale of the reasoning chain: synthetic QA rows at 1k / 10k / 100k through
sources -> kg -> extract -> link -> reformat -> paths -> prune -> generate -> verify.

The LLM is ``tests/fake_openai.py``'s loopback server (in a thread of this process) answering
with ``benchmarks/synthetic_qa.py``'s deterministic model through the ``http`` engine profile;
Ray Data, storage, the embedder and Spark are real. Each size runs as its own driver process
(``medreason_dist.cli.main`` wrapped to report the driver's peak RSS, ``ru_maxrss``; Ray's
worker processes and Spark's JVM are not the driver). Per size it reports rows/s per stage (rows
of the stage's main input / the ``wall_s`` the runner records in the output manifest), total
seconds and the driver's peak RSS, and prints ONE JSON line at the end::

    python benchmarks/scale_bench.py [--sizes 1000,10000,100000] [--quick] [--out-dir DIR]
                                     [--set key=value ...] [--record]

``--quick`` runs sizes 200 and 1000 (smoke test); ``--shard-rows`` sets ``reason.batch_rows``
(default 256, the cluster configs' shard size; conf/local.yaml's 8 is sized for the CPU demo
model and costs about 2x at 2k rows); ``--record`` appends the line, the date and
the machine load to benchmarks/RESULTS.md. A failing stage prints the stage and the tail of the
driver's log; the JSON line still comes, with what was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import synthetic_qa  # noqa: E402

TARGET_RSS_RATIO = 1.3


# --------------------------------------------------------------------------------------------
# Driver mode: one pipeline run in this process, then its peak RSS


def driver(argv: list[str]) -> int:
    """Run ``medreason_dist.cli.main(argv)``; after each stage and at the end, append the peak RSS
    so far (and the stage's outcome) as a JSON line to the file named by ``$SCALE_BENCH_MARKS``
    (the run console points fd 1/2 at its log file, so stdout is not the place)."""
    from medreason_dist import cli
    from medreason_dist.runner import execute

    marks = os.environ.get("SCALE_BENCH_MARKS")

    def mark(record: dict) -> None:
        record["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if marks:
            with open(marks, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")

    inner = execute.run_stage

    def run_stage(cfg, stage, **kwargs):
        start = time.perf_counter()
        outcome = inner(cfg, stage, **kwargs)
        mark({"stage": stage.name, "status": outcome.status, "seconds": round(time.perf_counter() - start, 3),
              "detail": outcome.detail})
        return outcome

    execute.run_stage = run_stage
    code = cli.main(argv)
    mark({"end": True, "exit_code": code})
    return code


# --------------------------------------------------------------------------------------------
# Measurement


def _load() -> dict:
    one, five, fifteen = os.getloadavg()
    return {"load1": round(one, 2), "load5": round(five, 2), "load15": round(fifteen, 2), "cpus": os.cpu_count()}


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return json.dumps(_load())


def _main_input_rows(cfg, stage, kg_lines: int) -> int | None:
    """Rows of the stage's main input: its first declared read (sources: lines read; kg: csv lines)."""
    from medreason_dist import storage

    if stage.name == "sources":
        out = storage.read_manifest(cfg.dataset_uri(stage.writes[0].name), cfg.storage)
        quarantine = storage.read_manifest(cfg.dataset_uri(stage.writes[1].name), cfg.storage)
        return out.rows + quarantine.rows
    if stage.name == "kg":
        return kg_lines
    if not stage.reads:
        return None
    uri = cfg.dataset_uri(stage.reads[0].name)
    return storage.read_manifest(uri, cfg.storage).rows if storage.is_committed(uri, cfg.storage) else None


def stage_metrics(config_path: Path) -> dict:
    """Per stage: main input rows, output rows, wall_s from the output manifest, rows/s, extras."""
    from medreason_dist import pipeline, storage
    from medreason_dist.config import load_config, resolve_packaged

    cfg = load_config(str(config_path), [])
    with open(resolve_packaged(cfg.kg.source), encoding="utf-8") as fh:
        kg_lines = sum(1 for _ in fh) - 1
    out = {}
    for name in synthetic_qa.CHAIN:
        stage = pipeline.get_stage(name)
        uri = cfg.dataset_uri(stage.output.name)
        if not storage.is_committed(uri, cfg.storage):
            continue
        m = storage.read_manifest(uri, cfg.storage)
        rows_in = _main_input_rows(cfg, stage, kg_lines)
        wall = m.extra.get("wall_s")
        entry = {"rows_in": rows_in, "rows_out": m.rows, "wall_s": wall,
                 "rows_per_s": round(rows_in / wall, 1) if rows_in is not None and wall else None}
        if m.rejects:
            entry["rejects"] = dict(sorted(m.rejects.items()))
        for key in ("entities", "methods", "unique_pairs", "groups", "llm_groups", "status_counts"):
            if key in m.extra:
                entry[key] = m.extra[key]
        out[name] = entry
    return out


def _killpg(proc: subprocess.Popen) -> None:
    """SIGKILL the process group this harness started (the driver, its local Ray and Spark)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _read_marks(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def _run_log(stdout: str) -> Path | None:
    m = re.search(r"^log: (\S+)", stdout, re.M)
    return Path(m.group(1)) if m else None


def run_size(n: int, root: Path, base_url: str, seed: int, overrides: list[str], timeout_s: float) -> dict:
    """One driver process over ``n`` synthetic rows; returns what was measured (also on failure)."""
    import shutil

    work = root / f"size_{n}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    source = synthetic_qa.write_medqa_jsonl(work / "qa.jsonl", n, seed)
    config = synthetic_qa.write_config(work / "config.yaml", out_dir=work / "out", source=source, base_url=base_url,
                                       log_dir=work / "logs")
    marks_path = work / "marks.jsonl"
    # The chain's command, with this file's --driver wrapper in place of `-m medreason_dist.cli`.
    cmd = synthetic_qa.chain_command(config, *overrides)
    cmd[1:3] = [str(Path(__file__).resolve()), "--driver"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               RAY_USAGE_STATS_ENABLED="0", SCALE_BENCH_MARKS=str(marks_path))
    result: dict = {"rows": n, "load_before": _load()}
    print(f"[scale_bench] size {n}: running {' '.join(synthetic_qa.CHAIN)} in {work}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: list[str] = []
    timed_out = threading.Event()

    def _kill_on_timeout() -> None:
        timed_out.set()
        _killpg(proc)

    watchdog = threading.Timer(timeout_s, _kill_on_timeout)
    watchdog.daemon = True
    watchdog.start()
    try:
        for line in proc.stdout:  # the run console: stage lines, progress, the outcome table
            lines.append(line)
            if re.match(r"^\S+\s+(ran|failed|skipped|blocked|empty)\b", line):
                print(f"[scale_bench] size {n}: {line.rstrip()}", file=sys.stderr, flush=True)
        proc.wait()
    except KeyboardInterrupt:
        _killpg(proc)
        raise
    finally:
        watchdog.cancel()
        _killpg(proc)  # stragglers of this run only (its own session)
    total = time.perf_counter() - start
    out_text = "".join(lines)
    (work / "driver.out").write_text(out_text)
    result.update(total_s=round(total, 2), exit_code=proc.returncode, load_after=_load())
    if timed_out.is_set():
        result["timed_out_after_s"] = timeout_s
    marks = _read_marks(marks_path)
    peak = max((m["maxrss_kb"] for m in marks), default=None)
    result["driver_peak_rss_mib"] = round(peak / 1024, 1) if peak else None
    result["driver_rss_mib_after_stage"] = {m["stage"]: round(m["maxrss_kb"] / 1024, 1) for m in marks if "stage" in m}
    try:
        result["stages"] = stage_metrics(config)
        result["accounting"] = synthetic_qa.row_accounting(work / "out")
    except Exception as err:  # keep what was measured
        result["metrics_error"] = f"{type(err).__name__}: {err}"
    if proc.returncode != 0:
        failed = next((m for m in marks if m.get("status") in ("failed", "blocked")), None)
        stage, detail = (failed["stage"], failed["detail"]) if failed else (None, None)
        if detail and len(detail) > 600:
            detail = detail[:600] + f"... ({len(detail)} chars)"
        run_log = _run_log(out_text)
        log_text = run_log.read_text(errors="replace") if run_log and run_log.exists() else ""
        tail = (log_text[-4000:] + "\n--- console ---\n" + out_text[-2000:]).strip()
        result.update(failed_stage=stage, error=detail, log=str(run_log) if run_log else None)
        if timed_out.is_set():
            result["error"] = f"timed out after {timeout_s:.0f}s" + (f" ({detail})" if detail else "")
        print(f"[scale_bench] size {n}: FAILED (exit {proc.returncode}) in stage {stage}: {result['error']}\n"
              f"--- log tail ({run_log}) ---\n{tail}\n---", file=sys.stderr, flush=True)
    return result


def _code_info() -> dict:
    """Which code ran: the medreason_dist the drivers import, the repository's HEAD and dirty files."""
    import medreason_dist

    info = {"medreason_dist": str(Path(medreason_dist.__file__).resolve().parent)}
    try:
        info["git_head"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                          text=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "medreason_dist"], cwd=REPO,
                               capture_output=True, text=True, timeout=30).stdout.split("\n")
        info["dirty_package_files"] = [line[3:] for line in dirty if line.strip()]
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def _config_info(root: Path, sizes: list[int]) -> dict:
    """The settings that shape the run (from the first size's generated config)."""
    import yaml

    for n in sizes:
        path = root / f"size_{n}" / "config.yaml"
        if path.exists():
            cfg = yaml.safe_load(path.read_text())
            return {"reason.batch_rows (shard rows)": cfg.get("reason", {}).get("batch_rows"),
                    "llm.batch_size": cfg.get("llm", {}).get("batch_size"),
                    "llm.concurrency": cfg.get("llm", {}).get("concurrency"),
                    "spark.master": cfg.get("spark", {}).get("master"), "ray.num_cpus": cfg.get("ray", {}).get("num_cpus")}
    return {}


def record(line: str, uptime: str, args) -> None:
    section = (f"\n## Scale benchmark ({datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')})\n\n"
               f"`python benchmarks/scale_bench.py --sizes {args.sizes}"
               + "".join(f" --set {s}" for s in args.set) + "`\n\n"
               f"Machine: {os.cpu_count()} CPUs; load at start: `{uptime}`.\n\n"
               + (f"{args.note}\n\n" if args.note else "") + f"```json\n{line}\n```\n")
    with open(HERE / "RESULTS.md", "a", encoding="utf-8") as fh:
        fh.write(section)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--driver":
        return driver(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000,100000", help="comma-separated row counts")
    p.add_argument("--quick", action="store_true", help="sizes 200,1000 (smoke test)")
    p.add_argument("--out-dir", default=str(REPO / "bench_out" / "scale"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--delay-s", type=float, default=0.0, help="fake model latency per request")
    p.add_argument("--shard-rows", type=int, default=256,
                   help="reason.batch_rows, the rows per shard / progress part (conf/local.yaml's 8 suits the "
                        "CPU demo model; 256 is the cluster configs' value); a --set of it wins")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    p.add_argument("--timeout-s", type=float, default=6 * 3600, help="per size")
    p.add_argument("--record", action="store_true", help="append the JSON line to benchmarks/RESULTS.md")
    p.add_argument("--note", default=None, help="free text carried into the JSON line (and RESULTS.md)")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes = "200,1000"
    args.set = [f"reason.batch_rows={args.shard_rows}", *args.set]
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    root = Path(args.out_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    uptime = _uptime()
    server = synthetic_qa.start_fake_model(delay_s=args.delay_s)
    results: dict[str, dict] = {}
    try:
        for n in sizes:
            try:
                results[str(n)] = run_size(n, root, server.base_url, args.seed, args.set, args.timeout_s)
            except KeyboardInterrupt:
                results[str(n)] = {"rows": n, "interrupted": True}
                break
            except Exception as err:  # the harness itself failed: still report the rest
                results[str(n)] = {"rows": n, "harness_error": f"{type(err).__name__}: {err}"}
    finally:
        requests = server.requests
        server.stop()
    rss = {n: r.get("driver_peak_rss_mib") for n, r in results.items()}
    ratio = round(rss["100000"] / rss["10000"], 3) if rss.get("100000") and rss.get("10000") else None
    summary = {
        "sizes": results,
        "driver_rss_ratio_100k_over_10k": ratio,
        "target": TARGET_RSS_RATIO,
        "meets_target": (ratio <= TARGET_RSS_RATIO) if ratio is not None else None,
        "fake_model_requests": requests,
        "overrides": args.set,
        "config": _config_info(root, sizes),
        "code": _code_info(),
        "note": args.note,
        "machine": {"cpus": os.cpu_count(), "uptime_at_start": uptime, "load_at_end": _load()},
        "ok": all(r.get("exit_code") == 0 for r in results.values()),
    }
    line = json.dumps(summary, sort_keys=False)
    print(line, flush=True)
    if args.record:
        record(line, uptime, args)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
