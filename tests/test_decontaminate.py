"""Decontamination: exact copies, edited copies sharing a 13-gram, unrelated rows, the vendored sets."""

from __future__ import annotations

import random
import re
import unicodedata
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest

from medreason_dist import storage
from medreason_dist.config import SourceSpec
from medreason_dist.sources.schema import QA_SCHEMA, make_row
from medreason_dist.stages.decontaminate import (
    DecontamConfig,
    EvalIndex,
    decontaminate,
    decontaminate_ray_batches,
    find_matches,
    normalize_text,
    normalized_tokens,
    run_decontaminate,
)
from medreason_dist.stages.sources import normalize_sources

VENDORED = [("medbullets_op4", "medbullets"), ("medbullets_op5", "medbullets"), ("medqa_test", "medqa")]


def qa(question: str, options: dict[str, str], source: str = "train_src", answer: str = "A") -> dict:
    return make_row(source=source, split="train", question=question, options=options, answer_text=None,
                    answer_idx=answer)


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=QA_SCHEMA)


@pytest.fixture(scope="module")
def vendored_evals() -> pa.Table:
    specs = [SourceSpec(name=n, adapter=a, path=f"packaged:eval/{n}.jsonl", split="test") for n, a in VENDORED]
    result = normalize_sources(specs, progress=False, dedupe=False)
    assert result.quarantine.num_rows == 0
    return result.qa


EVAL_Q = ("A 34-year-old woman presents with fatigue, cold intolerance and weight gain over six months; "
          "her thyroid stimulating hormone is markedly elevated and free thyroxine is low on repeat testing. "
          "Which of the following is the most likely underlying cause?")
EVAL_OPTS = {"A": "Hashimoto thyroiditis", "B": "Graves disease", "C": "Subacute thyroiditis", "D": "Iodine excess"}


def small_evals() -> pa.Table:
    return table([
        qa(EVAL_Q, EVAL_OPTS, source="bench_x"),
        qa("Short stem?", {"A": "yes", "B": "no"}, source="bench_y"),
    ])


def test_normalisation_is_case_space_and_punctuation_blind():
    assert normalize_text("  The  PATIENT's  B.P. -- 120/80\tmmHg!") == "the patient s b p 120 80 mmhg"
    assert normalize_text("") == ""


def test_exact_copy_reformatted_is_caught_as_exact():
    copy = qa("  " + EVAL_Q.upper().replace(",", " ,").replace(";", "") + "  ", EVAL_OPTS)
    clean, rejects, report = decontaminate(table([copy]), small_evals())
    assert clean.num_rows == 0 and rejects.num_rows == 1
    row = rejects.to_pylist()[0]
    assert row["match_kind"] == "exact+ngram"
    assert row["eval_sources"] == ["bench_x"]
    assert row["reason"] == "eval_contamination"
    assert report["per_eval_source"]["bench_x"]["train_rows_overlapping_before"] == 1
    assert report["per_eval_source"]["bench_x"]["train_rows_overlapping_after"] == 0


def test_short_exact_copy_is_caught_without_any_ngram():
    clean, rejects, _ = decontaminate(table([qa("short   STEM", {"A": "Yes", "B": "No"})]), small_evals())
    assert rejects.to_pylist()[0]["match_kind"] == "exact"
    assert clean.num_rows == 0


def test_paraphrase_sharing_one_13_gram_is_caught_and_unrelated_is_kept():
    words = EVAL_Q.split()
    shared = " ".join(words[10:23])  # exactly 13 consecutive words of the eval question
    paraphrase = f"In a different wording entirely: {shared} -- what would you suspect?"
    twelve = " ".join(words[10:22])  # only 12 shared words: below the n-gram length
    near_miss = f"In a different wording entirely: {twelve} -- what would you suspect?"
    unrelated = ("A 70-year-old man has crushing chest pain radiating to the left arm with ST elevation in "
                 "leads II, III and aVF. Which artery is most likely occluded?")
    train = table([qa(paraphrase, {"A": "x", "B": "y"}), qa(near_miss, {"A": "x", "B": "y"}),
                   qa(unrelated, {"A": "Right coronary artery", "B": "Left circumflex"})])
    clean, rejects, report = decontaminate(train, small_evals())
    assert rejects.column("question").to_pylist() == [paraphrase]
    assert rejects.column("match_kind").to_pylist() == ["ngram"]
    assert rejects.column("max_shared_ngrams").to_pylist() == [1]
    assert set(clean.column("question").to_pylist()) == {near_miss, unrelated}
    assert report["overlap_after_total"] == 0


def test_thresholds_are_configurable():
    words = EVAL_Q.split()
    paraphrase = "Reworded: " + " ".join(words[10:23]) + " end."
    train = table([qa(paraphrase, {"A": "x", "B": "y"})])
    _, rejects, _ = decontaminate(train, small_evals(), min_shared=2)
    assert rejects.num_rows == 0  # one shared 13-gram is below a threshold of two
    _, rejects, _ = decontaminate(train, small_evals(), n=8)
    assert rejects.num_rows == 1 and rejects.column("max_shared_ngrams")[0].as_py() == 6
    cfg = DecontamConfig(min_fraction=0.5)
    _, rejects, _ = decontaminate(train, small_evals(), config=cfg)
    assert rejects.num_rows == 0  # 1 of the eval item's ~24 13-grams is far below half


def test_options_field_choice_matters():
    train = table([qa("A completely different stem that shares nothing with the evaluation item at all.",
                      {"A": "Hashimoto thyroiditis", "B": "Graves disease", "C": "Subacute thyroiditis",
                       "D": "Iodine excess"})])
    evals = table([qa("Other stem.", {"A": "Hashimoto thyroiditis", "B": "Graves disease",
                                      "C": "Subacute thyroiditis", "D": "Iodine excess"}, source="b")])
    _, rejects, _ = decontaminate(train, evals, n=9)
    assert rejects.num_rows == 0  # 8 option words: no 9-gram inside one segment
    _, rejects, _ = decontaminate(train, evals, config=DecontamConfig(n=3))
    assert rejects.num_rows == 1  # "hashimoto thyroiditis graves" etc. are shared 3-grams
    _, rejects, _ = decontaminate(train, evals, config=DecontamConfig(n=3, train_fields=["question"],
                                                                       eval_fields=["question"]))
    assert rejects.num_rows == 0


def test_template_ngrams_do_not_flag_unrelated_vignettes(vendored_evals):
    # The stem ending recurs in dozens of benchmark questions; a new, unrelated question using it
    # is not contamination.
    stem = ("A 25-year-old dancer has knee swelling after a fall during rehearsal yesterday evening. "
            "Which of the following is the most likely cause of this patient's symptoms?")
    _, rejects, report = decontaminate(table([qa(stem, {"A": "x", "B": "y"})]), vendored_evals)
    assert rejects.num_rows == 0
    assert report["boilerplate_ngrams_ignored"] > 0
    # ... unless the template filter is switched off, which shows the filter is what kept it.
    _, rejects, _ = decontaminate(table([qa(stem, {"A": "x", "B": "y"})]), vendored_evals,
                                  config=DecontamConfig(boilerplate_df=None))
    assert rejects.num_rows == 1


def _edited_copies(evals: pa.Table, count: int, seed: int) -> tuple[list[dict], set[str]]:
    rng = random.Random(seed)
    picked = rng.sample(range(evals.num_rows), count)
    rows, ids = [], set()
    for k, i in enumerate(picked):
        src = evals.slice(i, 1).to_pylist()[0]
        words = src["question"].split()
        edit = k % 4
        if edit == 0:  # verbatim copy
            q = src["question"]
        elif edit == 1:  # one word replaced
            words[rng.randrange(len(words))] = "foo"
            q = " ".join(words)
        elif edit == 2:  # case, punctuation and whitespace changed
            q = "  ".join(w.strip(".,;?") for w in words).lower()
        else:  # first and last sentences dropped, a sentence prepended
            q = "Consider this case. " + " ".join(words[len(words) // 4: -3])
        rows.append(qa(q, dict(src["options"]), source="leaky_train", answer=src["answer_idx"]))
        ids.add(src["id"])
    return rows, ids


_PY_PUNCT = re.compile(r"[^\w\s]|_")
_DIGITS = re.compile(r"\d+")


def _py_tokens(text: str) -> list[str]:
    """Pure-Python normalisation, independent of the Arrow kernels under test."""
    return _PY_PUNCT.sub(" ", unicodedata.normalize("NFKC", text or "").lower()).split()


def _reference_pairs(train: pa.Table, evals: pa.Table, n: int, df_min: int) -> set[tuple[int, int]]:
    """Plain-Python n-gram sets (strings, no hashing): the independent reference."""
    def segments(r):
        return [_py_tokens(r["question"]), _py_tokens(" ".join(v for _, v in (r["options"] or [])))]

    def grams(ws):
        return {tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)}

    def mask(g):
        return tuple("#" if _DIGITS.fullmatch(w) else w for w in g)

    ev_segments = [segments(r) for r in evals.to_pylist()]
    df = defaultdict(set)
    for segs in ev_segments:
        for ws in segs:
            text = " ".join(ws)
            for g in grams(ws):
                df[mask(g)].add(text)
    template = {k for k, v in df.items() if len(v) >= df_min}
    inverted = defaultdict(set)
    for e, segs in enumerate(ev_segments):
        for ws in segs:
            for g in grams(ws):
                if mask(g) not in template:
                    inverted[g].add(e)
    pairs = set()
    for t, r in enumerate(train.to_pylist()):
        for ws in segments(r):
            for g in grams(ws):
                pairs |= {(t, e) for e in inverted.get(g, ())}
    return pairs


def test_vendored_eval_sets_catch_all_edited_copies(vendored_evals, tmp_path):
    leaked, leaked_ids = _edited_copies(vendored_evals, 40, seed=1)
    unrelated = [qa(f"Synthetic question number {i} about renal physiology and acid base balance in a "
                    f"marathon runner on day {i} of training with unusual symptoms.", {"A": "a", "B": "b"})
                 for i in range(30)]
    train = table(leaked + unrelated)
    clean, rejects, report = decontaminate(train, vendored_evals)
    assert rejects.num_rows == 40, rejects.column("question").to_pylist()
    assert clean.num_rows == 30 and set(clean.column("source").to_pylist()) == {"train_src"}
    assert set(clean.column("id").to_pylist()).isdisjoint(rejects.column("id").to_pylist())
    hit_ids = {i for ids in rejects.column("eval_ids").to_pylist() for i in ids}
    assert leaked_ids <= hit_ids  # every copy names the eval item it came from
    assert report["overlap_after_total"] == 0
    assert all(v["train_rows_overlapping_after"] == 0 for v in report["per_eval_source"].values())
    assert sum(v["train_rows_overlapping_before"] for v in report["per_eval_source"].values()) >= 40

    # The Arrow normalisation agrees with the pure-Python one on every benchmark question ...
    arrow_tokens = normalized_tokens(vendored_evals.column("question")).to_pylist()
    assert arrow_tokens == [_py_tokens(q) for q in vendored_evals.column("question").to_pylist()]
    # ... and hash-based matching equals the plain-string reference on these rows.
    index = EvalIndex.build(vendored_evals)
    m = find_matches(train, index)
    got = {(t, e) for t, e, k in zip(m["train_row"].to_pylist(), m["eval_row"].to_pylist(),
                                     m["kind"].to_pylist()) if k == "ngram"}
    assert got == _reference_pairs(train, vendored_evals, 13, 3)

    # Re-running on the clean output finds nothing: 0 overlap after the stage.
    _, again, _ = decontaminate(clean, vendored_evals)
    assert again.num_rows == 0

    # Through committed datasets, as the pipeline runs it.
    train_uri, eval_uri = str(tmp_path / "sft"), str(tmp_path / "evals")
    storage.write_table(train_uri, train, stage="test")
    storage.write_table(eval_uri, vendored_evals, stage="test")
    manifest, rep = run_decontaminate(train_uri, eval_uri, str(tmp_path / "clean"), str(tmp_path / "rejects"))
    assert manifest.rows == 30 and manifest.rejects == {"eval_contamination": 40}
    assert storage.read_table(str(tmp_path / "rejects")).num_rows == 40
    assert manifest.extra["decontamination"]["overlap_after_total"] == 0


def test_batches_and_slices_give_the_same_answer(vendored_evals):
    leaked, _ = _edited_copies(vendored_evals, 12, seed=7)
    train = table(leaked + [qa(f"Unrelated filler question {i} about bones?", {"A": "a"}) for i in range(20)])
    _, whole, _ = decontaminate(train, vendored_evals)
    _, batched, _ = decontaminate(train, vendored_evals, config=DecontamConfig(batch_rows=5))
    assert whole.column("id").to_pylist() == batched.column("id").to_pylist()
    # A sliced (zero-copy, offset) input behaves like a fresh one.
    sliced = pa.concat_tables([train.slice(3, 17), train.slice(20)])
    _, from_slices, _ = decontaminate(sliced, vendored_evals)
    expected = set(whole.column("id").to_pylist()) - set(train.slice(0, 3).column("id").to_pylist())
    assert set(from_slices.column("id").to_pylist()) == expected


def test_empty_and_null_text_never_match_each_other():
    evals = table([qa("Real eval question about the kidney?", {"A": "a"}, source="b")])
    train = pa.table({"id": ["t1", "t2"], "source": ["s", "s"], "question": [None, ""],
                      "options": pa.array([None, []], pa.map_(pa.string(), pa.string()))})
    clean, rejects, _ = decontaminate(train, evals)
    assert clean.num_rows == 2 and rejects.num_rows == 0
    empty_eval = table([]).slice(0, 0)
    clean, rejects, report = decontaminate(train, empty_eval)
    assert clean.num_rows == 2 and report["per_eval_source"] == {}


def test_index_pickles_for_workers(vendored_evals):
    import pickle

    index = EvalIndex.build(vendored_evals.slice(0, 50))
    again = pickle.loads(pickle.dumps(index))
    assert np.array_equal(again.unique_hashes, index.unique_hashes)


def test_partition_function_keeps_exactly_the_clean_rows(vendored_evals):
    # The map_batches function used for Ray Data / Spark partitions agrees with the table API.
    leaked, _ = _edited_copies(vendored_evals, 6, seed=3)
    train = table(leaked + [qa(f"Unrelated question {i} on dermatology rashes in toddlers?", {"A": "a"}) for i in range(5)])
    clean_fn = decontaminate_ray_batches(EvalIndex.build(vendored_evals))
    kept = pa.concat_tables([clean_fn(train.slice(0, 4)), clean_fn(train.slice(4))])
    clean, _, _ = decontaminate(train, vendored_evals)
    assert kept.column("id").to_pylist() == clean.column("id").to_pylist() and kept.num_rows == 5
