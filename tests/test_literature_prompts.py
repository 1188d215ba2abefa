"""Prompts of the literature tasks and the acceptance check of generated search queries."""

from __future__ import annotations

from pathlib import Path

from medreason_dist.literature.prompts import (
    CtGovQuery, SearchQueries, check_search, extract_prompt, screen_prompt, search_prompt)
from medreason_dist.literature.protocol import load_protocol

ROOT = Path(__file__).resolve().parents[1] / "medreason_dist" / "data" / "leads" / "knee_oa_exercise"
PROTOCOL = load_protocol(ROOT / "protocol.yaml")


def test_search_prompt_and_query_acceptance():
    text = search_prompt(PROTOCOL)[1]["content"]
    assert PROTOCOL.pico.population in text and "[tiab]" in text
    good = SearchQueries(pubmed='("knee osteoarthritis"[tiab] OR "osteoarthritis, knee"[mh]) AND exercis*[tiab]',
                         ctgov=CtGovQuery(cond='"knee osteoarthritis"', intr="exercise OR strengthening"))
    assert check_search(good) is None
    bad = SearchQueries(pubmed="(knee osteoarthritis[tiab] and exercise", ctgov=CtGovQuery(cond="knee[tiab]"))
    why = check_search(bad)
    assert why.startswith("pubmed: lower-case operator") and "ctgov.cond: field tags" in why


def test_screen_prompt_lists_every_criterion_and_the_record():
    row = {"title": "Aquatic exercise for knee OA", "abstract": "x" * 10000, "publication_types": ["RCT"]}
    text = screen_prompt(PROTOCOL, row)[1]["content"]
    for c in PROTOCOL.criteria():
        assert f"{c.id} ({c.kind}): {c.text}" in text
    assert "Aquatic exercise for knee OA" in text and "[...]" in text and "x" * 6001 not in text
    full = screen_prompt(PROTOCOL, row, full_text="The full text.")[1]["content"]
    assert "Full text:\nThe full text." in full and "Abstract:" not in full


def test_extract_prompt_names_fields_types_and_parts():
    text = extract_prompt(PROTOCOL, "Body.", chunk=2, chunks=3)[1]["content"]
    assert "pain_scale (category: one of WOMAC pain, VAS, NRS, KOOS pain, other)" in text
    assert "mean_age (number, years)" in text and "part 2 of 3" in text
