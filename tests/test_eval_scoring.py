"""Answer extraction on messy outputs, Wilson/bootstrap intervals, scoring tables, the MC prompt."""

from __future__ import annotations

import pytest

from medreason_dist import storage
from medreason_dist.eval.extract import (
    AMBIGUOUS,
    EMPTY,
    FINAL_SECTION,
    INVALID_LETTER,
    LONE_LETTER,
    OPTION_TEXT,
    STATEMENT,
    STATEMENT_REVISED,
    UNPARSED,
    extract_answer,
)
from medreason_dist.eval.metrics import SUMMARY_SCHEMA, bootstrap_interval, side_by_side, wilson_interval
from medreason_dist.eval.prompts import build_mc_messages, options_dict
from medreason_dist.eval.score import score_predictions, write_results

VIRUSES = {"A": "Adenovirus", "B": "Rhinovirus", "C": "Influenza virus", "D": "Coronavirus", "E": "Respiratory syncytial virus"}
EIGHT = {letter: f"Drug number {i}" for i, letter in enumerate("ABCDEFGH", start=1)}
DIABETES = {"A": "Type 1 diabetes mellitus", "B": "Type 2 diabetes mellitus", "C": "Diabetes mellitus",
            "D": "Diabetes insipidus"}

CASES = [
    # (output, options, expected letter, expected method)
    ("## Thinking\n\nFever and myalgia in winter...\n\n## Final Answer\n\nC. Influenza virus", VIRUSES, "C", FINAL_SECTION),
    ("## Thinking\nA is unlikely. B fits.\n## Final Answer\n**B**", VIRUSES, "B", FINAL_SECTION),
    ("**Final Answer:** The answer is (C).", VIRUSES, "C", FINAL_SECTION),
    ("Final answer: B) Rhinovirus", VIRUSES, "B", FINAL_SECTION),
    ("Reasoning about each option...\n\n**Answer: C**", VIRUSES, "C", STATEMENT),
    ("The correct option is (B) Rhinovirus", VIRUSES, "B", STATEMENT),
    ("after all that, the answer is c.", VIRUSES, "C", STATEMENT),
    ("Answer: (d)", VIRUSES, "D", STATEMENT),
    ("I think the answer is B because of the coryza.", VIRUSES, "B", STATEMENT),
    ("Discussing A, B and C in turn... So the best choice is D.", VIRUSES, "D", STATEMENT),
    ("Therefore \\boxed{E}", VIRUSES, "E", STATEMENT),
    ('{"reasoning": "...", "answer": "C"}', VIRUSES, "C", STATEMENT),
    ("I'd go with (E).", VIRUSES, "E", STATEMENT),
    ("The answer is: **(B)**", VIRUSES, "B", STATEMENT),
    ("A 64-year-old man...\nThe most likely diagnosis is influenza.\nThe answer is C.", VIRUSES, "C", STATEMENT),
    ("The answer is G.", EIGHT, "G", STATEMENT),  # beyond E
    ("Answer: H", EIGHT, "H", STATEMENT),
    ("Answer: I", {k: f"opt {k}" for k in "ABCDEFGHIJ"}, "I", STATEMENT),  # "I" as a letter, not a pronoun
    ("The answer is A. Wait, on reflection the answer is C.", VIRUSES, "C", STATEMENT_REVISED),
    ("C", VIRUSES, "C", LONE_LETTER),
    ("(b)", VIRUSES, "B", LONE_LETTER),
    ("Long reasoning here.\nD.", VIRUSES, "D", LONE_LETTER),
    ("Rhinovirus", VIRUSES, "B", OPTION_TEXT),
    ("The answer is Type 2 diabetes mellitus.", DIABETES, "B", OPTION_TEXT),  # longest containing match
    ("the answer is rhinovirus", VIRUSES, "B", OPTION_TEXT),
    # unparseable or ambiguous -> None
    ("## Final Answer\nA or C", VIRUSES, None, AMBIGUOUS),
    ("The answer is either rhinovirus or adenovirus.", VIRUSES, None, AMBIGUOUS),
    ("The answer is a drug that blocks the receptor.", VIRUSES, None, UNPARSED),  # article "a"
    ("The answer is F.", VIRUSES, None, INVALID_LETTER),
    ("", VIRUSES, None, EMPTY),
    (None, VIRUSES, None, EMPTY),
    ("I am not sure; more information is needed.", VIRUSES, None, UNPARSED),
]


@pytest.mark.parametrize("output,options,letter,method", CASES, ids=[str(i) for i in range(len(CASES))])
def test_answer_extraction_battery(output, options, letter, method):
    got = extract_answer(output, options)
    assert (got.letter, got.method) == (letter, method)


def test_extraction_accepts_arrow_shaped_options():
    pairs = [("A", "Adenovirus"), ("B", "Rhinovirus")]
    assert extract_answer("Rhinovirus", pairs).letter == "B"
    assert extract_answer("Rhinovirus", [{"key": "A", "value": "Adenovirus"}, {"key": "B", "value": "Rhinovirus"}]).letter == "B"
    # Without options any letter A-Z is allowed.
    assert extract_answer("The answer is Q.", None).letter == "Q"


@pytest.mark.parametrize("k,n,low,high", [
    (50, 100, 0.4038, 0.5962),
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (1, 2, 0.0945, 0.9055),
    (81, 263, 0.2553, 0.3662),
])
def test_wilson_interval_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=5e-4) and hi == pytest.approx(high, abs=5e-4)


def test_wilson_interval_edges_and_bootstrap():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(5, 3)
    lo, hi = bootstrap_interval([1] * 50 + [0] * 50, n_boot=4000, seed=3)
    # The bootstrap of a proportion is close to the normal interval 0.5 +- 1.96 * 0.05.
    assert lo == pytest.approx(0.402, abs=0.02) and hi == pytest.approx(0.598, abs=0.02)
    assert bootstrap_interval([1, 0, 1], seed=1) == bootstrap_interval([1, 0, 1], seed=1)


def _preds():
    rows = []
    gold = ["A", "B", "C", "D"] * 5  # 20 items
    for model, outputs in {
        "base": ["The answer is A."] * 10 + ["no idea"] * 5 + ["The answer is B."] * 5,
        "tuned": [f"## Final Answer\n\n{g}" for g in gold[:18]] + ["The answer is Z.", None],
    }.items():
        for i, (g, out) in enumerate(zip(gold, outputs)):
            rows.append({"id": f"q{i}", "source": "medqa_test" if i < 12 else "medbullets_op4", "model": model,
                         "answer_idx": g, "options": [(k, f"text {k}") for k in "ABCD"], "output": out})
    rows[-1]["error"] = "engine_error"
    return rows


def test_score_predictions_tables(tmp_path):
    result = score_predictions(_preds())
    per_item = result.per_item
    assert per_item.num_rows == 40
    summary = {(r["model"], r["benchmark"]): r for r in result.summary.to_pylist()}
    assert result.summary.schema == SUMMARY_SCHEMA
    base_all = summary[("base", "all")]
    # base: "A" on items 0-9 is right for golds A at 0,4,8 -> 3; "B" on items 15-19: gold B at 17 -> 1.
    assert (base_all["n"], base_all["correct"], base_all["unparsed"]) == (20, 4, 5)
    assert base_all["accuracy"] == pytest.approx(0.2)
    assert (base_all["ci_low"], base_all["ci_high"]) == pytest.approx(wilson_interval(4, 20))
    tuned_all = summary[("tuned", "all")]
    assert (tuned_all["correct"], tuned_all["unparsed"]) == (18, 2)
    assert summary[("tuned", "medqa_test")]["n"] == 12 and summary[("tuned", "medbullets_op4")]["n"] == 8
    methods = dict(zip(per_item["id"].to_pylist()[20:], per_item["method"].to_pylist()[20:]))
    assert methods["q18"] == INVALID_LETTER and methods["q19"] == "no_output:engine_error"
    table = side_by_side(result.summary)
    assert table.column_names == ["benchmark", "base", "tuned"]
    assert table.column("benchmark").to_pylist()[-1] == "all"
    assert table.column("tuned").to_pylist()[-1].startswith("90.0 [")

    manifest = write_results(str(tmp_path / "results"), str(tmp_path / "items"), result)
    assert manifest.rows == result.summary.num_rows and manifest.rejects == {"unparsed": 7}
    back = storage.read_table(str(tmp_path / "results"))
    assert back.column_names == SUMMARY_SCHEMA.names


def test_bootstrap_summary_and_missing_gold():
    rows = [{"id": "x", "source": "b", "model": "m", "answer_idx": None, "options": {"A": "a"}, "output": "A"}]
    result = score_predictions(rows, method="bootstrap", include_all=False)
    item = result.per_item.to_pylist()[0]
    assert item["correct"] is False and item["method"] == "no_gold_letter"
    assert result.summary.to_pylist()[0]["ci_method"] == "bootstrap"


def test_mc_prompt_lists_every_option_and_demands_the_final_line():
    row = {"question": "Which drug?", "options": [(k, f"Drug {k}") for k in "ABCDEFGHIJKL"]}
    messages = build_mc_messages(row)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "A. Drug A" in user and "L. Drug L" in user
    assert 'The answer is X.' in user and "(A-L)" in user
    assert options_dict({"b": "two", "a": "one"}) == {"A": "one", "B": "two"}
    with pytest.raises(ValueError):
        build_mc_messages({"question": "no options", "options": []})
    # The prompt's own example line is parsed by the extractor.
    assert extract_answer("The answer is K.", row["options"]).letter == "K"
