"""Held-out loss per task: mean negative log-likelihood of the response tokens.

Rows are tokenized by ``data.tokenize_example``, the function training uses, so the masked
prompt, the learned response + eos and the ``too_long`` rule are the same as in training. Each
task's loss is token-weighted: the summed NLL of all its response tokens divided by their
count (a long response counts more than a short one, exactly as in the training loss).

    from medreason_dist.train.task_loss import per_task_loss
    per_task_loss("out/model", held_out_rows)   # {"screening": {"examples": .., "loss": ..}, ...}

Sequences are not packed; batches are padded on the right, with the padding masked out of
attention and its labels set to IGNORE_INDEX.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from medreason_dist.train.data import IGNORE_INDEX, RejectedExample, TokenizedExample, load_tokenizer, tokenize_example

UNKNOWN_TASK = "unknown"  # the task reported for rows without a ``task`` value


def _task_of(row: Mapping[str, Any]) -> str:
    task = row.get("task")
    return UNKNOWN_TASK if task is None else str(task)


def task_loss_with_model(model: Any, tokenizer: Any, rows: Iterable[Mapping[str, Any]], *, max_seq_len: int = 1024,
                         batch_size: int = 4) -> dict[str, dict]:
    """:func:`per_task_loss` for a model and tokenizer already in memory (on the model's device).

    The model is put in eval mode and left there.
    """
    import torch
    import torch.nn.functional as F

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device

    stats: dict[str, dict] = {}
    examples: dict[str, list[TokenizedExample]] = {}
    for row in rows:
        task = _task_of(row)
        entry = stats.setdefault(task, {"examples": 0, "tokens": 0, "loss": None, "rejected": 0})
        try:
            ex = tokenize_example(row, tokenizer, max_seq_len)
        except RejectedExample:
            entry["rejected"] += 1
            continue
        if all(label == IGNORE_INDEX for label in ex.labels):
            entry["rejected"] += 1
            continue
        examples.setdefault(task, []).append(ex)

    model.eval()
    for task, items in examples.items():
        # Similar lengths together: less padding, and the result does not depend on the order.
        items = sorted(items, key=lambda e: len(e.input_ids))
        nll_sum = 0.0
        n_tokens = 0
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            longest = max(len(e.input_ids) for e in chunk)
            ids = torch.full((len(chunk), longest), pad_id, dtype=torch.long)
            labels = torch.full((len(chunk), longest), IGNORE_INDEX, dtype=torch.long)
            mask = torch.zeros((len(chunk), longest), dtype=torch.long)
            for row_i, ex in enumerate(chunk):
                n = len(ex.input_ids)
                ids[row_i, :n] = torch.tensor(ex.input_ids, dtype=torch.long)
                labels[row_i, :n] = torch.tensor(ex.labels, dtype=torch.long)
                mask[row_i, :n] = 1
            ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
                # position t predicts token t + 1
                targets = labels[:, 1:]
                nll = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                      ignore_index=IGNORE_INDEX, reduction="sum")
            nll_sum += float(nll)
            n_tokens += int((targets != IGNORE_INDEX).sum())
        entry = stats[task]
        entry["examples"] = len(items)
        entry["tokens"] = n_tokens
        entry["loss"] = nll_sum / n_tokens if n_tokens else None
    return dict(sorted(stats.items()))


def per_task_loss(model_path: str, rows: Iterable[Mapping[str, Any]], *, max_seq_len: int = 1024,
                  batch_size: int = 4, device: str = "cpu") -> dict[str, dict]:
    """Per task: ``examples`` scored, response ``tokens``, ``loss`` and ``rejected`` rows.

    ``model_path`` is a Hugging Face model folder (or hub id) with its tokenizer. ``loss`` is
    the mean NLL per response token over the whole task (None when no row of the task could be
    scored); ``rejected`` counts rows tokenization refused (too long, missing fields, nothing
    to learn). Rows without a ``task`` are reported under ``"unknown"``.
    """
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.to(device)
    return task_loss_with_model(model, tokenizer, rows, max_seq_len=max_seq_len, batch_size=batch_size)
