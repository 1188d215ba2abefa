"""Screening labels, scores and ranking; evaluation figures with Wilson intervals."""

from __future__ import annotations

import pytest

from medreason_dist.literature import metrics
from medreason_dist.literature.protocol import Criterion
from medreason_dist.literature.screening import ScreeningAnswer, check_answer, rank, score

CRITERIA = [Criterion(id="I1", kind="inclusion", text="randomised"), Criterion(id="I2", kind="inclusion", text="knee"),
            Criterion(id="E1", kind="exclusion", text="case report")]


def answer(*labels):
    return ScreeningAnswer(labels=[{"criterion": c, "label": lab, "rationale": "because"} for c, lab in labels])


def test_score_negates_exclusion_criteria_and_keeps_partial():
    assert score(answer(("I1", "YES"), ("I2", "YES"), ("E1", "NO")), CRITERIA) == pytest.approx(1.0)
    assert score(answer(("I1", "YES"), ("I2", "PARTIAL"), ("E1", "YES")), CRITERIA) == pytest.approx(0.5 / 3)
    assert score(answer(("I1", "UNCERTAIN"), ("I2", "NO"), ("E1", "UNCERTAIN")), CRITERIA) == pytest.approx(-1 / 3)


def test_incomplete_answers_are_named_not_patched():
    assert check_answer(answer(("I1", "YES"), ("I2", "NO"), ("E1", "NO")), CRITERIA) is None
    problem = check_answer(answer(("I1", "YES"), ("I1", "NO"), ("E9", "NO")), CRITERIA)
    assert problem == "missing: I2, E1; unknown: E9; repeated: I1"


def test_ranking_is_stable():
    assert rank([0.2, 1.0, 0.2, -1.0]) == [1, 0, 2, 3]


def test_wilson_interval_known_values():
    p = metrics.wilson(8, 10)
    assert (round(p.low, 4), round(p.high, 4)) == (0.4902, 0.9433)  # the textbook example
    assert metrics.wilson(0, 0).as_dict() == {"value": None, "hits": 0, "total": 0, "ci95": [0.0, 1.0]}


def test_recall_precision_recall_at_k_and_wss():
    gold = [True, False, True, False, False, False, False, False, False, True]
    predicted = [True, True, False, False, False, False, False, False, False, True]
    figures = metrics.recall_precision(predicted, gold)
    assert (figures["recall"].hits, figures["recall"].total) == (2, 3)
    assert (figures["precision"].hits, figures["precision"].total) == (2, 3)
    ranking = [0, 9, 1, 2, 3, 4, 5, 6, 7, 8]  # all three included within the first four
    assert metrics.recall_at_k(ranking, gold, 2).value == pytest.approx(2 / 3)
    assert metrics.wss_at(ranking, gold) == pytest.approx(1 - 4 / 10 - 0.05)
    assert metrics.wss_at(list(range(10)), gold) == pytest.approx(1 - 10 / 10 - 0.05)  # random-like order
    with pytest.raises(ValueError):
        metrics.recall_precision([True], gold)
