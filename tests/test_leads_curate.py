"""The LEADS curation job on local Spark: joins, six tasks, hygiene, quarantine, resume, exit codes.

The corpus is the synthetic generator's (small) with bad and tricky rows added on purpose; the
job runs through ``jobs/leads_curate.py`` (the spark-submit entry point) in this process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest_spark import spark  # noqa: F401  (one local Spark per test run)
from medreason_dist import storage
from medreason_dist.literature import synthetic_corpus as SC

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "jobs"))
import leads_curate as job  # noqa: E402

pytestmark = pytest.mark.slow

EVAL_REVIEW_TITLE = "Exercise therapy for chronic widespread pain in adults: a systematic review"
EVAL_STUDY_PMID = "99999901"


def _eval_folder(root: Path) -> Path:
    """An evaluation review in the TrialMind-SLR layout, one of whose studies is in the corpus."""
    folder = root / "eval_reviews"
    (folder / "search_screen").mkdir(parents=True)
    review = {"title": EVAL_REVIEW_TITLE, "pmid": "88888801", "date": "2024",
              "PICO": {"P": "adults with pain", "I": "exercise", "C": "usual care", "O": "pain"},
              "PICO_terms": {"P": ["pain"], "I": ["exercise"]},
              "trials": [{"title": "A trial", "pmid": EVAL_STUDY_PMID, "doi": None, "nctid": None}]}
    (folder / "search_screen" / "88888801.json").write_text(json.dumps(review))
    return folder


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    c = SC.generate_corpus(0.003, seed=1)
    reviews, pubs, registry = c.reviews.to_pylist(), c.publications.to_pylist(), c.registry.to_pylist()
    first_pub = next(p for p in pubs if p["pmid"])
    # a review repeated under another id: its search and screening rows are exact duplicates
    reviews.append(dict(reviews[0], review_id="SRDUP001"))
    # a review that is an evaluation review (same title): none of its rows may be kept
    reviews.append(dict(reviews[2], review_id="SREVAL01", title=EVAL_REVIEW_TITLE))
    # a near-identical second report of a study review 1 includes: one of the two is kept for it
    included = next(p for p in pubs if p["pmid"] == reviews[1]["included_pmids"][0])
    twin = dict(included, pmid="77777701", doi=None, nct_id=None,
                abstract=included["abstract"].replace("Results:", "Findings:", 1))
    reviews[1] = dict(reviews[1], included_pmids=reviews[1]["included_pmids"] + ["77777701"])
    # a study of an evaluation review, included by review 3
    eval_study = dict(first_pub, pmid=EVAL_STUDY_PMID, doi=None, nct_id=None, title="An evaluation study report")
    reviews[3] = dict(reviews[3], included_pmids=reviews[3]["included_pmids"] + [EVAL_STUDY_PMID])
    pubs += [
        twin, eval_study,
        dict(first_pub, pmid="66666601", doi=None, title=None),  # no title: quarantined
        dict(first_pub, abstract="shorter"),  # same PMID again: the fuller record is kept
        dict(first_pub, pmid="66666602", doi=None, nct_id="NCT09999999"),  # names an unknown NCT id
        dict(first_pub, pmid="66666603", doi=None, nct_id="NCT08888888"),  # its registry record is broken
    ]
    registry.append(dict(registry[0], nct_id="NCT08888888", protocol_section="{not json", results_section=None))
    for name, rows, schema in (("reviews", reviews, SC.REVIEWS_SCHEMA), ("publications", pubs, SC.PUBLICATIONS_SCHEMA),
                               ("registry", registry, SC.REGISTRY_SCHEMA)):
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), root / f"{name}.parquet")
    return root


def _args(corpus: Path, out: Path, eval_dir: Path, *more: str) -> list[str]:
    return ["--corpus", str(corpus), "--out", str(out), "--master", "local[2]",
            "--set", f"leads.curate.decontaminate_against={json.dumps([str(eval_dir)])}",
            "--set", "leads.curate.test_fraction=0.2", "--set", f"run.log_dir={out / 'logs'}", *more]


def test_curation_builds_six_tasks_with_hygiene_and_resumes(spark, corpus_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    eval_dir = _eval_folder(tmp_path)
    assert job.main(_args(corpus_dir, out, eval_dir)) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    leads = out / "leads"
    manifest = storage.read_manifest(str(leads / "instructions"))
    counts = manifest.extra["counts"]
    assert summary["rows"] == manifest.rows == counts["rows"]
    assert set(counts["rows_by_task"]) == {"search", "screening", "characteristics", "participants", "arms", "results"}
    assert counts["rows_by_split"]["test"] > 0 and counts["rows_by_split"]["train"] > 0

    quarantine = storage.read_table(str(leads / "curate_quarantine")).to_pylist()
    reasons = {q["reason"] for q in quarantine}
    assert {"publication_without_title", "duplicate_publication", "reported_nct_not_found",
            "registry_json_invalid"} <= reasons, reasons
    assert any(q["reason"] == "registry_json_invalid" and "NCT08888888" in q["key"] for q in quarantine)
    removed = storage.read_table(str(leads / "curate_removed")).to_pylist()
    why = {r["reason"] for r in removed}
    assert {"exact_duplicate", "near_duplicate", "eval_review_overlap", "eval_study_overlap",
            "study_in_test_split"} <= why, why
    assert manifest.rejects["exact_duplicate"] == sum(r["reason"] == "exact_duplicate" for r in removed)

    rows = storage.read_table(str(leads / "instructions")).to_pylist()
    assert len({r["row_id"] for r in rows}) == len(rows)
    assert all(r["rule"] and r["source_ids"] and r["instruction"] and r["response"] for r in rows)
    assert not [r for r in rows if r["review_id"] == "SREVAL01"]
    assert not [r for r in rows if f"pmid:{EVAL_STUDY_PMID}" in r["source_ids"]]
    # the twin reports: review 1 screens at most one of them
    pair = {"pmid:77777701", f"pmid:{_first_included(corpus_dir, 1)}"}
    twins = [r for r in rows if r["task"] == "screening" and r["review_id"] == "SR000002" and pair & set(r["source_ids"])]
    assert len(twins) == 1
    # no train row is built on a study that a test review includes
    test_reviews = {r["review_id"] for r in rows if r["split"] == "test" and r["review_id"]}
    reviews = pq.read_table(corpus_dir / "reviews.parquet").to_pylist()
    test_studies = {f"pmid:{p}" for r in reviews if r["review_id"] in test_reviews for p in r["included_pmids"]}
    assert test_studies and not [r for r in rows if r["split"] == "train" and test_studies & set(r["source_ids"])]
    stats = storage.read_table(str(leads / "curate_stats")).to_pylist()
    assert sum(s["rows"] for s in stats) == len(rows) and all(s["response_words_p50"] > 0 for s in stats)

    # opens without project code
    import duckdb
    import pandas as pd

    files = storage.dataset_files(str(leads / "instructions"))
    assert len(pd.concat(pd.read_parquet(storage.local_path(f)) for f in files)) == len(rows)
    got = duckdb.sql(f"SELECT task, count(*) FROM read_parquet({[str(storage.local_path(f)) for f in files]}) "
                     "GROUP BY task").fetchall()
    assert dict(got) == counts["rows_by_task"]

    # unchanged corpus and config: nothing is redone
    assert job.main(_args(corpus_dir, out, eval_dir)) == 0
    assert storage.read_manifest(str(leads / "instructions")).created_at == manifest.created_at


def _first_included(corpus_dir: Path, index: int) -> str:
    return pq.read_table(corpus_dir / "reviews.parquet").to_pylist()[index]["included_pmids"][0]


def test_missing_corpus_tables_and_bad_settings_name_the_problem(spark, tmp_path, capsys):  # noqa: F811
    empty = tmp_path / "empty"
    empty.mkdir()
    assert job.main(["--corpus", str(empty), "--out", str(tmp_path / "o"), "--master", "local[2]",
                     "--set", "leads.curate.decontaminate_against=[]", "--set", f"run.log_dir={tmp_path}"]) == 3
    assert "no reviews in" in capsys.readouterr().out
    assert job.main(["--corpus", str(empty), "--out", str(tmp_path / "o"),
                     "--set", "leads.curate.test_fraction=1.5"]) == 2
    assert "leads.curate.test_fraction" in capsys.readouterr().err
