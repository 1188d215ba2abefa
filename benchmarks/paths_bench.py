"""Path engine vs the reference method (networkx all_shortest_paths per pair), one JSON line.

    python benchmarks/paths_bench.py --scale small --pairs 3000 --ref-sample 200
    python benchmarks/paths_bench.py --scale full  --pairs 3000 --ref-sample 20

1. Build a synthetic PrimeKG-shaped graph (``small``: 2% of PrimeKG's nodes; ``full``: 129,375
   nodes, ~4.05M undirected edges) and draw pairs the way MedReason forms them.
2. Write nodes/edges/pairs as committed Parquet datasets, then run the real job
   (``run_paths``: read, search, write both outputs) on Spark ``local[2]``. Engine pairs/s =
   pairs / wall time of that whole job (the JVM start is reported separately).
3. The reference: networkx ``all_shortest_paths`` one pair at a time in this process, on a
   random subset of ``--ref-sample`` pairs (the whole set would take hours at full scale; the
   output says how many were timed). Building the networkx graph is timed separately and not
   charged to the reference.
4. ``agree``: on every timed pair, same status and hop count, same total number of shortest
   paths, identical path sets when within the cap, a cap-sized subset otherwise.

Prints exactly one JSON line on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SCALES = {"small": 0.02, "full": 1.0}


def log(msg: str) -> None:
    print(f"[paths_bench] {msg}", file=sys.stderr, flush=True)


class PeakRss:
    """Peak resident memory of this process and of its child processes (the Spark JVM)."""

    def __init__(self) -> None:
        self.children_peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            total = 0
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                    if ppid != me:
                        continue
                    with open(f"/proc/{pid}/status") as f:
                        for line in f:
                            if line.startswith("VmRSS:"):
                                total += int(line.split()[1])
                except (OSError, ValueError, IndexError):
                    continue
            self.children_peak_kb = max(self.children_peak_kb, total)
            self._stop.wait(0.5)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def children_cpu_s() -> float:
        """CPU seconds used so far by this process's live children (the Spark JVM)."""
        me, total, tick = os.getpid(), 0.0, os.sysconf("SC_CLK_TCK")
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == me:
                    total += (int(fields[11]) + int(fields[12])) / tick
            except (OSError, ValueError, IndexError):
                continue
        return total

    @staticmethod
    def self_peak_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default="small")
    ap.add_argument("--pairs", type=int, default=3000)
    ap.add_argument("--ref-sample", type=int, default=50)
    ap.add_argument("--max-hops", type=int, default=3)
    ap.add_argument("--max-paths", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--driver-memory", default="6g")
    ap.add_argument("--workdir", default=None, help="where the datasets go (default: a temp dir)")
    args = ap.parse_args()

    import numpy as np  # noqa: F401  (fail early if the env is broken)

    from medreason_dist import storage
    from medreason_dist.kg.nx_reference import ReferenceGraph
    from medreason_dist.kg.synthetic import generate_kg, sample_pairs
    from medreason_dist.spark.paths import pair_status_uri, run_paths
    from medreason_dist.spark.session import spark_session

    timings: dict[str, float] = {}
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="paths_bench_"))
    with PeakRss() as rss:
        t = time.perf_counter()
        kg = generate_kg(SCALES[args.scale], seed=args.seed)
        questions = max(1, args.pairs // 4)
        pairs = sample_pairs(kg, questions, seed=args.seed + 1)
        while pairs.num_rows < args.pairs:
            questions *= 2
            pairs = sample_pairs(kg, questions, seed=args.seed + 1)
        pairs = pairs.slice(0, args.pairs)
        timings["generate_s"] = time.perf_counter() - t
        log(f"graph: {kg.nodes.num_rows} nodes, {kg.edges.num_rows} edges; {pairs.num_rows} pairs")

        t = time.perf_counter()
        uris = {name: storage.check_uri(str(workdir / name)) for name in ("nodes", "edges", "pairs", "paths")}
        storage.write_table(uris["nodes"], kg.nodes, stage="bench.nodes")
        storage.write_table(uris["edges"], kg.edges, stage="bench.edges")
        storage.write_table(uris["pairs"], pairs, stage="bench.pairs")
        timings["write_inputs_s"] = time.perf_counter() - t

        t = time.perf_counter()
        spark = spark_session("local[2]", app_name="paths_bench", conf={"spark.driver.memory": args.driver_memory})
        spark.range(1).count()
        timings["spark_start_s"] = time.perf_counter() - t

        log("running the Spark job")
        load = {"engine_start": os.getloadavg()[0]}
        cpu0 = PeakRss.children_cpu_s() + time.process_time()
        t = time.perf_counter()
        summary = run_paths(
            spark,
            uris["nodes"],
            uris["edges"],
            uris["pairs"],
            uris["paths"],
            max_hops=args.max_hops,
            max_paths=args.max_paths,
            seed=args.seed,
        )
        timings["engine_s"] = time.perf_counter() - t
        timings["engine_cpu_s"] = PeakRss.children_cpu_s() + time.process_time() - cpu0
        load["engine_end"] = os.getloadavg()[0]
        engine_internal = summary["timings"]
        spark.stop()
        log(f"engine: {timings['engine_s']:.1f}s {summary['status_counts']}")

        got_paths = storage.read_table(uris["paths"]).to_pylist()
        got_status = {r["pair_id"]: r for r in storage.read_table(pair_status_uri(uris["paths"])).to_pylist()}
        by_pair: dict[str, list] = {}
        for r in got_paths:
            by_pair.setdefault(r["pair_id"], []).append((tuple(r["path_nodes"]), tuple(r["path_relations"])))

        log("building the networkx graph")
        t = time.perf_counter()
        edges = kg.edges
        ref = ReferenceGraph(
            kg.nodes.column("node_id").to_pylist(),
            zip(edges.column("src").to_pylist(), edges.column("dst").to_pylist(), edges.column("relation").to_pylist()),
        )
        timings["ref_graph_build_s"] = time.perf_counter() - t

        rows = pairs.to_pylist()
        sample = random.Random(args.seed).sample(rows, k=min(args.ref_sample, len(rows)))
        log(f"reference on {len(sample)} random pairs")
        disagreements: list[dict] = []
        load["ref_start"] = os.getloadavg()[0]
        cpu0 = time.process_time()
        t = time.perf_counter()
        ref_answers = []
        for r in sample:
            ref_answers.append((r, ref.shortest_paths(r["src"], r["dst"], args.max_hops)))
        timings["ref_s"] = time.perf_counter() - t
        timings["ref_cpu_s"] = time.process_time() - cpu0
        load["ref_end"] = os.getloadavg()[0]
        for r, (status, hops, want) in ref_answers:
            st = got_status[r["pair_id"]]
            got = by_pair.get(r["pair_id"], [])
            ok = st["status"] == status and (status != "ok" or (
                st["hops"] == hops
                and st["n_paths_total"] == len(want)
                and len(got) == len(set(got)) == min(len(want), args.max_paths)
                and (set(got) == set(want) if len(want) <= args.max_paths else set(got) <= set(want))
            ))
            if not ok:
                disagreements.append({"pair_id": r["pair_id"], "engine": st["status"], "reference": status})
        children_peak = rss.children_peak_kb / 1024

    engine_rate = len(rows) / timings["engine_s"]
    ref_rate = len(sample) / timings["ref_s"] if timings["ref_s"] > 0 else float("inf")
    result = {
        "scale": args.scale,
        "nodes": kg.nodes.num_rows,
        "edges": kg.edges.num_rows,
        "pairs": len(rows),
        "max_hops": args.max_hops,
        "max_paths": args.max_paths,
        "engine": "dataframe",
        "spark_master": "local[2]",
        "engine_pairs_per_s": round(engine_rate, 3),
        "ref_pairs_per_s": round(ref_rate, 4),
        "ratio": round(engine_rate / ref_rate, 2),
        "ref_pairs_timed": len(sample),
        "ref_note": f"networkx all_shortest_paths per pair, one process, on a random {len(sample)} of {len(rows)} pairs",
        "agree": not disagreements,
        "disagreements": disagreements[:10],
        "status_counts": summary["status_counts"],
        "paths_written": summary["paths"],
        "peak_rss_mb": round(PeakRss.self_peak_mb() + children_peak, 1),
        "peak_rss_python_mb": round(PeakRss.self_peak_mb(), 1),
        "peak_rss_spark_jvm_mb": round(children_peak, 1),
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "engine_internal_timings": engine_internal,
        # Other processes share this machine: the 1-minute load average around each timed phase
        # says how much of the 2 cores each side actually had.
        "load_avg_1m": {k: round(v, 2) for k, v in load.items()},
        # CPU seconds per pair (engine: JVM + driver) — less sensitive to other tenants than wall time.
        "engine_cpu_s_per_pair": round(timings["engine_cpu_s"] / len(rows), 4),
        "ref_cpu_s_per_pair": round(timings["ref_cpu_s"] / max(1, len(sample)), 4),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
