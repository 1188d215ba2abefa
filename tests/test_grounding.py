"""KG lexicon, dictionary matcher, gold scoring and `medreason-dist ground` (dictionary: no model)."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pytest

from medreason_dist.config import PACKAGED_DATA
from medreason_dist.kg.lexicon import build_lexicon, fold, read_synonyms, term_keys
from medreason_dist.kg.matcher import LexiconMatcher
from medreason_dist.stages.grounding import load_gold, precision_recall, score_row


def _nodes(rows):
    return pa.table({"node_id": pa.array([r[0] for r in rows], pa.int64()), "name": [r[1] for r in rows],
                     "type": [r[2] for r in rows]})


NODES = _nodes([
    (1, "diabetes mellitus", "disease"), (2, "type 2 diabetes mellitus", "disease"),
    (3, "Hyperkalemia", "effect/phenotype"), (4, "CAT", "gene/protein"), (5, "pain", "effect/phenotype"),
    (6, "Crohn's disease", "disease"), (7, "Nail pits", "effect/phenotype"), (8, "oesophagitis", "disease"),
    (9, "TNF-α", "gene/protein"), (10, "asthma", "disease"), (11, "Asthma", "effect/phenotype"),
    (12, "hypertension", "disease"),
])


def _matcher(synonyms=None, reference=None):
    table, counts = build_lexicon(NODES, synonyms, reference)
    return LexiconMatcher(table), table, counts


def _found(matcher, text):
    hits, _ = matcher.find(text)
    return [(h.surface, h.node_id) for h in hits]


def test_fold_maps_every_character_back_to_the_text():
    text = "Crohn's disease, TNF-α and (naïve) T-cells"
    folded, offsets = fold(text)
    assert folded == "crohn disease|tnf alpha and|naïve|t cells"
    start = folded.index("tnf alpha")
    assert text[offsets[start]:offsets[start + len("tnf alpha") - 1] + 1] == "TNF-α"


def test_term_keys_cover_number_spelling_inversion_and_hyphens():
    assert {"nail pit", "nail pits"} <= {k for k, _ in term_keys("Nail pits")}
    assert "esophagitis" in dict(term_keys("oesophagitis"))
    assert "hyperkalaemia" in dict(term_keys("Hyperkalemia"))
    assert "type 2 diabetes mellitus" in dict(term_keys("diabetes mellitus, type 2"))
    assert "betablocker" in dict(term_keys("beta-blocker"))
    assert "chaemical" not in str(term_keys("chemical"))  # "hem" swaps only at a word's start


def test_longest_match_wins_and_words_stay_whole():
    m, _, _ = _matcher()
    assert _found(m, "Her type 2 diabetes mellitus is controlled.") == [("type 2 diabetes mellitus", 2)]
    assert _found(m, "Diabetes mellitus, then hyperkalaemia and nail pit.") == [
        ("Diabetes mellitus", 1), ("hyperkalaemia", 3), ("nail pit", 7)]
    assert _found(m, "painful asthmatic") == []  # no partial words
    assert _found(m, "Crohn disease and esophagitis") == [("Crohn disease", 6), ("esophagitis", 8)]


def test_symbols_match_as_written_and_generic_names_never_alone():
    m, table, counts = _matcher()
    assert _found(m, "a cat scratch") == [] and _found(m, "the CAT gene") == [("CAT", 4)]
    assert _found(m, "TNF-alpha levels") == [("TNF-alpha", 9)]
    generic = {r["key"]: r["generic_reason"] for r in table.to_pylist() if r["generic"]}
    assert generic["pain"] == "category_word"
    hits, skipped = m.find("Chest pain at rest")
    assert hits == [] and skipped == 1
    # a name in more than max_question_share of the reference questions becomes generic
    reference = ["She has hypertension."] * 3 + ["Unrelated."] * 7
    m2, table2, _ = _matcher(reference=reference)
    assert {r["key"]: r["generic_reason"] for r in table2.to_pylist() if r["generic"]}["hypertension"] == \
        "frequent:0.300"
    assert _found(m2, "hypertension") == []


def test_one_key_for_two_nodes_takes_the_type_order_and_says_so():
    m, _, _ = _matcher()
    hits, _ = m.find("asthma")
    assert [(h.node_id, h.alternatives) for h in hits] == [(10, 1)]  # disease before phenotype


def test_synonyms_link_lay_terms_and_bad_rows_name_the_line():
    syn = read_synonyms("node_index,synonym,kind\n3,high potassium,lay\n999,ghost,exact\n", source="s.csv")
    m, _, counts = _matcher(synonyms=syn)
    assert _found(m, "Labs show high potassium.") == [("high potassium", 3)]
    assert counts["synonyms_unknown_node"] == 1
    with pytest.raises(ValueError, match="s.csv line 3: node_index 'x'"):
        read_synonyms("node_index,synonym\n1,a\nx,b\n", source="s.csv")
    with pytest.raises(ValueError, match="lacks synonym"):
        read_synonyms("node_index,name\n1,a\n", source="s.csv")


def test_packaged_synonyms_belong_to_demo_kg_nodes():
    kg_names = {}
    with open(PACKAGED_DATA / "demo_kg" / "kg.csv") as f:
        for r in csv.DictReader(f):
            kg_names[int(r["x_index"])] = r["x_name"]
    rows = read_synonyms((PACKAGED_DATA / "demo_kg" / "synonyms.csv").read_text(), source="synonyms.csv")
    assert len(rows) > 300 and {r["node_id"] for r in rows} <= set(kg_names)
    lowered = {n.lower() for n in kg_names.values()}
    assert not [r for r in rows if r["synonym"].lower() in lowered]
    assert {r["kind"] for r in rows} <= {"exact", "lay", "spelling"}


def test_gold_scoring_counts_hits_misses_and_method_families():
    gold = {"q": {1, 2}, "a": {3}}
    links = [{"role": "q", "node_id": 1, "method": "dictionary"}, {"role": "q", "node_id": 9, "method": "llm"},
             {"role": "a", "node_id": 3, "method": "embedding"}, {"role": "q", "node_id": None, "method": "llm_none"}]
    c = score_row(links, gold)
    assert (c["tp"], c["fp"], c["fn"]) == (2, 1, 1)
    assert (c["tp.dictionary"], c["fp.llm"], c["tp.llm"]) == (1, 1, 1)
    pr = precision_recall(c)
    assert pr["precision"] == pytest.approx(2 / 3) and pr["recall"] == pytest.approx(2 / 3)


def test_gold_file_errors_name_the_line():
    good = {"question": "Q?", "options": {"A": "x", "B": "y"}, "answer_idx": "A",
            "gold": {"question": [{"node_id": 1}], "answer": [{"node_id": 2}]}}
    text = json.dumps(good) + "\n" + json.dumps(dict(good, answer_idx="Z")) + "\n"
    with pytest.raises(ValueError, match="gold.jsonl line 2"):
        load_gold(text, source="gold.jsonl")
    assert list(load_gold(json.dumps(good), source="g").values())[0]["a"] == {2}


@pytest.mark.slow
def test_ground_command_dictionary_writes_a_readable_dataset(tmp_path, capsys):
    """`medreason-dist ground --method dictionary`: no model, one row per question, typed links,
    precision/recall from the QA rows' own gold; bad --kg and QA paths are named."""
    import duckdb
    import pandas as pd

    from medreason_dist.cli import main

    qa = tmp_path / "qa.jsonl"
    rows = [
        {"question": "A man taking captopril and triamterene has weakness. Which lab finding?",
         "options": {"A": "Hyperkalemia", "B": "Hyponatremia"}, "answer_idx": "A",
         "gold": {"question": [{"node_id": 92}, {"node_id": 93}], "answer": [{"node_id": 243}]}},
        {"question": "A child with asthma needs an inhaled bronchodilator.", "options": {"A": "Ipratropium",
                                                                                        "B": "Warfarin"},
         "answer_idx": "A", "gold": {"question": [{"node_id": 177}], "answer": [{"node_id": 96}]}},
    ]
    qa.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    args = ["ground", str(qa), "--kg", "packaged:demo_kg/kg.csv", "--method", "dictionary", "--out", str(out),
            "--set", f"run.log_dir={tmp_path / 'logs'}"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "precision 1.000, recall 1.000" in printed
    frame = pd.read_parquet(out / "grounding")
    assert len(frame) == 2
    links = frame.iloc[0]["links"]
    assert [(x["role"], x["surface"], x["node_id"], x["method"]) for x in links] == [
        ("question", "captopril", 92, "dictionary"), ("question", "triamterene", 93, "dictionary"),
        ("answer", "Hyperkalemia", 243, "dictionary")]
    assert rows[0]["question"][links[0]["start"]:links[0]["end"]] == "captopril"
    n = duckdb.sql(f"select count(*) from read_parquet('{out}/grounding/*.parquet')").fetchall()[0][0]
    assert n == 2
    assert main(["ground", str(qa), "--kg", str(tmp_path / "nope.csv"), "--out", str(out)]) == 2
    assert "nope.csv" in capsys.readouterr().err
    assert main(["ground", str(tmp_path / "missing.jsonl"), "--kg", "packaged:demo_kg/kg.csv", "--out",
                 str(out)]) == 2
    assert "missing.jsonl" in capsys.readouterr().err


def test_no_key_spans_a_comma_and_latin_plurals_match():
    nodes = _nodes([(1, "ataxia telangiectasia", "disease"), (2, "Ataxia", "effect/phenotype"),
                    (3, "Telangiectasia", "effect/phenotype"), (4, "Hypertensive crisis", "effect/phenotype"),
                    (5, "hyperprolactinemia", "disease")])
    m = LexiconMatcher(build_lexicon(nodes)[0])
    assert _found(m, "She has ataxia, telangiectasia and hypertensive crises.") == [
        ("ataxia", 2), ("telangiectasia", 3), ("hypertensive crises", 4)]
    assert _found(m, "Ataxia telangiectasia; hyperprolactinaemia") == [("Ataxia telangiectasia", 1),
                                                                       ("hyperprolactinaemia", 5)]
