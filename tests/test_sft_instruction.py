"""Instruction-format SFT rows (LEADS tasks): tokenization, rejects, and a short training run."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from medreason_dist import storage
from medreason_dist.train.components import rejects_table
from medreason_dist.train.data import (
    IGNORE_INDEX,
    SftDataset,
    is_instruction_row,
    load_tokenizer,
    missing_columns,
    tokenize_example,
    tokenize_rows,
)
from sft_helpers import (
    INSTRUCTION_SCHEMA,
    SFT_SCHEMA,
    model_cache_dir,
    student_dir,
    tiny_instruction_rows,
    tiny_instruction_table,
    tiny_sft_rows,
)


@pytest.fixture(scope="module")
def model_dir() -> str:
    return student_dir()


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return load_tokenizer(model_dir)


def test_instruction_row_masks_the_prompt_and_learns_the_response_verbatim(tokenizer):
    row = tiny_instruction_rows(2)[1]  # an "arms" row with a JSON answer
    ex = tokenize_example(row, tokenizer, 1024)
    prompt_text = tokenizer.apply_chat_template([{"role": "user", "content": row["instruction"]}],
                                                add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    n = len(prompt_ids)
    assert ex.input_ids[:n] == prompt_ids
    assert ex.labels[:n] == [IGNORE_INDEX] * n
    assert ex.labels[n:] == ex.input_ids[n:]
    assert ex.input_ids[-1] == tokenizer.eos_token_id
    # the learned part is exactly the response (no QA headings) followed by eos
    assert tokenizer.decode(ex.input_ids[n:-1], skip_special_tokens=False) == row["response"]
    assert ex.input_ids[n:-1] == tokenizer(row["response"], add_special_tokens=False)["input_ids"]


def test_instruction_rows_are_rejected_with_their_own_reasons(tokenizer):
    good = tiny_instruction_rows(1)[0]
    qa = tiny_sft_rows(1)[0]
    rows = [
        good,
        {**good, "response": None},
        {**good, "response": "   "},
        {k: v for k, v in good.items() if k != "response"},
        {**good, "instruction": ""},
        {**good, "instruction": None, "response": None},  # a broken instruction row, not a QA row
        {**good, "instruction": "word " * 3000},
        qa,
        {**qa, "instruction": None, "response": None},  # a QA row of a table that mixes both layouts
    ]
    out = tokenize_rows(rows, tokenizer, max_seq_len=512)
    assert out["reject_reason"] == [None, "missing_response", "missing_response", "missing_response",
                                    "missing_instruction", "missing_instruction", "too_long", None, None]
    assert is_instruction_row(good) and not is_instruction_row(qa) and not is_instruction_row(rows[-1])
    # the QA path is unchanged by the presence of null instruction columns
    assert out["input_ids"][-1] == out["input_ids"][-2] == tokenize_example(qa, tokenizer, 512).input_ids


def test_either_column_layout_is_accepted():
    assert missing_columns(INSTRUCTION_SCHEMA.names) == []
    assert missing_columns(SFT_SCHEMA.names) == []
    assert missing_columns(["row_id", "instruction"]) == ["response"]
    assert missing_columns(["id", "question"]) == ["options", "answer_text", "answer_idx", "reasoning"]


def test_rejects_name_instruction_rows_by_row_id_and_instruction_start(tokenizer, model_dir):
    from medreason_dist.train.trainer import _rejected, _tokenize_batch

    rows = tiny_instruction_rows(3)
    rows[2] = {**rows[2], "response": ""}
    data = SftDataset(rows, tokenizer, max_seq_len=512, packing=True)
    assert data.rejects == {"missing_response": 1} and data.n_examples == 2
    table = rejects_table(rows, data.rejected_rows)
    assert table["row_id"].to_pylist() == [rows[2]["row_id"]]
    assert table["question"].to_pylist() == [rows[2]["instruction"][:200]]
    # the Ray Data transform of the Ray Train driver names them the same way
    batch = _tokenize_batch(pa.Table.from_pylist(rows, schema=INSTRUCTION_SCHEMA), model_ref=model_dir,
                            cache_dir=model_cache_dir(), max_seq_len=512, storage_options=None)
    bad = _rejected(batch)
    assert bad["row_id"].to_pylist() == [rows[2]["row_id"]]
    assert bad["question"].to_pylist() == [rows[2]["instruction"][:200]]
    assert bad["reason"].to_pylist() == ["missing_response"]


def test_recipe_trains_on_an_instruction_dataset_and_quarantines_bad_rows(tmp_path, model_dir):
    """The recipe without Ray reads a committed instruction dataset, trains, writes rejects."""
    from medreason_dist.train.recipe import run_recipe
    from medreason_dist.train.settings import RecipeConfig, SftConfig

    rows = tiny_instruction_rows(6)
    rows.append({**rows[0], "row_id": "bad", "response": None})
    data_uri, out_uri = str(tmp_path / "leads_sft"), str(tmp_path / "out")
    storage.write_table(data_uri, pa.Table.from_pylist(rows, schema=INSTRUCTION_SCHEMA), stage="sft")
    cfg = SftConfig(model_cache_dir=model_cache_dir(), method="full", lr=1e-4, max_steps=3, grad_accum=1,
                    max_seq_len=512, packing=True, warmup_ratio=0.0, schedule="constant", seed=0)
    summary = run_recipe(RecipeConfig(sft=cfg, model={"path": model_dir}, data={"kind": "dataset", "uri": data_uri},
                                      output={"uri": out_uri}))
    losses = [h["loss"] for h in summary["history"]]
    assert [h["step"] for h in summary["history"]] == [1, 2, 3]
    assert all(loss > 0 for loss in losses) and losses[-1] < losses[0], losses
    assert summary["rejects"] == {"missing_response": 1}
    rejects = storage.read_table(str(tmp_path / "out" / "rejects"))
    assert rejects["row_id"].to_pylist() == ["bad"]
    assert rejects["question"].to_pylist() == [rows[0]["instruction"][:200]]
    history = json.loads((tmp_path / "out" / "train_history.json").read_text())
    assert history["final_step"] == 3


@pytest.mark.slow
def test_run_sft_on_ray_trains_on_an_instruction_table(tmp_path, model_dir):
    """The Ray Train driver path: an in-memory instruction table, one worker, two steps."""
    import ray

    from medreason_dist.train.trainer import run_sft

    table = tiny_instruction_table(6)
    table = pa.concat_tables([table, pa.Table.from_pylist([{**table.to_pylist()[0], "row_id": "bad",
                                                            "instruction": " "}], schema=INSTRUCTION_SCHEMA)])
    cfg = _ray_config()
    started_here = not ray.is_initialized()
    try:
        summary = run_sft(table, str(tmp_path / "out"), cfg, ray_num_cpus=2)
    finally:
        if started_here:
            ray.shutdown()
    assert summary["final_step"] == 2 and summary["examples"] == 6
    assert summary["rejects"] == {"missing_instruction": 1}
    rejects = storage.read_table(str(tmp_path / "out" / "rejects"))
    assert rejects["row_id"].to_pylist() == ["bad"]


def _ray_config():
    from medreason_dist.train.settings import SftConfig

    return SftConfig(model_cache_dir=model_cache_dir(), method="lora", lora={"r": 4, "alpha": 8, "dropout": 0.0},
                     max_seq_len=256, packing=True, grad_accum=1, lr=1e-3, warmup_ratio=0.0, max_steps=2,
                     checkpoint_every_steps=2, num_workers=1, max_failures=0, run_name="sft-instruction-test",
                     seed=0)
