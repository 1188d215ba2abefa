"""KG ingest throughput on a PrimeKG-sized synthetic kg.csv; prints one JSON line.

    python benchmarks/ingest_bench.py                # full size, PrimeKG-shaped synthetic graph
    python benchmarks/ingest_bench.py --scale 0.05   # quick run
    python benchmarks/ingest_bench.py --own-generator --edges 4050249

The kg.csv is written first, by ``medreason_dist.kg.synthetic`` (PrimeKG's type and relation
mix, heavy-tailed degrees) when available, else by the small generator below. The ingest runs
in a child process, so the reported peak memory is the ingest's own (ru_maxrss of the child).
With the synthetic generator the ingested edge set is compared with the generated one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from medreason_dist.kg.schema import KG_COLUMNS, TYPE_SOURCES  # noqa: E402

# PrimeKG's node counts per type (129,375 in all).
PRIMEKG_TYPE_COUNTS = {
    "gene/protein": 27_671, "drug": 7_957, "effect/phenotype": 15_311, "disease": 17_080,
    "biological_process": 28_642, "molecular_function": 11_169, "cellular_component": 4_176,
    "exposure": 818, "pathway": 2_516, "anatomy": 14_035,
}
PRIMEKG_UNDIRECTED_EDGES = 4_050_249


def generate_kg_csv(path: Path, n_edges: int, seed: int = 0, chunk: int = 500_000) -> dict:
    """A kg.csv with PrimeKG's type mix and power-law degrees (vectorised, chunked writes)."""
    rng = np.random.default_rng(seed)
    types = np.repeat(np.array(list(PRIMEKG_TYPE_COUNTS)), list(PRIMEKG_TYPE_COUNTS.values()))
    rng.shuffle(types)
    n = len(types)
    type_arr = pa.array(types)
    source_arr = pa.array([TYPE_SOURCES[t][0] for t in types])
    ids = pa.array([f"{i * 7 + 11}" for i in range(n)])
    words = np.array(["alpha", "beta", "gamma", "delta", "kinase", "receptor", "syndrome", "acid", "type",
                      "chronic", "acute", "factor", "protein", "disorder", "cell", "2,3-diol"])
    w1, w2 = rng.integers(0, len(words), n), rng.integers(0, len(words), n)
    names = pa.array([f"{words[a]} {words[b]} {i}" for i, (a, b) in enumerate(zip(w1, w2))])
    weight = 1.0 / (rng.permutation(n) + 5.0) ** 0.85  # heavy tail: a few hubs with huge degree
    weight /= weight.sum()
    written = 0
    with pacsv.CSVWriter(str(path), pa.schema([(c, pa.string()) for c in KG_COLUMNS])) as writer:
        while written < n_edges:
            m = min(chunk, n_edges - written)
            x = rng.choice(n, size=m, p=weight)
            y = rng.integers(0, n, size=m)
            both_x, both_y = np.concatenate([x, y]), np.concatenate([y, x])
            tx, ty = type_arr.take(pa.array(both_x)), type_arr.take(pa.array(both_y))
            # one relation name per unordered type pair, as in PrimeKG (both directions share it)
            relation = pa.compute.if_else(pa.compute.less_equal(tx, ty),
                                          pa.compute.binary_join_element_wise(tx, ty, "_"),
                                          pa.compute.binary_join_element_wise(ty, tx, "_"))
            cols = {
                "relation": relation, "display_relation": pa.array(np.full(2 * m, "associated with")),
                "x_index": pa.array(both_x.astype(str)), "x_id": ids.take(pa.array(both_x)), "x_type": tx,
                "x_name": names.take(pa.array(both_x)), "x_source": source_arr.take(pa.array(both_x)),
                "y_index": pa.array(both_y.astype(str)), "y_id": ids.take(pa.array(both_y)), "y_type": ty,
                "y_name": names.take(pa.array(both_y)), "y_source": source_arr.take(pa.array(both_y)),
            }
            writer.write_table(pa.table(cols))
            written += m
    return {"nodes": n, "lines": 2 * n_edges, "bytes": path.stat().st_size}


CHILD = """
import json, sys, time
from medreason_dist.kg.ingest import ingest_to_dir
t = time.perf_counter()
s = ingest_to_dir(sys.argv[1], sys.argv[2])
s["wall_s"] = time.perf_counter() - t
print(json.dumps({k: s[k] for k in ("rows_read", "nodes", "edges", "quarantined", "rejects", "seconds", "wall_s")}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=1.0, help="synthetic graph size relative to PrimeKG")
    ap.add_argument("--own-generator", action="store_true", help="use this script's simple generator")
    ap.add_argument("--edges", type=int, default=PRIMEKG_UNDIRECTED_EDGES,
                    help="undirected edges for --own-generator")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        csv_path = Path(tmp) / "kg.csv"
        t0 = time.perf_counter()
        generator = "benchmarks/ingest_bench.py"
        expected = None
        try:
            from medreason_dist.kg import synthetic  # sibling module; optional for this benchmark
        except ImportError:
            synthetic = None
        if synthetic is not None and not args.own_generator:
            kg = synthetic.generate_kg(args.scale, seed=args.seed)
            synthetic.write_primekg_csv(kg, str(csv_path))
            expected = kg.edges.select(["src", "dst", "relation"])
            generated = {"bytes": csv_path.stat().st_size}
            generator = f"medreason_dist.kg.synthetic(scale={args.scale})"
            del kg
        else:
            generated = generate_kg_csv(csv_path, args.edges, args.seed)
        gen_s = time.perf_counter() - t0
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.run([sys.executable, "-c", CHILD, str(csv_path), str(Path(tmp) / "out")],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB
        same_edges = None
        if expected is not None:
            from medreason_dist import storage

            got = storage.read_table(str(Path(tmp) / "out" / "edges"), columns=["src", "dst", "relation"])
            key = [("src", "ascending"), ("dst", "ascending"), ("relation", "ascending")]
            same_edges = got.sort_by(key).equals(expected.sort_by(key))
        print(json.dumps({
            "benchmark": "kg_ingest",
            "generator": generator,
            "input_lines": child["rows_read"],
            "input_mib": round(generated["bytes"] / 2**20, 1),
            "generate_s": round(gen_s, 1),
            "ingest_s": round(child["wall_s"], 2),
            "transform_s": child["seconds"],
            "rows_per_s": round(child["rows_read"] / child["wall_s"]),
            "mib_per_s": round(generated["bytes"] / 2**20 / child["wall_s"], 1),
            "nodes": child["nodes"],
            "edges": child["edges"],
            "quarantined": child["quarantined"],
            "edges_match_generator": same_edges,
            "peak_rss_mib": round(peak_mib),
            "cpu_count": os.cpu_count(),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
