"""jobs/kg_paths.py under the real ``spark-submit`` shipped with pyspark (master local[2])."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _spark_submit() -> str:
    candidates = [Path(sys.executable).parent / "spark-submit"]
    try:
        import pyspark

        candidates.append(Path(pyspark.__file__).parent / "bin" / "spark-submit")
    except ImportError:
        pass
    for c in candidates:
        if c.exists():
            return str(c)
    found = shutil.which("spark-submit")
    if found:
        return found
    pytest.skip("no spark-submit script found next to the interpreter or in pyspark/bin")


@pytest.mark.slow
def test_kg_paths_job_under_spark_submit(tmp_path):
    from medreason_dist import storage
    from medreason_dist.kg.nx_reference import ReferenceGraph
    from medreason_dist.kg.synthetic import generate_kg, sample_pairs

    kg = generate_kg(0.004, seed=21)  # ~520 nodes
    pairs = sample_pairs(kg, 40, seed=2)
    uris = {n: storage.check_uri(str(tmp_path / n)) for n in ("nodes", "edges", "pairs", "out")}
    storage.write_table(uris["nodes"], kg.nodes, stage="test.nodes")
    storage.write_table(uris["edges"], kg.edges, stage="test.edges")
    storage.write_table(uris["pairs"], pairs, stage="test.pairs")

    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    cmd = [
        _spark_submit(),
        "--master", "local[2]",
        "--driver-memory", "1g",
        "--conf", "spark.ui.enabled=false",
        str(REPO / "jobs" / "kg_paths.py"),
        "--nodes", uris["nodes"],
        "--edges", uris["edges"],
        "--pairs", uris["pairs"],
        "--out", uris["out"],
        "--max-hops", "3",
        "--max-paths", "7",
        "--seed", "5",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    # spark-submit interleaves the driver's log lines with stdout; the summary is a JSON line.
    json_lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert json_lines, proc.stdout[-4000:]
    summary = json.loads(json_lines[-1])

    manifest = storage.read_manifest(uris["out"])
    assert manifest.stage == "paths" and manifest.extra["max_paths"] == 7
    assert manifest.extra["status_counts"] == summary["status_counts"]
    assert sum(summary["status_counts"].values()) == pairs.num_rows
    status = {r["pair_id"]: r for r in storage.read_table(summary["pair_status"]).to_pylist()}
    paths: dict[str, set] = {}
    for r in storage.read_table(uris["out"]).to_pylist():
        paths.setdefault(r["pair_id"], set()).add((tuple(r["path_nodes"]), tuple(r["path_relations"])))

    edges = kg.edges
    ref = ReferenceGraph(
        kg.nodes.column("node_id").to_pylist(),
        zip(edges.column("src").to_pylist(), edges.column("dst").to_pylist(), edges.column("relation").to_pylist()),
    )
    for row in pairs.to_pylist():
        want_status, hops, want = ref.shortest_paths(row["src"], row["dst"], 3)
        got = status[row["pair_id"]]
        assert got["status"] == want_status
        if want_status == "ok":
            assert got["hops"] == hops and got["n_paths_total"] == len(want)
            kept = paths[row["pair_id"]]
            assert len(kept) == min(7, len(want)) and kept <= set(want)
