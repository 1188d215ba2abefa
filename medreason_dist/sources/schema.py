"""The one normalised QA schema every source is turned into, and its quarantine schema."""

from __future__ import annotations

import hashlib
import json
import re
import string

import pyarrow as pa

QA_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("question", pa.string(), nullable=False),
        pa.field("options", pa.map_(pa.string(), pa.string())),
        pa.field("answer_text", pa.string(), nullable=False),
        pa.field("answer_idx", pa.string()),  # option letter; null for free-text answers
        pa.field("reference_reasoning", pa.string()),
        pa.field("meta", pa.string()),  # source-specific extras as a JSON object
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("file", pa.string()),
        pa.field("row", pa.int64()),  # 1-based line (JSONL) or record number
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("raw", pa.string()),
    ]
)

OPTION_LETTERS = string.ascii_uppercase  # A-Z: any number of options up to 26
_WS = re.compile(r"\s+")


class BadRow(Exception):
    """A record that cannot be normalised; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def normalize_text(text: str) -> str:
    """Lower-case, collapse whitespace: the form used for hashing and exact matching."""
    return _WS.sub(" ", text).strip().lower()


def qa_id(question: str, options: dict[str, str], answer_text: str) -> str:
    """Stable content hash of a QA item.

    It ignores the source and split so the same item arriving from two places gets one id
    (which is what de-duplication and decontamination want).
    """
    payload = json.dumps(
        [normalize_text(question), sorted((k, normalize_text(v)) for k, v in options.items()),
         normalize_text(answer_text)],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def make_row(
    *,
    source: str,
    split: str,
    question: object,
    options: dict[str, str],
    answer_text: object,
    answer_idx: str | None,
    reference_reasoning: object = None,
    meta: dict | None = None,
    require_options: bool = True,
) -> dict:
    """Validate the normalised fields and build a QA row (raises :class:`BadRow`)."""
    if not isinstance(question, str) or not question.strip():
        raise BadRow("missing_question")
    clean_options: dict[str, str] = {}
    for key, text in options.items():
        letter = str(key).strip().upper()
        if len(letter) != 1 or letter not in OPTION_LETTERS:
            raise BadRow("bad_option_key", f"option key {key!r} is not a letter A-Z")
        if text is None or (isinstance(text, float) and text != text) or not str(text).strip():
            raise BadRow("empty_option", f"option {letter} has no text")
        clean_options[letter] = str(text).strip()
    if require_options and not clean_options:
        raise BadRow("empty_options")
    if answer_idx is not None:
        answer_idx = str(answer_idx).strip().upper()
        if answer_idx not in clean_options:
            raise BadRow(
                "answer_not_in_options",
                f"answer {answer_idx!r} not among options {sorted(clean_options)}",
            )
        if answer_text is None or not str(answer_text).strip():
            answer_text = clean_options[answer_idx]
    if answer_text is None or not isinstance(answer_text, (str, int, float)) or not str(answer_text).strip():
        raise BadRow("missing_answer")
    answer_text = str(answer_text).strip()
    reasoning = None
    if isinstance(reference_reasoning, str) and reference_reasoning.strip():
        reasoning = reference_reasoning.strip()
    question = question.strip()
    return {
        "id": qa_id(question, clean_options, answer_text),
        "source": source,
        "split": split,
        "question": question,
        "options": list(clean_options.items()),
        "answer_text": answer_text,
        "answer_idx": answer_idx,
        "reference_reasoning": reasoning,
        "meta": json.dumps(meta or {}, ensure_ascii=False, sort_keys=True, default=str),
    }
