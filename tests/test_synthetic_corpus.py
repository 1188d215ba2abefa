"""Synthetic LEADS-shaped corpus: sizes, determinism, id overlaps, nested columns, CT.gov JSON, datasets."""

from __future__ import annotations

import json
from collections import Counter

import duckdb
import pyarrow.compute as pc
import pytest

from medreason_dist import storage
from medreason_dist.literature.ctgov import ARM_TYPES, study_rows
from medreason_dist.literature.records import NCT_ID, normalize_doi, normalize_pmid
from medreason_dist.literature.synthetic_corpus import (
    FULL_PUBLICATIONS,
    FULL_REGISTRY,
    FULL_REVIEWS,
    PUBLICATIONS_SCHEMA,
    REGISTRY_SCHEMA,
    REVIEWS_SCHEMA,
    TOPIC_NAMES,
    generate_corpus,
    main,
    write_corpus,
)


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(0.002, seed=3)


def _flat(table, column):
    return pc.list_flatten(table.column(column)).to_pylist()


def test_schemas_and_counts_scale(corpus):
    assert corpus.reviews.schema.equals(REVIEWS_SCHEMA)
    assert corpus.publications.schema.equals(PUBLICATIONS_SCHEMA)
    assert corpus.registry.schema.equals(REGISTRY_SCHEMA)
    small = generate_corpus(0.001, seed=3)
    for c, scale in ((small, 0.001), (corpus, 0.002)):
        assert c.counts() == {"reviews": round(FULL_REVIEWS * scale), "publications": round(FULL_PUBLICATIONS * scale),
                              "registry": round(FULL_REGISTRY * scale)}


def test_same_seed_same_tables_other_seed_differs(corpus):
    again = generate_corpus(0.002, seed=3)
    for name in ("reviews", "publications", "registry"):
        assert getattr(again, name).equals(getattr(corpus, name)), name
    assert not generate_corpus(0.002, seed=4).publications.equals(corpus.publications)


def test_ids_are_well_formed_and_unique(corpus):
    reviews, pubs, reg = corpus.reviews, corpus.publications, corpus.registry
    assert all(r.startswith("SR") and r[2:].isdigit() for r in reviews.column("review_id").to_pylist())
    ncts = reg.column("nct_id").to_pylist()
    assert len(set(ncts)) == len(ncts) and all(NCT_ID.fullmatch(n) for n in ncts)
    pmids = [p for p in pubs.column("pmid").to_pylist() if p is not None]
    assert len(set(pmids)) == len(pmids) and all(normalize_pmid(p) == p for p in pmids)
    assert not set(pmids) & set(reviews.column("pmid").to_pylist())
    dois = [d for d in pubs.column("doi").to_pylist() if d is not None]
    assert len(set(dois)) == len(dois) and all(normalize_doi(d) == d for d in dois)
    assert 0.75 < len(dois) / pubs.num_rows < 0.95
    assert set(reviews.column("topic").to_pylist()) <= set(TOPIC_NAMES)


def test_joins_find_matches_and_dangling_ids(corpus):
    reviews, pubs, reg = corpus.reviews, corpus.publications, corpus.registry
    pub_pmids = set(pubs.column("pmid").to_pylist()) - {None}
    included = _flat(reviews, "included_pmids")
    found = sum(p in pub_pmids for p in included)
    assert 0.97 < found / len(included) < 1.0  # ~1% dangling, to be quarantined
    assert set(_flat(reviews, "included_nct_ids")) <= set(reg.column("nct_id").to_pylist())
    assert _flat(reviews, "included_nct_ids")
    shared = Counter(included)
    assert max(shared[p] for p in pub_pmids) > 1  # some publication is included by several reviews
    sizes = pc.list_value_length(reviews.column("included_pmids")).to_pylist()
    assert max(sizes) > 2 * sorted(sizes)[len(sizes) // 2]  # long tail (longer at full scale)
    # DOI-only publications (no PMID) are reached through included_dois.
    doi_only = set(pubs.filter(pubs.column("pmid").is_null()).column("doi").to_pylist())
    assert doi_only and None not in doi_only
    assert set(_flat(reviews, "included_dois")) <= doi_only
    # Publications report registry records: ~60% of records, NCT id named in the abstract.
    reports = pubs.filter(pubs.column("nct_id").is_valid())
    assert set(reports.column("publication_type").to_pylist()) == {"trial report"}
    linked = set(reports.column("nct_id").to_pylist())
    assert linked <= set(reg.column("nct_id").to_pylist())
    assert 0.4 < len(linked) / reg.num_rows < 0.8
    assert all(n in a for n, a in zip(reports.column("nct_id").to_pylist(), reports.column("abstract").to_pylist()))
    assert 0.2 < pc.mean(reg.column("has_results").cast("int8")).as_py() < 0.6
    full = pubs.column("full_text").drop_null().to_pylist()
    assert 0.08 < len(full) / pubs.num_rows < 0.25 and all("\n\n" in t for t in full)


def test_nested_columns_open_in_pandas_and_duckdb(corpus):
    df = corpus.reviews.to_pandas()
    row = df.iloc[0]
    assert set(row["pico"]) == {"P", "I", "C", "O"} and isinstance(row["pico"]["P"], str)
    assert list(row["pico_terms"]["O"])
    assert {c["kind"] for c in row["criteria"]} == {"inclusion", "exclusion"}
    reviews = corpus.reviews  # noqa: F841 -- DuckDB reads the local Arrow table by name
    publications = corpus.publications  # noqa: F841
    rows = duckdb.sql("""
        SELECT r.review_id, count(p.pmid) AS matched, count(*) AS listed
        FROM (SELECT review_id, unnest(included_pmids) AS pmid FROM reviews) r
        LEFT JOIN publications p USING (pmid) GROUP BY r.review_id""").fetchall()
    assert sum(m for _, m, _ in rows) < sum(n for _, _, n in rows)  # dangling ids left unmatched
    kinds = duckdb.sql("SELECT DISTINCT c.kind FROM (SELECT unnest(criteria) AS c FROM reviews)").fetchall()
    assert {k for (k,) in kinds} == {"inclusion", "exclusion"}
    pico = duckdb.sql("SELECT pico.P, len(pico_terms.O) FROM reviews LIMIT 1").fetchall()
    assert pico[0][0] and pico[0][1] >= 1


def test_registry_json_parses_with_ctgov_study_rows(corpus):
    reg = corpus.registry
    with_results = 0
    for row in reg.to_pylist():
        study = {"protocolSection": json.loads(row["protocol_section"]), "hasResults": row["has_results"]}
        if row["results_section"]:
            study["resultsSection"] = json.loads(row["results_section"])
        rows = study_rows(study)
        [s] = rows.studies
        assert s["nct_id"] == row["nct_id"] and s["has_results"] == row["has_results"]
        assert s["enrollment"] > 0 and s["conditions"] == row["conditions"] and s["interventions"]
        assert len(rows.arms) >= 2 and {a["type"] for a in rows.arms} <= set(ARM_TYPES)
        if row["has_results"]:
            with_results += 1
            baseline = [m for m in rows.measurements if m["section"] == "baseline"]
            outcomes = [m for m in rows.measurements if m["section"] == "outcome"]
            assert {m["unit"] for m in baseline} == {"years", "Participants"}
            assert {m["outcome_type"] for m in outcomes} == {"PRIMARY", "SECONDARY"}
            assert all(m["group_title"] and m["param_type"] and m["unit"] for m in outcomes)
            assert all(m["value_number"] is not None for m in rows.measurements)
        else:
            assert not rows.measurements
    assert with_results
    rows.tables()  # typed Arrow rows


def test_write_corpus_commits_readable_datasets(corpus, tmp_path):
    manifests = write_corpus(corpus, str(tmp_path))
    assert set(manifests) == {"reviews", "publications", "registry"}
    for name in manifests:
        uri = storage.join(str(tmp_path), name)
        assert storage.is_committed(uri)
        assert storage.read_table(uri).equals(getattr(corpus, name))
        extra = storage.read_manifest(uri).extra
        assert extra["seed"] == 3 and extra["scale"] == 0.002 and extra["counts"] == corpus.counts()


def test_cli_prints_counts(tmp_path, capsys):
    assert main(["--scale", "0.001", "--seed", "0", "--out", str(tmp_path / "c")]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["reviews"] == 21 and line["publications"] == 454 and line["registry"] == 27
    assert storage.is_committed(storage.join(str(tmp_path / "c"), "registry"))
