"""The six LEADS instruction tasks: what each example asks and answers, and how answers are scored."""

from __future__ import annotations

import json

import pytest

from medreason_dist.literature import instructions as I
from medreason_dist.literature.query import check_query
from medreason_dist.literature.synthetic_corpus import generate_corpus


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(0.002, seed=3)


def test_search_example_is_a_parsing_query_built_from_the_pico_terms(corpus):
    review = corpus.reviews.slice(0, 1).to_pylist()[0]
    instruction, response = I.search_example(review)
    target = json.loads(response)
    assert check_query(target["pubmed"], "pubmed") is None
    assert review["title"] in instruction and review["pico"]["P"] in instruction
    for term in review["pico_terms"]["P"] + review["pico_terms"]["I"]:
        assert term.lower() in target["pubmed"].lower()
    assert target["ctgov"]["cond"] and target["ctgov"]["intr"]
    # quotes and brackets inside a term cannot break the grammar
    odd = dict(review, pico_terms={"P": ['knee "OA" (chronic)'], "I": ["exercise*"], "C": [], "O": []})
    assert check_query(json.loads(I.search_example(odd)[1])["pubmed"], "pubmed") is None
    with pytest.raises(ValueError, match="pico_terms_missing"):
        I.search_example(dict(review, pico_terms={"P": [], "I": ["x"]}))


def test_screening_labels_every_criterion_for_included_studies_only(corpus):
    review = corpus.reviews.slice(0, 1).to_pylist()[0]
    pub = corpus.publications.slice(0, 1).to_pylist()[0]
    ids = [cid for cid, _, _ in I.criteria_ids(review["criteria"])]
    assert ids[0] == "I1" and any(c.startswith("E") for c in ids)
    instruction, response = I.screening_example(review, pub, True)
    got = json.loads(response)
    assert got["decision"] == "include" and list(got["criteria"]) == ids
    assert all(v == ("NO" if k.startswith("E") else "YES") for k, v in got["criteria"].items())
    assert pub["title"] in instruction and all(f"{cid} (" in instruction for cid in ids)
    _, negative = I.screening_example(review, pub, False)
    assert json.loads(negative) == {"decision": "exclude", "criteria": {}}


def test_extraction_targets_come_from_the_registry_record(corpus):
    record = next(r for r in corpus.registry.to_pylist() if r["has_results"])
    targets = I.extraction_targets(record["protocol_section"], record["results_section"], True)
    assert set(targets) == set(I.EXTRACTION_TASKS)
    assert targets["characteristics"]["enrollment"] > 0
    assert {a["type"] for a in targets["arms"]} <= {"EXPERIMENTAL", "ACTIVE_COMPARATOR", "PLACEBO_COMPARATOR",
                                                     "SHAM_COMPARATOR", "NO_INTERVENTION", "OTHER"}
    assert all(isinstance(m["value"], (int, float)) for m in targets["results"])
    no_results = next(r for r in corpus.registry.to_pylist() if not r["has_results"])
    assert set(I.extraction_targets(no_results["protocol_section"], None, False)) <= {"characteristics", "arms"}
    with pytest.raises(ValueError, match="registry_json_invalid"):
        I.extraction_targets("{not json", None, False)
    with pytest.raises(ValueError, match="registry_incomplete"):
        I.extraction_targets(json.dumps({"identificationModule": {}}), None, False)


def test_scores_reward_the_target_and_nothing_else(corpus):
    review = corpus.reviews.slice(0, 1).to_pylist()[0]
    _, search = I.search_example(review)
    assert I.score("search", search, search)["correct"]
    assert not I.score("search", '{"pubmed": "(unrelated[tiab]"}', search)["parsed"]
    _, screen = I.screening_example(review, {"title": "t", "abstract": "a"}, True)
    assert I.score("screening", 'Sure: {"decision": "include"}', screen)["correct"]
    wrong = I.score("screening", '{"decision": "exclude"}', screen)
    assert wrong["parsed"] and not wrong["correct"] and wrong["predicted"] == "exclude"
    assert not I.score("screening", "I think it should be included", screen)["parsed"]
    record = next(r for r in corpus.registry.to_pylist() if r["has_results"])
    examples = I.extraction_examples({"title": "t", "abstract": "a"}, record["protocol_section"],
                                     record["results_section"], True)
    for task, (_, response) in examples.items():
        full = I.score(task, response, response)
        assert full["parsed"] and full["correct"] and full["hits"] == full["total"] > 0
        assert I.score(task, "[]" if task != "characteristics" else "{}", response)["hits"] == 0
    half = json.loads(examples["arms"][1])[:1]
    part = I.score("arms", json.dumps(half), examples["arms"][1])
    assert part["hits"] == 1 and not part["correct"]
