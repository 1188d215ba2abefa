"""The SFT recipe in a single process (no Ray): schedule, config errors, overfitting, resume via storage."""

from __future__ import annotations

import json
import math
import sys

import pyarrow as pa
import pytest

from medreason_dist import storage
from medreason_dist.train.components import lr_factor, plan_steps
from medreason_dist.train.data import SftDataset, load_tokenizer
from medreason_dist.train.recipe import main as recipe_main
from medreason_dist.train.recipe import run_recipe
from medreason_dist.train.settings import RecipeConfig, RecipeConfigError, SftConfig
from sft_helpers import SFT_SCHEMA, model_cache_dir, student_dir, tiny_sft_rows


def test_warmup_then_cosine_to_the_floor():
    cfg = SftConfig(warmup_ratio=0.1, min_lr_ratio=0.1)
    factors = [lr_factor(s, 100, cfg) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))  # monotone decay after warmup
    assert factors[-1] == pytest.approx(0.1, abs=0.01)
    assert lr_factor(55, 100, cfg) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))


def test_step_plan_counts_partial_accumulation_groups():
    cfg = SftConfig(micro_batch_size=2, grad_accum=4, epochs=3)
    assert plan_steps(17, cfg) == {"micro_batches_per_epoch": 9, "steps_per_epoch": 3, "total_steps": 9}
    assert plan_steps(17, cfg.model_copy(update={"max_steps": 5}))["total_steps"] == 5
    with pytest.raises(ValueError):
        plan_steps(0, cfg)


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError):
        SftConfig(learning_rate=1e-4)


def test_full_finetune_overfits_a_tiny_set_and_resumes_from_a_local_checkpoint(tmp_path):
    model_dir = student_dir()
    data = SftDataset(tiny_sft_rows(4, reasoning_words=6), load_tokenizer(model_dir), max_seq_len=512, packing=True)
    assert len(data) == 1  # the four examples share one packed sequence
    cfg = SftConfig(method="full", lr=1e-4, max_steps=3, grad_accum=1, warmup_ratio=0.0, schedule="constant",
                    checkpoint_every_steps=3, seed=0)
    first = run_recipe(RecipeConfig(sft=cfg, model={"path": model_dir},
                                    data={"kind": "inline", "sequences": data.sequences},
                                    output={"checkpoint_uri": str(tmp_path)}))
    losses = [h["loss"] for h in first["history"]]
    assert losses[0] > losses[1] > losses[2] and losses[-1] < 0.5 * losses[0], losses
    assert first["padding_fraction"] == 0.0 and first["n_trainable_params"] == first["n_params"]

    more = cfg.model_copy(update={"max_steps": 4})
    second = run_recipe(RecipeConfig(sft=more, model={"path": model_dir},
                                     data={"kind": "inline", "sequences": data.sequences},
                                     output={"resume_from": str(tmp_path / "step_00000003")}))
    assert [h["step"] for h in second["history"]] == [1, 2, 3, 4]
    assert second["resumes"] == [3]
    # the resumed weights are the trained ones: the loss stays low instead of restarting high
    assert second["history"][-1]["loss"] < 0.5 * losses[0]


def test_sft_section_comes_from_the_config_with_overrides():
    from medreason_dist.config import ConfigError, load_config
    from sft_helpers import REPO

    cfg = load_config(REPO / "conf" / "local.yaml", ["sft.method=lora", "sft.lora.r=4", "sft.max_steps=7",
                                                      "models.cache_dir=/tmp/models"])
    assert cfg.sft.method == "lora" and cfg.sft.lora.r == 4 and cfg.sft.max_steps == 7
    assert cfg.sft.model_cache_dir == "/tmp/models"  # one model cache for every engine
    with pytest.raises(ConfigError, match="sft.no_such_key"):
        load_config(REPO / "conf" / "local.yaml", ["sft.no_such_key=1"])


def test_default_run_name_follows_weights_relevant_settings_and_data_only():
    from medreason_dist.train.trainer import default_run_name

    cfg = SftConfig()
    name = default_run_name(cfg, "data-a")
    assert name == default_run_name(cfg.model_copy(update={"max_failures": 5, "storage_path": "/x"}), "data-a")
    assert name != default_run_name(cfg.model_copy(update={"lr": 1e-4}), "data-a")
    assert name != default_run_name(cfg, "data-b")


def test_recipe_config_errors_name_the_key(tmp_path, capsys):
    with pytest.raises(RecipeConfigError) as err:
        RecipeConfig.parse({"sft": {"learning_rate": 1e-4, "lr": -1.0}, "data": {"kind": "ray_shard"},
                            "world": {"launcher": "ray_train", "num_workers": 2}})
    message = str(err.value)
    assert "unknown key 'sft.learning_rate'" in message
    assert "key 'sft.lr'" in message
    assert "missing required key 'data.sequences_per_worker'" in message
    with pytest.raises(RecipeConfigError, match="output.uri"):
        RecipeConfig.parse({"data": {"kind": "dataset", "uri": "/data/sft"}, "output": {"uri": "s3://b/../x"}})
    with pytest.raises(RecipeConfigError, match="world.launcher"):  # a shard only exists inside Ray Train
        RecipeConfig.parse({"data": {"kind": "ray_shard", "sequences_per_worker": 4}})
    # the Ray Train side: the dict the driver sends validates back to the same config
    cfg = RecipeConfig(sft=SftConfig(num_workers=2), world={"launcher": "ray_train", "num_workers": 2},
                       data={"kind": "ray_shard", "sequences_per_worker": 4}, output={"uri": str(tmp_path)})
    assert RecipeConfig.parse(cfg.model_dump(mode="json")) == cfg
    # the command line reports the key and exits 2 without training
    assert recipe_main(["--set", "data.kind=dataset", "--set", "data.uri=/x", "--set", "sft.epochz=1"]) == 2
    assert "unknown key 'sft.epochz'" in capsys.readouterr().err


def test_recipe_runs_without_ray_from_a_dataset_on_s3_and_resumes(s3_bucket, tmp_path, monkeypatch, capsys):
    """Data, rejects, checkpoints, export and resume all go through the S3 endpoint override."""
    monkeypatch.setitem(sys.modules, "ray", None)  # any `import ray` now fails: the recipe must not need it
    bucket, options = s3_bucket
    rows = tiny_sft_rows(4, reasoning_words=6)
    rows.append({**rows[0], "id": "bad", "reasoning": ""})
    data_uri, out_uri = f"s3://{bucket}/sft", f"s3://{bucket}/out"
    storage.write_table(data_uri, pa.Table.from_pylist(rows, schema=SFT_SCHEMA), stage="sft", options=options)
    config = {
        "sft": {"model_cache_dir": model_cache_dir(), "method": "lora", "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
                "max_seq_len": 128, "packing": True, "grad_accum": 2, "lr": 1e-3, "warmup_ratio": 0.0,
                "max_steps": 2, "checkpoint_every_steps": 1, "merge_lora_on_export": False, "seed": 0},
        "data": {"kind": "dataset", "uri": data_uri},
        "output": {"uri": out_uri, "checkpoint_uri": f"{out_uri}/checkpoints"},
        "storage_options": options.model_dump(),
    }
    config_file = tmp_path / "recipe.json"
    config_file.write_text(json.dumps(config))

    assert recipe_main(["--config", str(config_file)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["final_step"] == 2 and summary["world_size"] == 1 and summary["resumes"] == []
    assert summary["rejects"] == {"missing_reasoning": 1}
    assert summary["n_trainable_params"] < summary["n_params"]  # LoRA
    history = json.loads(storage.read_bytes(f"{out_uri}/train_history.json", options))
    assert [h["step"] for h in history["history"]] == [1, 2]
    assert all(h["loss"] > 0 and h["grad_norm"] >= 0 for h in history["history"])
    marker = json.loads(storage.read_bytes(f"{out_uri}/model/_EXPORTED.json", options))
    assert marker["adapter_only"] is True and marker["step"] == 2
    assert storage.exists(f"{out_uri}/model/adapter_config.json", options)
    assert storage.exists(f"{out_uri}/model/tokenizer.json", options)
    assert storage.read_table(f"{out_uri}/rejects", options=options)["row_id"].to_pylist() == ["bad"]
    for step in (1, 2):
        assert storage.exists(f"{out_uri}/checkpoints/step_{step:08d}/state.json", options)

    resumed = RecipeConfig.parse({**config, "sft": {**config["sft"], "max_steps": 3},
                                  "output": {"resume_from": f"{out_uri}/checkpoints/step_00000002"}})
    second = run_recipe(resumed)
    assert [h["step"] for h in second["history"]] == [1, 2, 3]
    assert second["resumes"] == [2]
