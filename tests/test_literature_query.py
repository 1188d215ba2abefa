"""Search-query grammars (PubMed, ClinicalTrials.gov) and local boolean search over records."""

from __future__ import annotations

from pathlib import Path

import pytest

from medreason_dist.literature.query import BoolOp, QueryError, Term, check_query, parse_query, search


def test_pubmed_query_tree_and_precedence():
    tree = parse_query('("knee osteoarthritis"[mh] OR knee osteoarthr*[tiab]) AND exercis*[tiab] NOT review[pt]')
    assert isinstance(tree, BoolOp) and tree.op == "AND"
    assert tree.left.op == "OR" and tree.left.left == Term(("knee", "osteoarthritis"), "mh", True)
    assert tree.left.right == Term(("knee", "osteoarthr*"), "tiab")
    assert tree.right == BoolOp("NOT", Term(("exercis*",), "tiab"), Term(("review",), "pt"))
    assert parse_query("a OR b AND c").op == "OR"  # AND binds tighter


@pytest.mark.parametrize("query,reason", [
    ("", "empty query"),
    ("(knee AND exercise", "unbalanced ("),
    ("knee) AND exercise", "unbalanced )"),
    ("knee AND", "AND at the end"),
    ("AND knee", "AND where a term was expected"),
    ("knee and exercise", "lower-case operator 'and'"),
    ('"knee osteoarthritis[tiab]', "unclosed quotation"),
    ("knee[tiabx]", "unknown PubMed field tag"),
    ("kn*[tiab]", "truncation"),
    ("(knee OR hip)[tiab]", "applies to a term"),
    ("()", "empty parentheses"),
    ("AREA[Condition]knee", "ClinicalTrials.gov syntax"),
])
def test_invalid_pubmed_queries_are_rejected_with_a_reason(query, reason):
    with pytest.raises(QueryError) as err:
        parse_query(query)
    assert reason in str(err.value)
    assert check_query(query) and reason in check_query(query)


def test_ctgov_syntax():
    tree = parse_query('AREA[Condition]"knee osteoarthritis" AND (exercise OR AREA[InterventionType]behavioral)',
                       "ctgov")
    assert tree.left == Term(("knee", "osteoarthritis"), "Condition", True)
    assert check_query("knee[tiab]", "ctgov").startswith("field tags in [] are PubMed syntax")
    assert "unknown ClinicalTrials.gov search area" in check_query("AREA[Colour]red", "ctgov")
    assert check_query("osteoarthritis, knee", "ctgov") is None


RECORDS = [
    {"title": "Quadriceps exercise for knee osteoarthritis pain", "abstract": "A randomised trial.",
     "mesh_terms": ["Osteoarthritis, Knee", "Exercise Therapy"], "publication_types": ["Randomized Controlled Trial"],
     "keywords": []},
    {"title": "Exercise therapy for knee osteoarthritis: a systematic review", "abstract": None,
     "mesh_terms": ["Osteoarthritis, Knee"], "publication_types": ["Review"], "keywords": []},
    {"title": "Hip osteoarthritis and exercising", "abstract": "Exercises helped.", "mesh_terms": [],
     "publication_types": [], "keywords": ["hip"]},
]


def test_local_search_semantics():
    titles = lambda q: [r["title"][:9] for r in search(q, RECORDS)]  # noqa: E731
    assert titles('"knee osteoarthritis"[tiab] AND exercis*[tiab]') == ["Quadricep", "Exercise "]
    assert titles('"knee osteoarthritis"[tiab] AND exercis*[tiab] NOT review[pt]') == ["Quadricep"]
    assert titles('"osteoarthritis, knee"[mh]') == ["Quadricep", "Exercise "]
    assert titles("exercising[ti] OR hip[ot]") == ["Hip osteo"]
    assert titles("osteoarthritis knee[ti]") == []  # adjacent words keep their order
    assert titles("randomised[ab]") == ["Quadricep"]


def test_fixture_review_queries_find_its_trials():
    from medreason_dist.literature.records import load_records

    root = Path(__file__).resolve().parents[1] / "medreason_dist" / "data" / "leads" / "knee_oa_exercise"
    records = load_records([root / "candidates.ris", root / "candidates.csv", root / "pubmed.xml"]).records.to_pylist()
    found = search('"knee osteoarthritis"[tiab] AND (exercis*[tiab] OR strengthening[tiab] OR "tai chi"[tiab] '
                   "OR yoga[tiab]) AND (randomised[tiab] OR randomized[tiab])", records)
    import csv

    with (root / "gold_labels.csv").open() as f:
        gold = {r["title"]: r["included"] == "1" for r in csv.DictReader(f)}
    hits = {r["title"] for r in found}
    included = {t for t, yes in gold.items() if yes}
    assert included <= hits  # recall 1.0 on the 16 eligible trials
    assert len(hits) < len(records)  # and it is a filter
