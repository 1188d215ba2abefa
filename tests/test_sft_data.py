"""SFT example building: chat prompt, response-only labels, packing without cross-attention."""

from __future__ import annotations

import pytest
import torch

from medreason_dist.train.data import (
    IGNORE_INDEX,
    SftDataset,
    collate,
    format_prompt,
    load_tokenizer,
    pack_examples,
    pack_lengths,
    padding_fraction,
    tokenize_example,
    tokenize_rows,
)
from sft_helpers import student_dir, tiny_sft_rows


@pytest.fixture(scope="module")
def model_dir() -> str:
    return student_dir()


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return load_tokenizer(model_dir)


@pytest.fixture(scope="module")
def model(model_dir):
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    return m.eval()


def test_options_accept_dict_pairs_and_arrow_map_forms():
    expect = "Q?\n\nOptions:\nA. x\nB. y"
    assert format_prompt("Q?", {"B": "y", "A": "x"}) == expect
    assert format_prompt("Q?", [("A", "x"), ("B", "y")]) == expect
    assert format_prompt("Q?", [{"key": "B", "value": "y"}, {"key": "A", "value": "x"}]) == expect
    assert format_prompt("Q?", None) == "Q?"


def test_labels_mask_the_prompt_and_cover_exactly_the_response(tokenizer):
    row = tiny_sft_rows(1)[0]
    ex = tokenize_example(row, tokenizer, 1024)
    prompt_text = tokenizer.apply_chat_template(
        [{"role": "user", "content": format_prompt(row["question"], row["options"])}],
        add_generation_prompt=True, tokenize=False)
    n_prompt = len(tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
    assert ex.labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert ex.labels[n_prompt:] == ex.input_ids[n_prompt:]
    assert ex.input_ids[-1] == tokenizer.eos_token_id
    response = tokenizer.decode(ex.input_ids[n_prompt:], skip_special_tokens=False)
    assert response.startswith("## Thinking\n\n")
    assert "## Final Answer\n\nA. " + row["answer_text"] in response
    # the prompt went through the chat template as a user turn ending in the generation prompt
    prompt = tokenizer.decode(ex.input_ids[:n_prompt], skip_special_tokens=False)
    assert "<|im_start|>user\n" in prompt and prompt.endswith("<|im_start|>assistant\n")
    assert "A. metformin" in prompt


def test_bad_rows_are_rejected_with_a_reason_not_dropped(tokenizer):
    good = tiny_sft_rows(1)[0]
    rows = [good, {**good, "reasoning": None}, {**good, "question": "  "},
            {**good, "reasoning": "word " * 3000}, {**good, "options": [("A",)]}]
    out = tokenize_rows(rows, tokenizer, max_seq_len=512)
    assert out["reject_reason"] == [None, "missing_reasoning", "missing_question", "too_long", "bad_options"]
    assert len(out["input_ids"]) == len(rows)


def test_best_fit_packing_respects_capacity_and_keeps_every_example():
    lengths = [700, 300, 500, 500, 200, 1000, 10, 90, 690]
    bins = pack_lengths(lengths, 1000)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 1000 for b in bins)
    assert len(bins) == 4  # total 3990 tokens: 4 bins is optimal
    with pytest.raises(ValueError):
        pack_lengths([1001], 1000)


def test_packed_positions_restart_per_example_and_padding_fraction_is_counted():
    packed = pack_examples([[5, 6, 7], [8, 9]], [[-100, 6, 7], [-100, 9]], capacity=8)
    assert packed["input_ids"] == [[5, 6, 7, 8, 9]]
    assert packed["position_ids"] == [[0, 1, 2, 0, 1]]
    seqs = [{"input_ids": [1, 2, 3, 4], "labels": [-100, 2, 3, 4], "position_ids": [0, 1, 0, 1], "n_examples": 2},
            {"input_ids": [1, 2], "labels": [-100, 2], "position_ids": [0, 1], "n_examples": 1}]
    batch = collate(seqs, pad_id=0, packed=True)
    assert batch["pad_tokens"] == 2 and batch["real_tokens"] == 6
    assert padding_fraction(batch["pad_tokens"], batch["real_tokens"]) == pytest.approx(0.25)
    assert batch["labels"][1].tolist() == [-100, 2, -100, -100]
    assert "attention_mask" not in batch
    assert batch["position_ids"][1].tolist() == [0, 1, 0, 1]  # the pad tail is its own segment
    assert batch["label_tokens"] == 4


def test_packing_pads_far_less_than_unpacked_batches(tokenizer):
    short, long = tiny_sft_rows(32, reasoning_words=6), tiny_sft_rows(32, reasoning_words=120)
    rows = [r for pair in zip(short, long) for r in pair]  # mixed lengths, as after a shuffle
    packed = SftDataset(rows, tokenizer, max_seq_len=1024, packing=True)
    unpacked = SftDataset(rows, tokenizer, max_seq_len=1024, packing=False)
    assert packed.n_examples == unpacked.n_examples == 64
    assert packed.real_tokens == unpacked.real_tokens
    assert len(packed) < len(unpacked)
    assert unpacked.padding_fraction(8) > 0.15
    assert packed.padding_fraction(2) < unpacked.padding_fraction(8)


def test_a_packed_token_sees_only_its_own_example(tokenizer, model):
    """Logits of each example are the same packed with others as computed alone."""
    rows = tiny_sft_rows(3, reasoning_words=6)
    examples = [tokenize_example(r, tokenizer, 512) for r in rows]
    packed = pack_examples([e.input_ids for e in examples], [e.labels for e in examples], capacity=512)
    assert packed["n_examples"] == [3]
    batch = collate([{k: v[0] for k, v in packed.items()}], pad_id=tokenizer.pad_token_id, packed=True)
    with torch.no_grad():
        together = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        # control: the same packed tokens with ordinary positions attend across examples
        leaky = model(input_ids=batch["input_ids"], use_cache=False).logits[0]
    ids = batch["input_ids"][0].tolist()
    leaked = []
    for ex in examples:
        n = len(ex.input_ids)
        # packing reorders examples (longest first): locate this one in the packed sequence
        start = next(s for s in range(len(ids) - n + 1) if ids[s:s + n] == ex.input_ids)
        with torch.no_grad():
            alone = model(input_ids=torch.tensor([ex.input_ids]), use_cache=False).logits[0]
        torch.testing.assert_close(together[start:start + n], alone, atol=2e-4, rtol=1e-4)
        leaked.append((leaky[start:start + n] - alone).abs().max().item())
    assert max(leaked) > 1e-2  # without restarts later examples do see earlier ones
