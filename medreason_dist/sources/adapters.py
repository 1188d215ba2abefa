"""Adapters: one function per source layout, each turning a raw record into a QA row.

An adapter receives the raw record (a dict), the source label, the split and the adapter
options from the config, and returns a row built by :func:`make_row` or raises
:class:`BadRow` with a reason. Field names follow the public releases of each dataset.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from medreason_dist.sources.schema import OPTION_LETTERS, BadRow, make_row

Adapter = Callable[[dict, str, str, dict], dict]

MMLU_MEDICAL_SUBJECTS = (
    "anatomy",
    "clinical_knowledge",
    "college_biology",
    "college_medicine",
    "medical_genetics",
    "professional_medicine",
)


def _options_from(value: Any) -> dict[str, str]:
    """Options given as {letter: text}, [{key, value}], or a plain list (lettered A, B, ...)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, dict) and "key" in v for v in value):
            return {str(v["key"]): v.get("value", v.get("text")) for v in value}
        if len(value) > len(OPTION_LETTERS):
            raise BadRow("bad_options", f"{len(value)} options; at most 26 are supported")
        return {OPTION_LETTERS[i]: v for i, v in enumerate(value)}
    raise BadRow("bad_options", f"options of type {type(value).__name__}")


def medqa(rec: dict, source: str, split: str, opts: dict) -> dict:
    """MedQA (USMLE) and MedBullets: question, options {A: ...}, answer, answer_idx."""
    meta = {k: rec[k] for k in ("meta_info",) if k in rec}
    return make_row(
        source=source,
        split=split,
        question=rec.get("question"),
        options=_options_from(rec.get("options")),
        answer_text=rec.get("answer"),
        answer_idx=rec.get("answer_idx") or None,
        reference_reasoning=rec.get("explanation"),
        meta=meta,
    )


def medmcqa(rec: dict, source: str, split: str, opts: dict) -> dict:
    """MedMCQA: question, opa..opd, cop (0-based on the hub, 1-based in the original JSON)."""
    options = {letter: rec.get(f"op{letter.lower()}") for letter in "ABCD"}
    cop = rec.get("cop")
    base = int(opts.get("cop_base", 0))
    try:
        index = int(cop) - base
    except (TypeError, ValueError):
        raise BadRow("missing_answer", f"cop={cop!r}") from None
    if not 0 <= index < 4:
        raise BadRow("answer_not_in_options", f"cop={cop!r} with cop_base={base}")
    meta = {k: rec[k] for k in ("id", "subject_name", "topic_name", "choice_type") if rec.get(k) is not None}
    return make_row(
        source=source,
        split=split,
        question=rec.get("question"),
        options=options,
        answer_text=None,
        answer_idx="ABCD"[index],
        reference_reasoning=rec.get("exp"),
        meta=meta,
    )


_PUBMEDQA_CHOICES = {"A": "yes", "B": "no", "C": "maybe"}


def pubmedqa(rec: dict, source: str, split: str, opts: dict) -> dict:
    """PubMedQA (labeled / artificial): the abstract context is part of the question."""
    question = rec.get("question", rec.get("QUESTION"))
    context = rec.get("context", rec.get("CONTEXTS"))
    if isinstance(context, dict):
        contexts = context.get("contexts") or []
    else:
        contexts = context or []
    if isinstance(contexts, str):
        contexts = [contexts]
    decision = rec.get("final_decision")
    if not isinstance(decision, str) or not decision.strip():
        raise BadRow("missing_answer", "final_decision is empty")
    letter = {v: k for k, v in _PUBMEDQA_CHOICES.items()}.get(decision.strip().lower())
    if letter is None:
        raise BadRow("answer_not_in_options", f"final_decision={decision!r}")
    if isinstance(question, str) and contexts and opts.get("include_context", True):
        question = "Context: " + " ".join(str(c) for c in contexts) + "\nQuestion: " + question
    pubid = rec.get("pubid", rec.get("_key"))
    return make_row(
        source=source,
        split=split,
        question=question,
        options=dict(_PUBMEDQA_CHOICES),
        answer_text=None,
        answer_idx=letter,
        reference_reasoning=rec.get("long_answer", rec.get("LONG_ANSWER")),
        meta={"pubid": pubid} if pubid is not None else {},
    )


def mmlu(rec: dict, source: str, split: str, opts: dict) -> dict:
    """MMLU: question, choices [..], answer (0-based index or letter), subject."""
    subjects = opts.get("subjects", MMLU_MEDICAL_SUBJECTS)
    subject = rec.get("subject") or opts.get("subject")
    if subjects and subject not in subjects:
        raise BadRow("not_medical_subject", f"subject={subject!r}")
    choices = _options_from(rec.get("choices"))
    answer = rec.get("answer")
    if isinstance(answer, int) or (isinstance(answer, str) and answer.isdigit()):
        index = int(answer)
        letter = OPTION_LETTERS[index] if 0 <= index < len(OPTION_LETTERS) else f"#{index}"
    elif isinstance(answer, str) and answer.strip():
        letter = answer.strip()
    else:
        raise BadRow("missing_answer")
    return make_row(
        source=source, split=split, question=rec.get("question"), options=choices,
        answer_text=None, answer_idx=letter, meta={"subject": subject},
    )


def huatuo_o1(rec: dict, source: str, split: str, opts: dict) -> dict:
    """HuatuoGPT-o1 SFT data: free-text Question / Complex_CoT / Response."""
    return make_row(
        source=source, split=split, question=rec.get("Question"), options={},
        answer_text=rec.get("Response"), answer_idx=None,
        reference_reasoning=rec.get("Complex_CoT"), require_options=False,
    )


_CHOICES_BLOCK = re.compile(r"\n\s*Answer Choices:.*\Z", re.S)


def medxpertqa(rec: dict, source: str, split: str, opts: dict) -> dict:
    """MedXpertQA (text): options {A..J}, label letter; the question repeats the choices."""
    question = rec.get("question")
    if isinstance(question, str):
        question = _CHOICES_BLOCK.sub("", question)
    meta = {k: rec[k] for k in ("id", "medical_task", "body_system", "question_type") if k in rec}
    return make_row(
        source=source, split=split, question=question, options=_options_from(rec.get("options")),
        answer_text=None, answer_idx=rec.get("label") or None, meta=meta,
    )


_HLE_CHOICE = re.compile(r"^\s*([A-Z])[.)]\s+(.+?)\s*$")


def hle(rec: dict, source: str, split: str, opts: dict) -> dict:
    """Humanity's Last Exam: text-only items; multiple choice lists its options in the question."""
    if rec.get("image"):
        raise BadRow("has_image", "image questions are out of scope for a text model")
    categories = opts.get("categories", ["Biology/Medicine"])
    if categories and rec.get("category") not in categories:
        raise BadRow("not_medical_subject", f"category={rec.get('category')!r}")
    question = rec.get("question")
    meta = {k: rec[k] for k in ("id", "category", "answer_type") if k in rec}
    if rec.get("answer_type") == "multipleChoice" and isinstance(question, str):
        head, _, tail = question.partition("Answer Choices:")
        options = {}
        for line in tail.splitlines():
            m = _HLE_CHOICE.match(line)
            if m:
                options[m.group(1)] = m.group(2)
        if not options:
            raise BadRow("empty_options", "multipleChoice item without parseable choices")
        return make_row(
            source=source, split=split, question=head.strip(), options=options, answer_text=None,
            answer_idx=str(rec.get("answer") or "").strip() or None,
            reference_reasoning=rec.get("rationale"), meta=meta,
        )
    return make_row(
        source=source, split=split, question=question, options={}, answer_text=rec.get("answer"),
        answer_idx=None, reference_reasoning=rec.get("rationale"), meta=meta, require_options=False,
    )


ADAPTERS: dict[str, Adapter] = {
    "medqa": medqa,
    "medbullets": medqa,
    "medmcqa": medmcqa,
    "pubmedqa": pubmedqa,
    "mmlu": mmlu,
    "huatuo_o1": huatuo_o1,
    "medxpertqa": medxpertqa,
    "hle": hle,
}


def get_adapter(name: str) -> Adapter:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise KeyError(f"unknown adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}") from None
