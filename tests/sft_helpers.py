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
