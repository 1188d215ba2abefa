"""SFT examples: chat-formatted prompts, response-only labels, sequence packing, collation.

Everything here is plain Python/NumPy/PyTorch so the same code runs inside Ray Data
``map_batches`` tasks, inside a Ray Train worker and in a single debugging process.

Packing and attention. A packed sequence holds several examples back to back; its
``position_ids`` restart at 0 for every example. We pass those position ids *without* an
attention mask: transformers (5.x, ``masking_utils.find_packed_sequence_indices``) then turns
every restart into a segment boundary and builds a block-diagonal causal mask for SDPA/eager
(on CPU and GPU), and flash-attention-2 uses the same boundaries as variable-length
sequences. ``tests/test_sft_data.py`` checks that a token's logits are identical packed and
alone, so a transformers change that broke this would fail loudly.
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

IGNORE_INDEX = -100
# Columns every SFT dataset row must have (options may be null for free-text questions).
SFT_COLUMNS = ("question", "options", "answer_text", "answer_idx", "reasoning")
# The other accepted layout: instruction-format rows (e.g. the LEADS literature-mining tasks),
# where the user turn and the exact assistant answer are given verbatim.
INSTRUCTION_COLUMNS = ("instruction", "response")
# Columns of a tokenized example / packed sequence (what crosses the Ray Data -> worker boundary).
TOKEN_COLUMNS = ("input_ids", "labels", "position_ids", "n_examples")


# --------------------------------------------------------------------------------------------
# Text formatting


def normalize_options(options: Any) -> list[tuple[str, str]]:
    """(letter, text) pairs sorted by letter, from a dict, a list of pairs or a Parquet map.

    Arrow map columns arrive as lists of ``(key, value)`` tuples (``to_pylist``) or of
    ``{"key": .., "value": ..}`` dicts (some Ray Data paths); all forms are accepted.
    """
    if options is None:
        return []
    if isinstance(options, Mapping):
        items = list(options.items())
    else:
        items = []
        for item in options:
            if isinstance(item, Mapping):
                items.append((item.get("key"), item.get("value")))
            else:
                key, value = item
                items.append((key, value))
    pairs = [(str(k).strip(), str(v).strip()) for k, v in items if k is not None and v is not None]
    return sorted(pairs, key=lambda kv: kv[0])


def format_prompt(question: str, options: Any) -> str:
    """The user turn: the question, then one lettered option per line."""
    pairs = normalize_options(options)
    text = question.strip()
    if pairs:
        text += "\n\nOptions:\n" + "\n".join(f"{letter}. {value}" for letter, value in pairs)
    return text


def format_answer(answer_text: str, answer_idx: Any) -> str:
    answer_text = answer_text.strip()
    if answer_idx is not None and str(answer_idx).strip():
        return f"{str(answer_idx).strip()}. {answer_text}"
    return answer_text


def format_response(reasoning: str, answer: str) -> str:
    """The assistant turn the model learns to write (the eos token is appended when tokenizing)."""
    return f"## Thinking\n\n{reasoning.strip()}\n\n## Final Answer\n\n{answer}"


# --------------------------------------------------------------------------------------------
# Tokenization


@dataclass
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]


class RejectedExample(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None or not isinstance(value, str) or not value.strip():
        raise RejectedExample(f"missing_{key}")
    return value


def is_instruction_row(row: Mapping[str, Any]) -> bool:
    """True for an instruction-format row, False for a MedQA-style one.

    A row is instruction-format when it carries a non-null ``instruction`` or ``response``, or
    when it has an ``instruction`` key and no question. The last rule keeps a broken LEADS row
    (both fields null) on the instruction path, so it is rejected as ``missing_instruction``
    instead of ``missing_question``, while QA rows of a table that also holds instruction rows
    (null ``instruction``/``response``, a real question) stay on the QA path.
    """
    if row.get("instruction") is not None or row.get("response") is not None:
        return True
    return "instruction" in row and row.get("question") is None


def row_reference(row: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(id, short text) naming a row in the rejects table, for either row layout."""
    ident = row.get("id")
    if ident is None:
        ident = row.get("row_id")
    question = row.get("question")
    if isinstance(question, str):
        text = question[:300]
    elif isinstance(row.get("instruction"), str):
        text = row["instruction"][:200]
    else:
        text = None
    return (str(ident) if ident is not None else None), text


def missing_columns(names: Iterable[str]) -> list[str]:
    """Columns a dataset lacks for either accepted layout ([] when one is complete).

    When neither is complete the QA columns are reported, unless the dataset has an
    ``instruction`` or ``response`` column, in which case the instruction columns are.
    """
    present = set(names)
    qa = [c for c in SFT_COLUMNS if c not in present]
    inst = [c for c in INSTRUCTION_COLUMNS if c not in present]
    if not qa or not inst:
        return []
    return inst if present & set(INSTRUCTION_COLUMNS) else qa


def _prompt_and_response(row: Mapping[str, Any]) -> tuple[str, str]:
    """The user-turn text and the assistant text (without eos) of either row layout."""
    if is_instruction_row(row):
        # Both are used verbatim: the response is usually compact JSON and must be learned
        # exactly as it will be parsed, and the instruction is the prompt as sent at inference.
        return _text(row, "instruction"), _text(row, "response")
    question = _text(row, "question")
    answer_text = _text(row, "answer_text")
    reasoning = _text(row, "reasoning")
    try:
        prompt = format_prompt(question, row.get("options"))
    except (TypeError, ValueError) as err:
        raise RejectedExample("bad_options", str(err)[:200]) from err
    return prompt, format_response(reasoning, format_answer(answer_text, row.get("answer_idx")))


def tokenize_example(row: Mapping[str, Any], tokenizer: Any, max_seq_len: int) -> TokenizedExample:
    """Chat-template prompt (masked) + response + eos (learned). Raises RejectedExample.

    QA rows are formatted by :func:`format_prompt` / :func:`format_response`; instruction
    rows (see :func:`is_instruction_row`) use ``instruction`` and ``response`` as they are.
    """
    prompt, response_text = _prompt_and_response(row)
    prompt_text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    # The generation prompt ends with the assistant header and a newline, a clean token
    # boundary, so tokenizing the two halves separately equals tokenizing them together.
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response_text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    total = len(prompt_ids) + len(response_ids)
    if total > max_seq_len:
        raise RejectedExample("too_long", f"{total} tokens > max_seq_len {max_seq_len}")
    return TokenizedExample(
        input_ids=prompt_ids + response_ids,
        labels=[IGNORE_INDEX] * len(prompt_ids) + response_ids,
    )


@functools.lru_cache(maxsize=4)
def load_tokenizer(model_path: str) -> Any:
    """One tokenizer per process (Ray Data reuses worker processes across tasks)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.eos_token_id is None:
        raise ValueError(f"tokenizer at {model_path} has no eos token")
    if not tokenizer.chat_template:
        raise ValueError(f"tokenizer at {model_path} has no chat template")
    return tokenizer


def tokenize_rows(rows: Iterable[Mapping[str, Any]], tokenizer: Any, max_seq_len: int) -> dict[str, list]:
    """Tokenize rows; every input row yields one output row, rejected ones carry a reason.

    Output columns: input_ids, labels (empty lists when rejected), reject_reason, reject_detail.
    """
    out: dict[str, list] = {"input_ids": [], "labels": [], "reject_reason": [], "reject_detail": []}
    for row in rows:
        try:
            ex = tokenize_example(row, tokenizer, max_seq_len)
        except RejectedExample as err:
            out["input_ids"].append([])
            out["labels"].append([])
            out["reject_reason"].append(err.reason)
            out["reject_detail"].append(err.detail)
            continue
        if all(label == IGNORE_INDEX for label in ex.labels):
            out["input_ids"].append([])
            out["labels"].append([])
            out["reject_reason"].append("no_response_tokens")
            out["reject_detail"].append("")
            continue
        out["input_ids"].append(ex.input_ids)
        out["labels"].append(ex.labels)
        out["reject_reason"].append(None)
        out["reject_detail"].append(None)
    return out


# --------------------------------------------------------------------------------------------
# Packing


def pack_lengths(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Best-fit-decreasing bin packing: lists of example indices whose lengths sum to <= capacity.

    Longest first, each into the fullest bin that still has room (found by bisection over
    the sorted remaining capacities), which keeps bins nearly full with O(n log n) lookups.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # sorted (remaining capacity, bin id)
    for i in order:
        n = lengths[i]
        if n > capacity:
            raise ValueError(f"example {i} has {n} tokens > capacity {capacity}")
        pos = bisect.bisect_left(free, (n, -1))
        if pos < len(free):
            remaining, b = free.pop(pos)
        else:
            b, remaining = len(bins), capacity
            bins.append([])
        bins[b].append(i)
        remaining -= n
        if remaining > 0:
            bisect.insort(free, (remaining, b))
    return bins


def pack_examples(input_ids: Sequence[Sequence[int]], labels: Sequence[Sequence[int]], capacity: int) -> dict[str, list]:
    """Concatenate examples into packed sequences with per-example restarting position ids."""
    lengths = [len(x) for x in input_ids]
    out: dict[str, list] = {"input_ids": [], "labels": [], "position_ids": [], "n_examples": []}
    for members in pack_lengths(lengths, capacity):
        ids: list[int] = []
        labs: list[int] = []
        pos: list[int] = []
        for i in members:
            ids.extend(int(t) for t in input_ids[i])
            labs.extend(int(t) for t in labels[i])
            pos.extend(range(lengths[i]))
        out["input_ids"].append(ids)
        out["labels"].append(labs)
        out["position_ids"].append(pos)
        out["n_examples"].append(len(members))
    return out


def unpacked_examples(input_ids: Sequence[Sequence[int]], labels: Sequence[Sequence[int]]) -> dict[str, list]:
    """One example per sequence, in the same columns as :func:`pack_examples`."""
    return {
        "input_ids": [[int(t) for t in x] for x in input_ids],
        "labels": [[int(t) for t in x] for x in labels],
        "position_ids": [list(range(len(x))) for x in input_ids],
        "n_examples": [1] * len(input_ids),
    }


def sequences_from_tokens(
    input_ids: Sequence[Sequence[int]], labels: Sequence[Sequence[int]], *, packing: bool, capacity: int,
    window: int,
) -> dict[str, list]:
    """Packed (window by window) or unpacked training sequences from tokenized examples."""
    if not packing:
        return unpacked_examples(input_ids, labels)
    out: dict[str, list] = {k: [] for k in TOKEN_COLUMNS}
    for start in range(0, len(input_ids), window):
        part = pack_examples(input_ids[start:start + window], labels[start:start + window], capacity)
        for key in TOKEN_COLUMNS:
            out[key].extend(part[key])
    return out


# --------------------------------------------------------------------------------------------
# Collation


def collate(sequences: Sequence[Mapping[str, Any]], pad_id: int, *, packed: bool) -> dict[str, Any]:
    """Right-pad a micro batch to its longest sequence and build the model inputs.

    Packed batches carry ``position_ids`` and no attention mask (segments come from the
    position restarts; the padding tail is its own segment whose labels are ignored).
    Unpacked batches carry a 2D ``attention_mask`` and default positions.
    Returns tensors plus counts: real_tokens, pad_tokens, label_tokens.
    """
    import torch

    longest = max(len(s["input_ids"]) for s in sequences)
    batch = len(sequences)
    ids = np.full((batch, longest), pad_id, dtype=np.int64)
    labels = np.full((batch, longest), IGNORE_INDEX, dtype=np.int64)
    positions = np.zeros((batch, longest), dtype=np.int64)
    mask = np.zeros((batch, longest), dtype=np.int64)
    real = 0
    for row, seq in enumerate(sequences):
        n = len(seq["input_ids"])
        real += n
        ids[row, :n] = np.asarray(seq["input_ids"], dtype=np.int64)
        labels[row, :n] = np.asarray(seq["labels"], dtype=np.int64)
        positions[row, :n] = np.asarray(seq["position_ids"], dtype=np.int64)
        positions[row, n:] = np.arange(longest - n)
        mask[row, :n] = 1
    out: dict[str, Any] = {"input_ids": torch.from_numpy(ids), "labels": torch.from_numpy(labels)}
    if packed:
        out["position_ids"] = torch.from_numpy(positions)
    else:
        out["attention_mask"] = torch.from_numpy(mask)
    out["real_tokens"] = real
    out["pad_tokens"] = batch * longest - real
    out["label_tokens"] = int((labels[:, 1:] != IGNORE_INDEX).sum())
    out["n_examples"] = int(sum(int(s.get("n_examples", 1)) for s in sequences))
    return out


def padding_fraction(pad_tokens: int, real_tokens: int) -> float:
    total = pad_tokens + real_tokens
    return pad_tokens / total if total else 0.0


def batch_rows(columns: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Column dict (a Ray Data numpy batch or our own dicts) -> list of row dicts."""
    keys = [k for k in TOKEN_COLUMNS if k in columns]
    n = len(columns[keys[0]])
    return [{k: columns[k][i] for k in keys} for i in range(n)]


# --------------------------------------------------------------------------------------------
# Whole-dataset helper for single-process runs, tests and the benchmark


class SftDataset:
    """Tokenized (and optionally packed) training sequences built from SFT-dataset rows.

    ``sequences`` is a list of dicts with input_ids/labels/position_ids/n_examples;
    ``rejects`` maps reason -> count and ``rejected_rows`` keeps (row index, reason, detail).
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]], tokenizer: Any, *, max_seq_len: int,
                 packing: bool, pack_window: int = 4096) -> None:
        rows = list(rows)
        tok = tokenize_rows(rows, tokenizer, max_seq_len)
        keep = [i for i, reason in enumerate(tok["reject_reason"]) if reason is None]
        self.rejected_rows = [(i, tok["reject_reason"][i], tok["reject_detail"][i])
                              for i, reason in enumerate(tok["reject_reason"]) if reason is not None]
        self.rejects: dict[str, int] = {}
        for _, reason, _ in self.rejected_rows:
            self.rejects[reason] = self.rejects.get(reason, 0) + 1
        self.n_rows = len(rows)
        self.n_examples = len(keep)
        self.packing = packing
        self.max_seq_len = max_seq_len
        cols = sequences_from_tokens([tok["input_ids"][i] for i in keep], [tok["labels"][i] for i in keep],
                                     packing=packing, capacity=max_seq_len, window=pack_window)
        self.sequences = batch_rows(cols)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def real_tokens(self) -> int:
        return sum(len(s["input_ids"]) for s in self.sequences)

    def padding_fraction(self, micro_batch_size: int) -> float:
        """Share of pad tokens when batches of ``micro_batch_size`` are padded to their longest."""
        pad = real = 0
        for start in range(0, len(self.sequences), micro_batch_size):
            chunk = self.sequences[start:start + micro_batch_size]
            longest = max(len(s["input_ids"]) for s in chunk)
            n = sum(len(s["input_ids"]) for s in chunk)
            real += n
            pad += longest * len(chunk) - n
        return padding_fraction(pad, real)
