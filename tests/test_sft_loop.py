"""The per-worker loop in a single process (no Ray): schedule, overfitting, local resume."""

from __future__ import annotations

import math

import pytest

from medreason_dist.train.data import SftDataset, load_tokenizer
from medreason_dist.train.loop import lr_factor, plan_steps, train_loop
from medreason_dist.train.settings import SftConfig
from sft_helpers import student_dir, tiny_sft_rows


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
    first = train_loop({"sft": cfg.model_dump(mode="json"), "model_path": model_dir, "sequences": data.sequences,
                        "checkpoint_dir": str(tmp_path)})
    losses = [h["loss"] for h in first["history"]]
    assert losses[0] > losses[1] > losses[2] and losses[-1] < 0.5 * losses[0], losses
    assert first["padding_fraction"] == 0.0 and first["n_trainable_params"] == first["n_params"]

    more = cfg.model_copy(update={"max_steps": 4})
    second = train_loop({"sft": more.model_dump(mode="json"), "model_path": model_dir, "sequences": data.sequences,
                         "resume_dir": str(tmp_path / "step_00000003")})
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
