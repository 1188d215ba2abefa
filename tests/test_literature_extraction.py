"""Extraction schemas from a protocol, chunking of long texts and the deterministic merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from medreason_dist.literature.extraction import (
    ArmGroup, chunk_text, characteristics_model, extraction_model, merge_extractions, supported)
from medreason_dist.literature.protocol import load_protocol

ROOT = Path(__file__).resolve().parents[1] / "medreason_dist" / "data" / "leads" / "knee_oa_exercise"


@pytest.fixture(scope="module")
def protocol():
    return load_protocol(ROOT / "protocol.yaml")


def test_schema_types_each_field_and_makes_not_reported_explicit(protocol):
    model = characteristics_model(protocol)
    schema = json.dumps(model.model_json_schema())
    assert '"WOMAC pain"' in schema and "reported" in schema  # categories become an enum
    ok = model.model_validate({
        "country": {"reported": True, "value": "Denmark", "evidence": "in Denmark"},
        "participants": {"reported": True, "value": 146, "evidence": "146 participants"},
        "mean_age": {"reported": False, "value": None},
        "programme_weeks": {"reported": True, "value": 8, "evidence": "8 weeks"},
        "comparator": {"reported": True, "value": "usual care", "evidence": "usual care"},
        "pain_scale": {"reported": True, "value": "WOMAC pain", "evidence": "WOMAC"}})
    assert ok.mean_age.reported is False
    with pytest.raises(ValidationError):  # a field may not be left out, a category must be known
        model.model_validate({"country": {"reported": True, "value": "x"}})
    with pytest.raises(ValidationError):
        ArmGroup(label="Exercise", type="TREATMENT")
    whole = extraction_model(protocol).model_json_schema()
    assert set(whole["properties"]) == {"characteristics", "arms", "participants", "results"}


def test_chunks_respect_the_budget_and_paragraphs():
    text = "\n\n".join(f"Paragraph {i}. " + "word " * 30 for i in range(10))
    chunks = chunk_text(text, 80)
    assert all(len(c.split()) <= 80 for c in chunks) and len(chunks) == 5
    assert " ".join(" ".join(chunks).split()) == " ".join(text.split())  # nothing lost or repeated
    long_para = "One sentence here. " * 50
    assert all(len(c.split()) <= 20 for c in chunk_text(long_para, 20))
    with pytest.raises(ValueError):
        chunk_text(text, 0)


def test_merge_rule_on_a_fixture_full_text():
    source = (ROOT / "fulltexts" / "30100081.md").read_text()
    first = {"characteristics": {
                 "country": {"reported": True, "value": "Denmark", "evidence": "general practices in Denmark"},
                 "participants": {"reported": False, "value": None, "evidence": None},
                 "mean_age": {"reported": True, "value": 99.0, "evidence": "an invented sentence"}},
             "arms": [{"label": "Quadriceps strengthening", "type": "EXPERIMENTAL", "evidence": None}]}
    second = {"characteristics": {
                  "country": {"reported": True, "value": "Norway", "evidence": "Denmark"},
                  "participants": {"reported": True, "value": 146, "evidence": "A total of 146 participants"},
                  "mean_age": {"reported": True, "value": 61.1, "evidence": "Mean age was 61.1 years"}},
              "arms": [{"label": "quadriceps  Strengthening", "type": "OTHER", "evidence": None},
                       {"label": "Usual care", "type": "NO_INTERVENTION", "evidence": "The usual care group"}],
              "results": [{"outcome": "WOMAC pain", "param_type": "MEAN", "unit": "score", "time_frame": "8 weeks",
                           "group": "Usual care", "value": 8.1, "evidence": "made up"}]}
    merged, counts = merge_extractions([first, second], source)
    c = merged["characteristics"]
    assert c["country"]["value"] == "Denmark"  # the earliest chunk wins; the later Norway is a conflict
    assert c["participants"]["value"] == 146  # not reported early, reported later
    assert c["mean_age"]["value"] == 61.1  # the unsupported 99.0 is dropped
    assert [a["type"] for a in merged["arms"]] == ["EXPERIMENTAL", "NO_INTERVENTION"]
    assert merged["results"] == [] and counts == {"conflicts": 1, "unsupported": 2}
    assert supported("Mean  age was\n61.1 years", source) and not supported(None, source)


def test_one_sentence_over_the_budget_is_cut_at_words():
    text = "Intro. " + "very " * 45 + "long sentence. End."
    assert all(len(c.split()) <= 10 for c in chunk_text(text, 10))
