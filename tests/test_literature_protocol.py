"""Review protocols (YAML/JSON, errors naming file and key) and published reviews as gold."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from medreason_dist.literature.protocol import ProtocolError, load_protocol, load_published_review, load_review_folder

SHARED_REVIEWS = Path(os.environ.get("MEDREASON_SHARED", Path(__file__).resolve().parents[2] / "shared")) \
    / "data" / "leads" / "trialmind_slr"

PROTOCOL = """\
title: Immune checkpoint inhibitors and irAEs
pico:
  population: adults with cancer treated with immune checkpoint inhibitors
  intervention: immune-related adverse events
  outcome: overall survival
inclusion: [original clinical study, reports survival by irAE status]
exclusion: [case report]
fields:
  - {name: cancer_type, description: tumour type}
  - {name: participants, description: patients analysed, type: integer}
  - {name: design, description: study design, type: category, categories: [prospective, retrospective]}
date_range: {start: 2010-01-01, end: 2020-04-30}
"""


def test_protocol_loads_with_criterion_ids(tmp_path):
    path = tmp_path / "protocol.yaml"
    path.write_text(PROTOCOL)
    protocol = load_protocol(path)
    assert [(c.id, c.kind) for c in protocol.criteria()] == [("I1", "inclusion"), ("I2", "inclusion"),
                                                            ("E1", "exclusion")]
    assert protocol.pico.comparison is None and protocol.fields[1].type == "integer"
    as_json = tmp_path / "protocol.json"
    as_json.write_text(protocol.model_dump_json())
    assert load_protocol(as_json) == protocol


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace("  population: adults with cancer treated with immune checkpoint inhibitors\n", ""),
     "pico.population: Field required"),
    (lambda t: t.replace("type: integer", "type: float"), "fields.1.type"),
    (lambda t: t.replace("categories: [prospective, retrospective]", "categories: []"), "fields.2"),
    (lambda t: t.replace("end: 2020-04-30", "end: 2001-01-01"), "date_range"),
    (lambda t: t + "outcomes: [x]\n", "outcomes: Extra inputs are not permitted"),
    (lambda t: t.replace("name: participants", "name: cancer_type"), "field names repeat: cancer_type"),
    (lambda t: "pico: [", "not valid YAML"),
])
def test_bad_protocols_name_the_file_and_key(tmp_path, edit, message):
    path = tmp_path / "protocol.yaml"
    path.write_text(edit(PROTOCOL))
    with pytest.raises(ProtocolError) as err:
        load_protocol(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_published_review_layout(tmp_path):
    (tmp_path / "search_screen").mkdir()
    (tmp_path / "study_characteristics").mkdir()
    review = {"title": "A review", "pmid": "123", "date": "2020/04",
              "PICO": str({"P": "adults", "I": "drug", "C": "", "O": "survival"}),
              "PICO_terms": str({"P": ["adults"]}),
              "trials": str([{"title": "Trial one", "pmid": "11", "doi": "", "nctid": ""},
                             {"title": " ", "pmid": "", "doi": "", "nctid": ""},
                             {"title": "", "pmid": "12", "doi": "", "nctid": ""}])}
    (tmp_path / "search_screen" / "123.json").write_text(json.dumps(review))
    (tmp_path / "study_characteristics" / "123.csv").write_text("PMID,Cancer Type\n11,Melanoma\n")
    [loaded] = load_review_folder(tmp_path)
    assert loaded.protocol.pico.population == "adults" and loaded.protocol.pico.comparison is None
    # an entry with neither title nor id is not a study; a PMID alone is
    assert [(s.title, s.pmid) for s in loaded.included] == [("Trial one", "11"), (None, "12")]
    assert loaded.characteristics == [{"PMID": "11", "Cancer Type": "Melanoma"}]
    bad = tmp_path / "search_screen" / "9.json"
    bad.write_text(json.dumps({"title": "x", "pmid": "9", "PICO": "{'P': "}))
    with pytest.raises(ProtocolError, match="9.json: missing key 'trials'"):
        load_published_review(bad)


@pytest.mark.skipif(not SHARED_REVIEWS.is_dir(), reason=f"shared reviews not at {SHARED_REVIEWS}")
def test_the_shared_trialmind_reviews_load():
    reviews = load_review_folder(SHARED_REVIEWS)
    assert len(reviews) == 15
    assert sum(len(r.included) for r in reviews) == 606  # the README's count; 150 have a PMID and no title
    assert all(r.protocol.pico.population and r.protocol.pico.outcome for r in reviews)
    assert sum(1 for r in reviews if r.characteristics) >= 10


def test_packaged_fixture_review_is_consistent():
    """The embedded default's review: protocol, 50 candidates in three formats, gold labels and
    gold extraction values that can be found in the full texts."""
    import csv

    from medreason_dist.literature.records import load_records

    root = Path(__file__).resolve().parents[1] / "medreason_dist" / "data" / "leads" / "knee_oa_exercise"
    protocol = load_protocol(root / "protocol.yaml")
    assert len(protocol.criteria()) == 6 and len(protocol.fields) == 6
    loaded = load_records([root / "candidates.ris", root / "candidates.csv", root / "pubmed.xml"])
    assert loaded.records.num_rows == 50 and loaded.stats["duplicates_merged"] == 3
    assert loaded.quarantine.column("reason").to_pylist() == ["missing_title"]
    with (root / "gold_labels.csv").open() as f:
        gold = {r["pmid"]: r for r in csv.DictReader(f)}
    assert sum(r["included"] == "1" for r in gold.values()) == 16 and len(gold) == 50
    # every candidate is labelled: by PMID, or by title for the RIS copies without one
    titles = {r["title"] for r in gold.values()}
    assert all(r["pmid"] in gold or r["title"] in titles for r in loaded.records.to_pylist())
    extraction = json.loads((root / "gold_extraction.json").read_text())
    fields = {f.name for f in protocol.fields}
    for pmid, study in extraction.items():
        text = (root / "fulltexts" / f"{pmid}.md").read_text()
        assert gold[pmid]["included"] == "1" and set(study["characteristics"]) == fields == set(study["evidence"])
        # each gold value has a supporting span of the text (a number may be written in words there)
        assert all(span in text for span in study["evidence"].values()), pmid
        for field_name in ("mean_age", "programme_weeks"):
            assert str(study["characteristics"][field_name]) in study["evidence"][field_name], (pmid, field_name)
        for table in study["participants"] + study["results"]:
            assert set(table["values"]) == {arm["label"] for arm in study["arms"]}
            assert all(str(v) in text for v in table["values"].values()), (pmid, table)
