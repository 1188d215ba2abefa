"""Held-out loss per task on the packaged 135M model (CPU)."""

from __future__ import annotations

import math

import pytest
import torch

from medreason_dist.train.data import IGNORE_INDEX, load_tokenizer, tokenize_example
from medreason_dist.train.task_loss import per_task_loss, task_loss_with_model
from sft_helpers import student_dir, tiny_instruction_rows, tiny_sft_rows


@pytest.fixture(scope="module")
def model_dir() -> str:
    return student_dir()


def test_loss_per_task_is_finite_positive_and_token_weighted(model_dir):
    rows = tiny_instruction_rows(6)  # two rows each of screening, arms, search
    rows.append({**rows[0], "row_id": "long", "instruction": "word " * 2000})  # too long: rejected
    rows.append({**rows[1], "row_id": "empty", "response": ""})
    qa = tiny_sft_rows(1, reasoning_words=6)  # rows without a task are reported as "unknown"
    stats = per_task_loss(model_dir, rows + qa, max_seq_len=512, batch_size=4)
    assert set(stats) == {"screening", "arms", "search", "unknown"}
    tokenizer = load_tokenizer(model_dir)
    scored = [r for r in rows + qa if r.get("row_id") not in ("long", "empty")]
    for task, entry in stats.items():
        assert entry["examples"] > 0 and math.isfinite(entry["loss"]) and entry["loss"] > 0, (task, entry)
        mine = [r for r in scored if (r.get("task") or "unknown") == task]
        expected = sum(sum(1 for label in tokenize_example(r, tokenizer, 512).labels if label != IGNORE_INDEX)
                       for r in mine)
        assert entry["tokens"] == expected and entry["examples"] == len(mine)
    assert stats["screening"]["rejected"] == 1 and stats["arms"]["rejected"] == 1
    assert stats["search"]["rejected"] == 0 and stats["unknown"]["examples"] == 1


def test_right_padding_does_not_change_the_loss(model_dir):
    from transformers import AutoModelForCausalLM

    row = tiny_instruction_rows(1)[0]
    rows = [row, {**row, "row_id": "longer", "instruction": row["instruction"] + " Think about it." * 6}]
    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    batched = task_loss_with_model(model, tokenizer, rows, batch_size=2)  # the shorter row gets padded
    single = task_loss_with_model(model, tokenizer, rows, batch_size=1)
    assert batched["screening"]["tokens"] == single["screening"]["tokens"]
    assert batched["screening"]["loss"] == pytest.approx(single["screening"]["loss"], rel=1e-4)


def test_training_on_a_row_lowers_its_loss(model_dir):
    from transformers import AutoModelForCausalLM

    row = tiny_instruction_rows(2)[1]  # an "arms" row
    before = per_task_loss(model_dir, [row])["arms"]

    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    # Train only the last decoder layer: backward stops there, so a step is cheap on a CPU.
    for param in model.parameters():
        param.requires_grad_(False)
    trained = list(model.model.layers[-1].parameters())
    for param in trained:
        param.requires_grad_(True)
    ex = tokenize_example(row, tokenizer, 1024)
    ids, labels = torch.tensor([ex.input_ids]), torch.tensor([ex.labels])
    optimizer = torch.optim.AdamW(trained, lr=1e-4)
    model.train()
    for _ in range(3):
        loss = model(input_ids=ids, labels=labels, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    after = task_loss_with_model(model, tokenizer, [row])["arms"]
    assert not model.training  # scoring switches to eval mode
    assert after["tokens"] == before["tokens"]
    assert after["loss"] < 0.8 * before["loss"], (before, after)
