"""Screening: one label per (candidate, criterion), a score per candidate, a ranking.

The model answers, for every criterion of the protocol, whether the record meets it: YES,
PARTIAL, NO or UNCERTAIN, with a one-sentence rationale (:class:`ScreeningAnswer`, the JSON
schema the engine layer constrains generation to). Scoring:

- each label is worth YES 1, PARTIAL 0.5, UNCERTAIN 0, NO -1;
- for an *exclusion* criterion the question is whether the exclusion applies, so its worth is
  negated (a study that is a case report scores -1 on "case report");
- the candidate's score is the mean over all criteria, in [-1, 1]; candidates are ranked by
  score (ties: the order of the candidate file), and those at or above ``threshold``
  (default 0.5) are predicted as included.

The engine is asked for :func:`criteria_model` of the review's criteria: one property per
criterion id, all required, so the decoding grammar itself guarantees every criterion is
labelled exactly once. Answers that arrive in the list shape (:class:`ScreeningAnswer`, e.g. from
an endpoint without schema support) are checked by :func:`check_answer`: one that misses a
criterion, names an unknown one or repeats one is not silently patched; the candidate becomes a
reject row with what is wrong.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, create_model

from medreason_dist.literature.protocol import Criterion

Label = Literal["YES", "PARTIAL", "NO", "UNCERTAIN"]
WORTH: dict[str, float] = {"YES": 1.0, "PARTIAL": 0.5, "UNCERTAIN": 0.0, "NO": -1.0}
DEFAULT_THRESHOLD = 0.5


class CriterionLabel(BaseModel):
    criterion: str = Field(description="The criterion id, e.g. I1 or E2.")
    label: Label
    rationale: str = Field(min_length=1, max_length=400, description="One sentence from the record's text.")


class ScreeningAnswer(BaseModel):
    labels: list[CriterionLabel]


class _Judgement(BaseModel):
    label: Label
    # Short: six criteria of 400 characters each would not fit a small model's answer budget.
    rationale: str = Field(min_length=1, max_length=200, description="One sentence from the record's text.")


def criteria_model(criteria: list[Criterion]) -> type[BaseModel]:
    """The answer schema for one set of criteria: ``{"I1": {"label", "rationale"}, ...}``."""
    return create_model("CriterionJudgements", **{c.id: (_Judgement, Field(description=c.text)) for c in criteria})


def as_answer(judgements: dict) -> ScreeningAnswer:
    """A :func:`criteria_model` answer (a plain dict) in the list shape, criteria in order."""
    return ScreeningAnswer(labels=[CriterionLabel(criterion=cid, **value) for cid, value in judgements.items()])


def check_answer(answer: ScreeningAnswer, criteria: list[Criterion]) -> str | None:
    """``None`` when the answer labels every criterion exactly once, else what is wrong."""
    wanted = [c.id for c in criteria]
    given = [lab.criterion for lab in answer.labels]
    repeated = sorted({c for c in given if given.count(c) > 1})
    unknown = sorted(set(given) - set(wanted))
    missing = [c for c in wanted if c not in given]
    problems = [f"{name}: {', '.join(ids)}" for name, ids in
                (("missing", missing), ("unknown", unknown), ("repeated", repeated)) if ids]
    return "; ".join(problems) or None


def score(answer: ScreeningAnswer, criteria: list[Criterion]) -> float:
    """Mean worth over the criteria (exclusion criteria negated); see the module doc."""
    kinds = {c.id: c.kind for c in criteria}
    worths = [WORTH[lab.label] * (-1.0 if kinds[lab.criterion] == "exclusion" else 1.0) for lab in answer.labels]
    return sum(worths) / len(worths) if worths else 0.0


def rank(scores: list[float]) -> list[int]:
    """Candidate positions, best first (stable: equal scores keep the input order)."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])
