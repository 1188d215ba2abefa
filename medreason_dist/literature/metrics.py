"""Evaluation figures for search and screening, with Wilson score intervals.

- recall and precision of a prediction against gold labels (interval per proportion);
- recall@k of a ranking: the share of the included studies in its first k;
- WSS@95 (work saved over sampling at 95% recall): 1 - (records read until 95% of the included
  studies are found) / (all records) - 0.05, the usual definition for screening prioritisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Proportion:
    hits: int
    total: int
    low: float
    high: float

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    def as_dict(self) -> dict:
        return {"value": self.value, "hits": self.hits, "total": self.total, "ci95": [self.low, self.high]}


def wilson(hits: int, total: int, z: float = 1.959963984540054) -> Proportion:
    """The Wilson score interval (95% by default); (0, 1) when there is nothing to count."""
    if total <= 0:
        return Proportion(hits, total, 0.0, 1.0)
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return Proportion(hits, total, max(0.0, centre - half), min(1.0, centre + half))


def recall_precision(predicted: list[bool], gold: list[bool]) -> dict[str, Proportion]:
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} gold labels")
    tp = sum(p and g for p, g in zip(predicted, gold))
    return {"recall": wilson(tp, sum(gold)), "precision": wilson(tp, sum(predicted))}


def recall_at_k(ranking: list[int], gold: list[bool], k: int) -> Proportion:
    """Share of the included studies among the first ``k`` ranked positions."""
    found = sum(1 for i in ranking[:k] if gold[i])
    return wilson(found, sum(gold))


def wss_at(ranking: list[int], gold: list[bool], recall_level: float = 0.95) -> float | None:
    """Work saved over sampling at ``recall_level``; None when nothing is included."""
    relevant = sum(gold)
    if relevant == 0:
        return None
    needed = math.ceil(recall_level * relevant)
    found = 0
    for read, i in enumerate(ranking, 1):
        found += gold[i]
        if found >= needed:
            return 1.0 - read / len(ranking) - (1.0 - recall_level)
    raise ValueError("the ranking does not cover every record")
