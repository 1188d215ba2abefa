"""Benchmark: LEADSInstruct-scale curation on local Spark, full scale and a 10% sample.

    python benchmarks/curate_bench.py                      # scale 1.0 and 0.1, local[2]
    python benchmarks/curate_bench.py --scales 0.1 0.01    # quicker

For each scale: the synthetic corpus (21,335 reviews, 453,625 publications, 27,015 registry
records at 1.0) is generated and written as Parquet (timed apart), then ``jobs/leads_curate.py``
runs in a child process exactly as a user runs it. While it runs, the resident memory of the
process tree is sampled every 0.25 s: the Python driver, the JVM (driver and executors: one JVM
under local[N]) and the Python workers Spark starts for the formatting UDFs. Prints one JSON
line: per scale wall time, rows/s, peak memory, rows per task, rows removed and quarantined by
reason; and how cost grows from the sample to full scale (time ratio vs input ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


class TreeMemory:
    """Peak RSS (MiB) of a process and its descendants, split into driver / JVM / Python workers."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        self.root = psutil.Process(pid)
        self.every = every
        self.peak = {"driver_python": 0.0, "jvm": 0.0, "python_workers": 0.0, "total": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        now = {"driver_python": 0.0, "jvm": 0.0, "python_workers": 0.0}
        try:
            procs = [self.root] + self.root.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for p in procs:
            try:
                rss = p.memory_info().rss / 2**20
                name = p.name()
            except psutil.Error:
                continue
            if p.pid == self.root.pid:
                now["driver_python"] += rss
            elif "java" in name:
                now["jvm"] += rss
            else:
                now["python_workers"] += rss
        for k, v in now.items():
            self.peak[k] = max(self.peak[k], round(v, 1))
        self.peak["total"] = max(self.peak["total"], round(sum(now.values()), 1))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.every)

    def __enter__(self) -> "TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def one_scale(scale: float, seed: int, workdir: Path, master: str, driver_memory: str) -> dict:
    from medreason_dist.literature.synthetic_corpus import generate_corpus

    corpus = workdir / f"corpus-{scale}"
    corpus.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    c = generate_corpus(scale, seed=seed)
    inputs = {}
    for name in ("reviews", "publications", "registry"):
        table = getattr(c, name)
        inputs[name] = table.num_rows
        pq.write_table(table, corpus / f"{name}.parquet", compression="zstd")
    generated = time.monotonic() - started
    del c
    out = workdir / f"run-{scale}"
    cmd = [sys.executable, str(REPO / "jobs" / "leads_curate.py"), "--corpus", str(corpus), "--out", str(out),
           "--master", master, "--set", f"spark.driver_memory={driver_memory}", "--set", f"run.seed={seed}",
           "--set", f"run.log_dir={workdir / 'logs'}"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    with TreeMemory(proc.pid) as mem:
        stdout, stderr = proc.communicate()
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"scale {scale}: curation failed ({proc.returncode}):\n{stdout[-3000:]}\n{stderr[-3000:]}")
    summary = json.loads(stdout.strip().splitlines()[-1])
    removed = summary["removed_by_reason"]
    return {
        "scale": scale, "inputs": inputs, "generate_seconds": round(generated, 1), "seconds": round(seconds, 1),
        "stage_seconds": summary["seconds"], "rows": summary["rows"],
        "rows_per_s": round(summary["rows"] / seconds, 1),
        "input_rows_per_s": round(sum(inputs.values()) / seconds, 1),
        "rows_by_task": summary["rows_by_task"], "rows_by_split": summary["rows_by_split"],
        "duplicates_removed": {"exact": removed.get("exact_duplicate", 0), "near": removed.get("near_duplicate", 0)},
        "removed_by_reason": removed, "quarantine_by_reason": summary["quarantine_by_reason"],
        "peak_rss_mib": mem.peak,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.1])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--master", default="local[2]")
    p.add_argument("--driver-memory", default="6g")
    p.add_argument("--workdir", default=None, help="keep corpora and outputs here (default: a temp folder)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="curate-bench-") as tmp:
        workdir = Path(args.workdir or tmp)
        results = [one_scale(s, args.seed, workdir, args.master, args.driver_memory) for s in args.scales]
    line = {"bench": "leads_curate", "master": args.master, "cpus": os.cpu_count(), "seed": args.seed,
            "driver_memory": args.driver_memory, "scales": results}
    if len(results) >= 2:
        big, small = max(results, key=lambda r: r["scale"]), min(results, key=lambda r: r["scale"])
        line["growth"] = {
            "input_ratio": round(sum(big["inputs"].values()) / sum(small["inputs"].values()), 2),
            "time_ratio": round(big["seconds"] / small["seconds"], 2),
            "rows_ratio": round(big["rows"] / max(small["rows"], 1), 2),
        }
    print(json.dumps(line, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
