"""jobs/kg_paths.py on a real Spark standalone cluster: a master and two workers, each a separate
process on 127.0.0.1, data on the loopback S3 server in the bucket layout the cloud jobs use.

The answer must equal an in-process local[2] run of the same engine on the same inputs, and each
worker's work dir must hold an executor of the application that ran tasks.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from cluster_helpers import alive_workers, get_json, spark_env, spark_home, start, stop, wait_until
from conftest_spark import spark  # noqa: F401 - the shared local[2] session (reference run)
from net_helpers import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
RUN = "mn1"


def _job_arguments(bucket: str) -> list[str]:
    """The path job's arguments as the EMR/Dataproc definitions pass them (same order), except
    --engine: GraphFrames has no Spark 4 jar on this machine (no package download), so the
    cluster runs the dataframe engine. The S3 endpoint flags point at the loopback server."""
    kg, run = f"s3://{bucket}/kg/primekg", f"s3://{bucket}/runs/{RUN}/reason"
    return ["--nodes", f"{kg}/nodes", "--edges", f"{kg}/edges", "--pairs", f"{run}/pairs", "--out", f"{run}/paths",
            "--max-hops", "3", "--max-paths", "50", "--seed", "0", "--engine", "dataframe"]


def _path_sets(uri: str, options) -> dict[str, set]:
    from medreason_dist import storage

    found: dict[str, set] = {}
    for r in storage.read_table(uri, options=options).to_pylist():
        found.setdefault(r["pair_id"], set()).add((r["hops"], tuple(r["path_nodes"]), tuple(r["path_relations"])))
    return found


def _statuses(uri: str, options) -> dict[str, tuple]:
    from medreason_dist import storage

    return {r["pair_id"]: (r["status"], r["hops"], r["n_paths_total"], r["n_paths_kept"])
            for r in storage.read_table(uri, options=options).to_pylist()}


def test_kg_paths_on_standalone_cluster(tmp_path, s3_server, s3_bucket, spark):  # noqa: F811
    from medreason_dist import storage
    from medreason_dist.kg.synthetic import generate_kg, sample_pairs
    from medreason_dist.spark.paths import run_paths

    bucket, opts = s3_bucket
    kg = generate_kg(0.004, seed=21)  # ~520 nodes
    pairs = sample_pairs(kg, 40, seed=2)
    args = _job_arguments(bucket)
    uri = dict(zip(args[0:8:2], args[1:8:2]))
    storage.write_table(uri["--nodes"], kg.nodes, stage="test.nodes", options=opts)
    storage.write_table(uri["--edges"], kg.edges, stage="test.edges", options=opts)
    storage.write_table(uri["--pairs"], pairs, stage="test.pairs", options=opts)

    home, env = spark_home(), spark_env()
    spark_class = str(home / "bin" / "spark-class")
    port, ui = free_port(), free_port()
    logs = tmp_path / "logs"
    procs = []
    started = time.time()
    try:
        procs.append(start([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                            "--port", str(port), "--webui-port", str(ui)], logs / "master.log", env))
        work_dirs = []
        for name in ("worker_a", "worker_b"):
            work = tmp_path / name
            work_dirs.append(work)
            procs.append(start([spark_class, "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}",
                                "--cores", "1", "--memory", "1g", "--host", "127.0.0.1",
                                "--webui-port", str(free_port()), "--work-dir", str(work)],
                               logs / f"{name}.log", env))
        log_files = sorted(logs.iterdir())
        wait_until(lambda: len(alive_workers(get_json(f"http://127.0.0.1:{ui}/json"))) == 2, 180,
                   "two ALIVE workers in the master's /json", procs, log_files)
        up_s = time.time() - started

        cmd = [str(home / "bin" / "spark-submit"), "--master", f"spark://127.0.0.1:{port}",
               "--driver-memory", "1g", "--executor-memory", "768m",
               # Start no stage before both executors registered: otherwise the first executor
               # up could take every task of this small job.
               "--conf", "spark.scheduler.minRegisteredResourcesRatio=1.0",
               "--conf", "spark.scheduler.maxRegisteredResourcesWaitingTime=180s",
               "--conf", "spark.sql.shuffle.partitions=4", "--conf", "spark.ui.enabled=false",
               str(REPO / "jobs" / "kg_paths.py"), *args,
               "--s3-endpoint", s3_server, "--s3-region", "us-east-1"]
        # The pip-installed pyspark has no S3A jar: the job stages S3 data through pyarrow on the
        # driver (see medreason_dist/spark/io.py), so only the driver needs the endpoint and the
        # credentials (the s3_server fixture put them in the environment); executors get rows.
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        job_s = time.time() - started - up_s
        summary = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
        app_ids = {a["id"] for a in get_json(f"http://127.0.0.1:{ui}/json").get("completedapps", [])}
    finally:
        for p in reversed(procs):
            stop(p)

    # Each worker launched an executor for the application, and each executor ran tasks.
    assert len(app_ids) == 1, app_ids
    [app_id] = app_ids
    tasks_per_worker = []
    for work in work_dirs:
        executor_logs = list((work / app_id).glob("*/stderr"))  # <work-dir>/<app>/<executor id>/stderr
        assert executor_logs, f"no executor of {app_id} under {work}"
        text = "".join(p.read_text(errors="replace") for p in executor_logs)
        tasks_per_worker.append(text.count("Running task"))  # the executor's INFO line per task
        assert tasks_per_worker[-1], f"the executor under {work} ran no task:\n{text[-2000:]}"

    # The same engine on the same inputs in local[2] must give the same answer.
    local_out = f"s3://{bucket}/runs/{RUN}-local/reason/paths"
    t0 = time.time()
    run_paths(spark, uri["--nodes"], uri["--edges"], uri["--pairs"], local_out, max_hops=3, max_paths=50, seed=0,
              engine="dataframe", options=opts)
    local_s = time.time() - t0
    cluster_paths = _path_sets(uri["--out"], opts)
    assert cluster_paths == _path_sets(local_out, opts)
    assert _statuses(summary["pair_status"], opts) == _statuses(local_out + "_pair_status", opts)
    assert sum(summary["status_counts"].values()) == pairs.num_rows
    assert summary["status_counts"].get("ok", 0) >= 10, summary  # enough pairs with paths to compare
    manifest = storage.read_manifest(uri["--out"], opts)
    assert manifest.stage == "paths" and manifest.extra["max_paths"] == 50
    assert manifest.extra["status_counts"] == summary["status_counts"]

    # And both equal the plain-Python reference: status, hop count and number of shortest paths.
    from medreason_dist.kg.nx_reference import ReferenceGraph

    edges = kg.edges
    ref = ReferenceGraph(kg.nodes.column("node_id").to_pylist(),
                         zip(edges.column("src").to_pylist(), edges.column("dst").to_pylist(),
                             edges.column("relation").to_pylist()))
    statuses = _statuses(summary["pair_status"], opts)
    for row in pairs.to_pylist():
        want_status, hops, want = ref.shortest_paths(row["src"], row["dst"], 3)
        got = statuses[row["pair_id"]]
        assert got[0] == want_status, (row, got)
        if want_status == "ok":
            assert got[1] == hops and got[2] == len(want), (row, got)
            kept = {(nodes, rels) for _, nodes, rels in cluster_paths[row["pair_id"]]}
            assert len(kept) == min(50, len(want)) and kept <= set(want)
    print(f"standalone cluster up in {up_s:.0f}s, job {job_s:.0f}s, local[2] reference {local_s:.0f}s; "
          f"{summary['rows']} paths, {summary['status_counts']}; tasks per worker {tasks_per_worker}")
