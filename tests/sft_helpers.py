"""Shared helpers for the SFT tests: the packaged student model and small SFT tables."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent


def model_cache_dir() -> str:
    """Prepared-model cache shared by test runs (the config default), overridable by env."""
    return os.environ.get("MEDREASON_MODEL_CACHE", str(REPO / ".cache" / "medreason_dist"))


def student_dir() -> str:
    from medreason_dist.models import prepare_smollm2

    return str(prepare_smollm2(model_cache_dir()))


SFT_SCHEMA = pa.schema([
    pa.field("id", pa.string()),
    pa.field("question", pa.string()),
    pa.field("options", pa.map_(pa.string(), pa.string())),
    pa.field("answer_text", pa.string()),
    pa.field("answer_idx", pa.string()),
    pa.field("reasoning", pa.string()),
])

_ORGANS = ["liver", "kidney", "heart", "lung", "pancreas", "thyroid", "spleen", "stomach"]
_DRUGS = ["metformin", "lisinopril", "warfarin", "insulin", "amoxicillin", "furosemide", "aspirin", "heparin"]


def tiny_sft_rows(n: int, *, reasoning_words: int = 12) -> list[dict]:
    """Short, distinct, well-formed SFT rows (fast to train on a CPU)."""
    rows = []
    for i in range(n):
        organ, drug = _ORGANS[i % len(_ORGANS)], _DRUGS[(3 * i) % len(_DRUGS)]
        options = {"A": drug, "B": "observation", "C": "surgery", "D": "antibiotics"}
        reasoning = " ".join([f"The {organ} finding points to {drug}."] * max(1, reasoning_words // 6))
        rows.append({
            "id": f"row{i}", "question": f"Case {i}: a patient with a {organ} problem. Best first treatment?",
            "options": list(options.items()), "answer_text": drug, "answer_idx": "A", "reasoning": reasoning,
        })
    return rows


def tiny_sft_table(n: int, **kw) -> pa.Table:
    return pa.Table.from_pylist(tiny_sft_rows(n, **kw), schema=SFT_SCHEMA)


INSTRUCTION_SCHEMA = pa.schema([
    pa.field("row_id", pa.string()),
    pa.field("task", pa.string()),
    pa.field("split", pa.string()),
    pa.field("instruction", pa.string()),
    pa.field("response", pa.string()),
    pa.field("review_id", pa.string()),
    pa.field("source_ids", pa.list_(pa.string())),
    pa.field("rule", pa.string()),
])

_INSTRUCTION_TASKS = ("screening", "arms", "search")


def tiny_instruction_rows(n: int, *, tasks: tuple[str, ...] = _INSTRUCTION_TASKS) -> list[dict]:
    """Short LEADS-style instruction rows (prompt + compact JSON answer), tasks in rotation."""
    rows = []
    for i in range(n):
        task = tasks[i % len(tasks)]
        organ, drug = _ORGANS[i % len(_ORGANS)], _DRUGS[(5 * i) % len(_DRUGS)]
        if task == "screening":
            instruction = (f"Review question: does {drug} help {organ} disease?\n"
                           f"Study {i}: a trial of {drug} in {organ} patients.\n"
                           'Answer with JSON {"decision": "include" or "exclude"}.')
            response = '{"decision":"include"}' if i % 2 == 0 else '{"decision":"exclude"}'
        elif task == "arms":
            instruction = (f"List the arms of trial {i} ({drug} versus placebo for the {organ}) "
                           'as JSON {"arms": [names]}.')
            response = f'{{"arms":["{drug}","placebo"]}}'
        else:
            instruction = f"Write a PubMed query for: {drug} for {organ} disease. Answer as JSON {{\"query\": ...}}."
            response = f'{{"query":"{drug}[tiab] AND {organ}[tiab]"}}'
        rows.append({"row_id": f"{task}-{i}", "task": task, "split": "train", "instruction": instruction,
                     "response": response, "review_id": f"rev{i % 2}", "source_ids": [f"pmid{i}"],
                     "rule": "fixture"})
    return rows


def tiny_instruction_table(n: int, **kw) -> pa.Table:
    return pa.Table.from_pylist(tiny_instruction_rows(n, **kw), schema=INSTRUCTION_SCHEMA)
