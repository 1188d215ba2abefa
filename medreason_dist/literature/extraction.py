"""Extraction schemas (pydantic -> JSON schema for constrained generation), chunking of long
texts and the deterministic merge of per-chunk answers.

Every extracted value says whether the text reports it and quotes the span that supports it;
"not reported" is an explicit answer (``reported: false``, no value), never a missing key.
Participant statistics and results follow ClinicalTrials.gov's baseline / outcome conventions
(``paramType``, ``unitOfMeasure``, ``timeFrame``, one value per arm group); arm groups use the
registry's arm types.

Long texts. A text longer than the model's budget is cut into chunks at paragraph boundaries
(a paragraph longer than the budget is cut at sentence ends, then words), each chunk is
extracted on its own, and the answers are merged by :func:`merge_extractions`:

1. study characteristics: per field, the reported value of the earliest chunk wins; a later
   chunk reporting a different value is counted in ``conflicts`` (its value is not used);
2. arm groups, participant statistics and results: the union over chunks in chunk order, one
   entry per key (arm: normalised label; statistic: measure + group + paramType; result:
   outcome + group + timeFrame), the earliest chunk's entry kept;
3. an entry whose evidence is not found in the source text (whitespace-insensitive) is dropped
   and counted in ``unsupported`` -- a value without a supporting span is not extracted.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Literal, Optional

from pydantic import BaseModel, Field, create_model

from medreason_dist.literature.ctgov import ARM_TYPES
from medreason_dist.literature.protocol import ExtractionField, Protocol

ParamType = Literal["MEAN", "MEDIAN", "COUNT_OF_PARTICIPANTS", "COUNT_OF_UNITS", "NUMBER", "GEOMETRIC_MEAN",
                    "LEAST_SQUARES_MEAN", "LOG_MEAN"]
ArmType = Literal[ARM_TYPES]  # type: ignore[valid-type]


class _Evidence(BaseModel):
    evidence: Optional[str] = Field(None, max_length=600, description="Verbatim span of the text supporting it.")


class ArmGroup(_Evidence):
    label: str = Field(min_length=1)
    type: ArmType
    description: Optional[str] = None
    intervention_names: list[str] = Field(default_factory=list)


class ParticipantStatistic(_Evidence):
    measure: str = Field(min_length=1, description="e.g. Age, Female, BMI")
    param_type: ParamType
    unit: str = Field(min_length=1, description="unitOfMeasure, e.g. years, participants")
    group: str = Field(min_length=1, description="The arm group's label, or 'Total'.")
    value: Optional[float] = None
    reported: bool = True


class OutcomeResult(_Evidence):
    outcome: str = Field(min_length=1)
    param_type: ParamType
    unit: str = Field(min_length=1)
    time_frame: str = Field(min_length=1)
    group: str = Field(min_length=1)
    value: Optional[float] = None
    reported: bool = True


_PY_TYPES: dict[str, Any] = {"text": str, "number": float, "integer": int, "boolean": bool}


def _value_type(f: ExtractionField) -> Any:
    if f.type == "category":
        return Literal[tuple(f.categories)]  # type: ignore[misc]
    return _PY_TYPES[f.type]


def characteristics_model(protocol: Protocol) -> type[BaseModel]:
    """A model with one ``{reported, value, evidence}`` object per extraction field of the protocol."""
    fields: dict[str, Any] = {}
    for f in protocol.fields:
        value_model = create_model(
            f"Field_{f.name}", __base__=_Evidence,
            reported=(bool, Field(description="False when the text does not report it.")),
            value=(Optional[_value_type(f)], Field(None, description=f.description + (f" ({f.unit})" if f.unit else ""))),
        )
        fields[f.name] = (value_model, ...)
    return create_model("StudyCharacteristics", **fields)


def extraction_model(protocol: Protocol) -> type[BaseModel]:
    """The whole answer for one text (or one chunk of it)."""
    return create_model(
        "StudyExtraction",
        characteristics=(characteristics_model(protocol), ...),
        arms=(list[ArmGroup], Field(default_factory=list)),
        participants=(list[ParticipantStatistic], Field(default_factory=list)),
        results=(list[OutcomeResult], Field(default_factory=list)),
    )


# --------------------------------------------------------------------------------------------
# Chunking


def _pack(items: list[str], sep: str, budget: int, count: Callable[[str], int]) -> list[str]:
    """Greedy: join consecutive items with ``sep`` while the result stays within the budget."""
    out, current = [], ""
    for item in items:
        candidate = f"{current}{sep}{item}" if current else item
        if current and count(candidate) > budget:
            out.append(current)
            current = item
        else:
            current = candidate
    if current:
        out.append(current)
    return out


def _pieces(paragraph: str, budget: int, count: Callable[[str], int]) -> list[str]:
    """A paragraph within the budget, else its sentences (a sentence over it: its words), packed."""
    if count(paragraph) <= budget:
        return [paragraph]
    units: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
        units.extend([sentence] if count(sentence) <= budget else sentence.split())
    return _pack(units, " ", budget, count)


def chunk_text(text: str, budget_tokens: int, count: Callable[[str], int] | None = None) -> list[str]:
    """Chunks of at most ``budget_tokens`` (``count``: a tokenizer's length; default words),
    cut at paragraph boundaries where possible."""
    if budget_tokens < 1:
        raise ValueError("budget_tokens must be positive")
    count = count or (lambda s: len(s.split()))
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return _pack([piece for para in paragraphs for piece in _pieces(para, budget_tokens, count)], "\n\n",
                 budget_tokens, count)


# --------------------------------------------------------------------------------------------
# Merging


def _squash(text: str) -> str:
    return " ".join(text.split()).lower()


def supported(evidence: str | None, source: str) -> bool:
    return bool(evidence) and _squash(evidence) in _squash(source)


def merge_extractions(chunks: list[dict], source: str) -> tuple[dict, dict[str, int]]:
    """One answer from per-chunk answers (plain dicts of :func:`extraction_model`), by the rule
    in the module doc; returns (answer, counts of conflicts and unsupported entries)."""
    counts = {"conflicts": 0, "unsupported": 0}
    characteristics: dict[str, dict] = {}
    for chunk in chunks:
        for name, answer in (chunk.get("characteristics") or {}).items():
            if not answer.get("reported"):
                characteristics.setdefault(name, {"reported": False, "value": None, "evidence": None})
                continue
            if not supported(answer.get("evidence"), source):
                counts["unsupported"] += 1
                characteristics.setdefault(name, {"reported": False, "value": None, "evidence": None})
                continue
            current = characteristics.get(name)
            if current is None or not current["reported"]:
                characteristics[name] = dict(answer)
            elif current["value"] != answer.get("value"):
                counts["conflicts"] += 1
    keys = {
        "arms": lambda e: _squash(e["label"]),
        "participants": lambda e: (_squash(e["measure"]), _squash(e["group"]), e["param_type"]),
        "results": lambda e: (_squash(e["outcome"]), _squash(e["group"]), _squash(e["time_frame"])),
    }
    merged: dict[str, Any] = {"characteristics": characteristics}
    for part, key in keys.items():
        seen: dict[Any, dict] = {}
        for chunk in chunks:
            for entry in chunk.get(part) or []:
                if entry.get("evidence") is not None and not supported(entry["evidence"], source):
                    counts["unsupported"] += 1
                    continue
                seen.setdefault(key(entry), dict(entry))
        merged[part] = list(seen.values())
    return merged, counts
