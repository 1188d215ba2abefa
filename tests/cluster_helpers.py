"""Start, watch and stop the separate processes of a small cluster on this machine (a Spark
standalone master and workers, Ray head and worker nodes) for the multi-node tests.

Every process gets its own session (process group) so that stopping it by its pid also stops
what it started (executors, raylets, agents), and nothing else on the machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

BIN = Path(sys.executable).parent
RAY_CURRENT_CLUSTER = Path("/tmp/ray/ray_current_cluster")


def start(cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
    """``cmd`` as a process group of its own, stdout and stderr into ``log`` (read it on failure)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        return subprocess.Popen(cmd, env=env, cwd=cwd, start_new_session=True, stdout=fh, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen, grace_s: float = 30) -> None:
    """SIGTERM the process group of ``proc`` (one we started), SIGKILL it if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    # Children (executors, raylets) may outlive a leader that already exited.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def wait_until(check: Callable[[], object], timeout_s: float, what: str, procs=(), logs=(), poll_s: float = 1.0):
    """Poll ``check`` until it returns something truthy; fail with the logs' tails when one of
    ``procs`` exits or time runs out."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            value = check()
        except Exception:  # not up yet: connection refused, half-written JSON ...
            value = None
        if value:
            return value
        dead = [p.args for p in procs if p.poll() is not None]
        if dead:
            pytest.fail(f"{what}: process exited early: {dead}\n{tails(logs)}")
        time.sleep(poll_s)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}\n{tails(logs)}")


def tails(logs, chars: int = 2500) -> str:
    out = []
    for log in logs:
        text = Path(log).read_text(errors="replace") if Path(log).exists() else "(no log)"
        out.append(f"--- {log} ---\n{text[-chars:]}")
    return "\n".join(out)


def get_json(url: str, timeout_s: float = 5) -> dict:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        return json.loads(resp.read())


# ---- Spark standalone ------------------------------------------------------------------------


def spark_home() -> Path:
    pyspark = pytest.importorskip("pyspark")
    home = Path(pyspark.__file__).parent
    if not (home / "bin" / "spark-class").exists():
        pytest.skip("pyspark has no bin/spark-class: cannot start a standalone master")
    return home


def spark_env() -> dict[str, str]:
    # Bind every daemon, the driver and the executors to loopback; executors' Python workers run
    # this interpreter (the venv with pyarrow/numpy and the package).
    return dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", SPARK_HOME=str(spark_home()),
                PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)


def alive_workers(master_json: dict) -> list[dict]:
    return [w for w in master_json.get("workers", []) if w.get("state") == "ALIVE"]


# ---- Ray -------------------------------------------------------------------------------------


def ray_agent_port_args(free_port: Callable[[], int]) -> list[str]:
    """Ports of a node's own agents. The defaults (52365, ...) are shared by every node on this
    host: a second node whose agent cannot bind leaves the job API answering "No available
    agent" for good, so each node gets free ports of its own."""
    return [f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}"]


def forget_ray_cluster(gcs_port: int) -> None:
    """A head leaves its address in /tmp/ray/ray_current_cluster; later ``ray.init()`` calls
    (other tests) must not try to join a head that is gone."""
    try:
        if RAY_CURRENT_CLUSTER.read_text().strip().endswith(f":{gcs_port}"):
            RAY_CURRENT_CLUSTER.unlink()
    except FileNotFoundError:
        pass
