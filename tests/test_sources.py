"""Every adapter on real vendored rows and on hand-made rows in each public layout, incl. bad ones."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medreason_dist import storage
from medreason_dist.config import SourceSpec
from medreason_dist.sources.adapters import ADAPTERS
from medreason_dist.sources.schema import QA_SCHEMA, qa_id
from medreason_dist.stages.sources import normalize_sources, write_sources

DATA = Path(__file__).parent / "data" / "sources"


def _run(adapter: str, path: Path, **kw):
    return normalize_sources([SourceSpec(name=adapter, adapter=adapter, path=str(path), **kw)], progress=False)


@pytest.mark.parametrize("name,expected", [("medbullets_op4.jsonl", 4), ("medbullets_op5.jsonl", 5),
                                           ("medqa_test.jsonl", None)])
def test_vendored_eval_files_normalise_completely(eval_dir, name, expected):
    path = eval_dir / name
    n_lines = sum(1 for line in path.open() if line.strip())
    res = normalize_sources([SourceSpec(name=name, adapter="medqa", path=str(path), split="test")],
                            progress=False, dedupe=False)
    assert res.qa.num_rows == n_lines and res.quarantine.num_rows == 0
    assert res.qa.schema.equals(QA_SCHEMA)
    rows = res.qa.to_pylist()
    first_raw = json.loads(path.open().readline())
    assert rows[0]["question"] == first_raw["question"].strip()
    assert rows[0]["answer_idx"] == first_raw["answer_idx"]
    assert dict(rows[0]["options"])[rows[0]["answer_idx"]] == rows[0]["answer_text"]
    if expected:
        assert all(len(r["options"]) == expected for r in rows)


def test_ids_are_stable_content_hashes(eval_dir):
    path = eval_dir / "medqa_test.jsonl"
    a = _run("medqa", path, limit=5).qa.column("id").to_pylist()
    b = _run("medqa", path, limit=5).qa.column("id").to_pylist()
    assert a == b and len(set(a)) == 5
    assert qa_id("Q?", {"A": "x"}, "x") == qa_id("  q? ", {"A": "X"}, "X ")  # normalised text
    assert qa_id("Q?", {"A": "x"}, "x") != qa_id("Q?", {"A": "y"}, "x")


def test_dedupe_quarantines_repeats_for_training_only(eval_dir):
    path = eval_dir / "medbullets_op4.jsonl"
    train = _run("medqa", path)
    assert train.rejects["duplicate"] > 0
    assert train.qa.num_rows + train.rejects["duplicate"] == 308
    assert len(set(train.qa.column("id").to_pylist())) == train.qa.num_rows


def test_medqa_bad_rows_go_to_quarantine_with_reasons():
    res = _run("medqa", DATA / "medqa_bad.jsonl")
    reasons = Counter(res.quarantine.column("reason").to_pylist())
    assert reasons == Counter({"empty_options": 1, "answer_not_in_options": 1, "missing_answer": 1,
                               "missing_question": 1, "bad_option_key": 1, "malformed_json": 1,
                               "not_an_object": 1})
    assert res.qa.num_rows == 1 and res.qa.column("answer_idx").to_pylist() == ["G"]
    bad = {r["reason"]: r for r in res.quarantine.to_pylist()}
    assert bad["malformed_json"]["row"] == 7 and bad["malformed_json"]["raw"].startswith('{"question": "broken')
    assert bad["malformed_json"]["file"].endswith("medqa_bad.jsonl")


def test_medmcqa():
    res = _run("medmcqa", DATA / "medmcqa.jsonl")
    rows = res.qa.to_pylist()
    assert [r["answer_idx"] for r in rows] == ["B", "A"]
    assert rows[0]["answer_text"] == "Phrenic" and "phrenic nerve" in rows[0]["reference_reasoning"]
    assert Counter(res.quarantine.column("reason").to_pylist()) == Counter(
        {"answer_not_in_options": 1, "missing_question": 1, "empty_option": 1})
    one_based = _run("medmcqa", DATA / "medmcqa.jsonl", options={"cop_base": 1})
    assert one_based.qa.to_pylist()[0]["answer_idx"] == "A"


def test_pubmedqa_jsonl_and_original_json():
    res = _run("pubmedqa", DATA / "pubmedqa.jsonl")
    row = res.qa.to_pylist()[0]
    assert row["answer_idx"] == "A" and row["answer_text"] == "yes"
    assert row["question"].startswith("Context: A trial") and "Question: Does aspirin" in row["question"]
    assert res.quarantine.column("reason").to_pylist() == ["answer_not_in_options"]
    orig = _run("pubmedqa", DATA / "pubmedqa_original.json")
    assert orig.qa.num_rows == 1 and json.loads(orig.qa.to_pylist()[0]["meta"]) == {"pubid": "201"}


def test_mmlu_keeps_medical_subjects_and_counts_the_rest():
    res = _run("mmlu", DATA / "mmlu.jsonl")
    assert res.qa.to_pylist()[0]["answer_text"] == "Clavicle"
    assert Counter(res.quarantine.column("reason").to_pylist()) == Counter(
        {"not_medical_subject": 1, "answer_not_in_options": 1})


def test_huatuo_free_text():
    res = _run("huatuo_o1", DATA / "huatuo_o1.jsonl")
    row = res.qa.to_pylist()[0]
    assert row["answer_idx"] is None and row["options"] == [] and row["answer_text"] == "Diabetes mellitus."
    assert row["reference_reasoning"].startswith("High fasting glucose")
    assert res.quarantine.column("reason").to_pylist() == ["missing_answer"]


def test_medxpertqa_strips_repeated_choices():
    res = _run("medxpertqa", DATA / "medxpertqa.jsonl")
    row = res.qa.to_pylist()[0]
    assert "Answer Choices" not in row["question"] and row["answer_text"] == "Parainfluenza virus"
    assert res.quarantine.column("reason").to_pylist() == ["answer_not_in_options"]


def test_hle_text_items_only():
    res = _run("hle", DATA / "hle.jsonl")
    rows = {json.loads(r["meta"])["id"]: r for r in res.qa.to_pylist()}
    assert rows["h1"]["answer_idx"] == "B" and rows["h1"]["answer_text"] == "Phenylalanine hydroxylase"
    assert len(rows["h1"]["options"]) == 4 and "Answer Choices" not in rows["h1"]["question"]
    assert rows["h2"]["answer_idx"] is None and rows["h2"]["answer_text"].startswith("Abducens")
    assert Counter(res.quarantine.column("reason").to_pylist()) == Counter(
        {"has_image": 1, "not_medical_subject": 1})


def test_parquet_input_and_every_adapter_registered(tmp_path):
    rows = [json.loads(line) for line in (DATA / "medmcqa.jsonl").open()][:2]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "m.parquet")
    assert _run("medmcqa", tmp_path / "m.parquet").qa.num_rows == 2
    assert {"medqa", "medbullets", "medmcqa", "pubmedqa", "mmlu", "huatuo_o1", "medxpertqa", "hle"} <= set(ADAPTERS)


def test_malformed_whole_json_file_is_quarantined_not_crashing(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": [1, 2')
    res = _run("pubmedqa", bad)
    assert res.qa.num_rows == 0 and res.quarantine.column("reason").to_pylist() == ["malformed_json"]


def test_write_sources_manifest_counts(tmp_path):
    res = _run("medqa", DATA / "medqa_bad.jsonl")
    m = write_sources(res, str(tmp_path / "qa"), str(tmp_path / "q"), config_hash="h")
    assert m.rows == 1 and sum(m.rejects.values()) == 7
    assert storage.read_manifest(str(tmp_path / "q")).rows == 7
    assert m.extra["per_source"]["medqa"] == {"read": 8, "kept": 1, "quarantined": 7}


def test_demo_sample_is_not_contaminated_by_the_eval_sets(eval_dir):
    """The demo trains on its sample, so the sample must not copy any benchmark item."""
    from medreason_dist.stages.decontaminate import decontaminate

    demo = _run("medqa", Path(__file__).parent.parent / "medreason_dist/data/demo/qa_sample.jsonl")
    assert demo.qa.num_rows == 16
    evals = normalize_sources([SourceSpec(name=p.stem, adapter="medqa", path=str(p), split="test")
                               for p in sorted(eval_dir.glob("*.jsonl"))], progress=False, dedupe=False)
    clean, rejects, _ = decontaminate(demo.qa, evals.qa)
    assert rejects.num_rows == 0 and clean.num_rows == 16
