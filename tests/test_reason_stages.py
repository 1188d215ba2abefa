"""The reasoning stages' own logic, around a stand-in LLM step (unit level).

The stand-in honours run_llm's contract (same output columns, prompt errors skip the engine)
so these tests exercise resume, accounting, linking, pruning and verification code. The real
engine is exercised by the end-to-end tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from medreason_dist import storage
from medreason_dist.config import load_config
from medreason_dist.sources.schema import QA_SCHEMA, make_row
from medreason_dist.stages import generate, link, prune, reformat, verify
from medreason_dist.stages.extract import extract_entities
from medreason_dist.stages.resumable import run_resumable
from ray_helpers import FakeLlm


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def _qa(rows):
    return pa.Table.from_pylist([make_row(source="t", split="train", **r) for r in rows], schema=QA_SCHEMA)


QA = _qa([
    dict(question="A patient with type 2 diabetes needs a first-line drug. Which one?",
         options={"A": "Metformin", "B": "Warfarin"}, answer_text=None, answer_idx="A"),
    dict(question="Which drug lowers blood glucose in diabetes?",
         options={"A": "Aspirin", "B": "Metformin"}, answer_text=None, answer_idx="B"),
    dict(question="Name the first-line oral drug for type 2 diabetes.", options={}, answer_text="Metformin",
         answer_idx=None, require_options=False),
])


@pytest.fixture
def cfg(tmp_path):
    return load_config(None, [f"run.out={tmp_path / 'out'}", "reason.batch_rows=1", "reason.allow_pathless=false"])


def test_run_resumable_resumes_after_crash(cfg, ray_local, tmp_path):
    rows = pa.table({"key": [f"k{i}" for i in range(6)], "id": [f"k{i}" for i in range(6)],
                     "x": list(range(6))})

    def process_ok(ds):
        return ds.map(lambda r: dict(r, step_error=None if r["x"] % 3 else "bad", step_error_detail=None))

    def process_crash(ds):
        def fn(r):
            if r["x"] >= 3:
                import time

                time.sleep(4)  # let the finished rows stream out and be saved first
                raise RuntimeError("engine died")
            return dict(r, step_error=None, step_error_detail=None)
        return ds.map(fn)

    out, rej = str(tmp_path / "o"), str(tmp_path / "r")
    with pytest.raises(Exception):
        run_resumable(rows=rows, process=process_crash, error_column="step_error", out_uri=out, rejects_uri=rej,
                      stage="t", fingerprint="f1", batch_rows=1)
    assert not storage.is_committed(out)
    res = run_resumable(rows=rows, process=process_ok, error_column="step_error", out_uri=out, rejects_uri=rej,
                        stage="t", fingerprint="f1", batch_rows=1)
    assert res.resumed_rows >= 1 and res.resumed_rows + res.processed_rows == 6
    keys = storage.read_table(out).column("key").to_pylist() + storage.read_table(rej).column("key").to_pylist()
    assert sorted(keys) == sorted(rows.column("key").to_pylist())  # every row exactly once
    assert storage.read_table(rej).column("key").to_pylist() == ["k3"]  # k0 was saved by the first run
    assert storage.read_manifest(out).rows == 5
    # a committed result with the same fingerprint is reused without processing
    again = run_resumable(rows=rows, process=process_crash, error_column="step_error", out_uri=out,
                          rejects_uri=rej, stage="t", fingerprint="f1", batch_rows=1)
    assert again.processed_rows == 0


def test_candidate_links_exact_embedding_llm_none():
    nodes = pa.table({"node_id": [1, 2, 3], "name": ["Metformin", "Type 2 diabetes mellitus", "Warfarin"],
                      "name_norm": ["metformin", "type 2 diabetes mellitus", "warfarin"],
                      "type": ["drug", "disease", "drug"]})
    vecs = np.eye(3, dtype=np.float32)
    node_vectors = pa.table({"node_id": [1, 2, 3], "type": ["drug", "disease", "drug"],
                             "vector": pa.array(list(vecs), pa.list_(pa.float32()))})
    entities = pa.table({"entity_name": ["METFORMIN", "diabetes type 2", "coumadin", "gene x"],
                         "entity_type": ["drug", "disease", "drug", "gene/protein"]})
    q = np.array([[1, 0, 0], [0, 0.9, 0.1], [0.6, 0, 0.8], [1, 0, 0]], np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    d = link.candidate_links(entities, nodes, node_vectors, q, top_k=10, min_sim=0.7, accept_sim=0.85)
    assert [x["method"] for x in d] == ["exact", "embedding", "llm", "no_candidate"]
    assert d[0]["node_id"] == 1 and d[1]["node_id"] == 2
    assert [c["node_id"] for c in d[2]["candidates"]] == [3]  # only same-type nodes above 0.7
    # the mistyped 'gene x' finds the drug metformin once all types are searched
    d = link.candidate_links(entities, nodes, node_vectors, q, top_k=10, min_sim=0.7, accept_sim=0.85,
                             any_type_fallback=True)
    assert d[3]["method"] == "embedding" and d[3]["node_id"] == 1 and d[3]["candidates"][0]["type"] == "drug"


def test_check_reasoning_and_strip_conclusion():
    good = "## Reasoning paths\nA -> b -> C\n## Reasoning process\n1. x\n## Conclusion\nMetformin."
    assert generate.check_reasoning(good) == (None, None)
    assert generate.check_reasoning("## Reasoning process\nx")[0] == "malformed_reasoning"
    leaky = good.replace("1. x", "1. From the provided paths we see x")
    assert generate.check_reasoning(leaky)[0] == "mentions_given_material"
    assert generate.strip_conclusion(good).endswith("1. x") and "Metformin." not in generate.strip_conclusion(good)


def test_entity_pairs_skip_unlinked_and_same_node():
    links = [{"role": "q", "node_id": 1, "name": "a"}, {"role": "q", "node_id": None, "name": "b"},
             {"role": "a", "node_id": 2, "name": "c"}, {"role": "a", "node_id": 1, "name": "a"}]
    assert reformat.entity_pairs(links) == [{"pair_id": "1->2", "src": 1, "dst": 2}]


def test_entity_pairs_once_per_node_pair_when_mentions_share_a_node():
    # The demo run's prune failed on this: "MI" and "myocardial infarction" both linked to node 7
    # gave the pair 7->9 twice, and prune built two groups with one key.
    links = [{"role": "q", "node_id": 7, "name": "MI"}, {"role": "q", "node_id": 7, "name": "myocardial infarction"},
             {"role": "a", "node_id": 9, "name": "aspirin"}, {"role": "a", "node_id": 9, "name": "ASA"}]
    assert reformat.entity_pairs(links) == [{"pair_id": "7->9", "src": 7, "dst": 9}]


TINY_NODES = pa.table({"node_id": pa.array([10, 20, 30, 40], pa.int64()),
                       "name": ["metformin", "type 2 diabetes mellitus", "insulin resistance", "warfarin"],
                       "name_norm": ["metformin", "type 2 diabetes mellitus", "insulin resistance", "warfarin"],
                       "type": ["drug", "disease", "effect/phenotype", "drug"],
                       "source": ["DrugBank"] * 4, "source_id": ["a", "b", "c", "d"]})


@pytest.mark.parametrize("grounding", ["dictionary", "hybrid"])
def test_dictionary_and_hybrid_grounding(cfg, ray_local, tmp_path, grounding):
    """Dictionary links come first with their spans; hybrid asks the LLM only about what the
    dictionary missed; dictionary asks no model at all; gold tallies land in the manifest."""
    from medreason_dist.stages.lexicon import build_and_write

    kg = cfg.kg_uri()
    storage.write_table(storage.join(kg, "nodes"), TINY_NODES, stage="kg")
    synonyms = tmp_path / "syn.csv"
    synonyms.write_text("node_index,synonym,kind\n20,type 2 diabetes,exact\n30,high blood sugar,lay\n")
    cfg.kg.lexicon.reference_questions = None
    build_and_write(storage.join(kg, "nodes"), storage.join(kg, "lexicon"), settings=cfg.kg.lexicon,
                    synonyms_ref=str(synonyms), fingerprint="f", options=None)
    gold = tmp_path / "gold.jsonl"
    first = QA.slice(0, 1).to_pylist()[0]
    gold.write_text(json.dumps({"question": first["question"], "options": dict(first["options"]),
                                "answer_idx": "A", "gold": {"question": [{"node_id": 20}],
                                                            "answer": [{"node_id": 10}]}}) + "\n")
    cfg.reason.grounding = grounding
    cfg.reason.grounding_gold = str(gold)
    llm_names = {"question_entities": [{"name": "type 2 diabetes", "type": "disease"},
                                       {"name": "blood glucose", "type": "effect/phenotype"}],
                 "answer_entities": [{"name": "Metformin", "type": "drug"}]}
    fake = FakeLlm({"extract": lambda r: json.dumps(llm_names), "link": lambda r: json.dumps({"choice": 1})})
    out = cfg.out_uri
    storage.write_table(out("sources/qa"), QA, stage="sources")
    extract_entities(cfg, out("sources/qa"), out_uri=out("reason/extract"), rejects_uri=out("reason/extract_rejects"),
                     fingerprint="f", llm_fn=fake)
    lk = link.link_entities(cfg, out("reason/extract"), nodes_uri=storage.join(kg, "nodes"),
                            lexicon_uri=storage.join(kg, "lexicon"), embeddings_uri=storage.join(kg, "embeddings"),
                            out_uri=out("reason/link"), rejects_uri=out("reason/link_rejects"), fingerprint="f",
                            llm_fn=fake)
    rows = {r["id"]: json.loads(r["links_json"]) for r in storage.read_table(out("reason/link")).to_pylist()}
    first_links = rows[first["id"]]
    # the same column type in every shard file, whether or not the shard asked the engine anything
    # (a float in some shards and an int in others and the dataset no longer opens as a whole)
    import pyarrow.parquet as pq

    files = list(Path(storage.local_path(out("reason/link"))).glob("*.parquet"))
    assert len(files) == 3
    assert {pq.read_schema(f).field("dictionary_generic_skipped").type for f in files} == {pa.int64()}
    assert len(storage.read_table(out("reason/link")).column("dictionary_generic_skipped")) == 3
    dictionary = [x for x in first_links if x["method"] == "dictionary"]
    assert [(x["role"], x["surface"], x["node_id"]) for x in dictionary] == [("q", "type 2 diabetes", 20),
                                                                          ("a", "Metformin", 10)]
    assert first["question"][dictionary[0]["start"]:dictionary[0]["end"]] == "type 2 diabetes"
    assert dictionary[0]["evidence"].startswith("lexicon synonym:exact")
    assert lk.output.extra["gold.tp"] == 2 and lk.output.extra["gold.fn"] == 0
    if grounding == "dictionary":
        assert lk.output.extra["gold.fp"] == 0
        assert fake.calls == 0  # neither extract nor link asked a model
        assert all(x["method"] == "dictionary" for links in rows.values() for x in links)
    else:
        # The dictionary covered "type 2 diabetes" and the answer. "blood glucose" is not in the
        # first question (dropped: hybrid_llm_names=in_text) but is in the second, where it goes on
        # to the embedder with its span.
        assert [x for x in first_links if x["method"] != "dictionary"] == []
        second = QA.column("id")[1].as_py()
        llm = [x for x in rows[second] if x["method"] != "dictionary"]
        assert [x["surface"] for x in llm] == ["blood glucose"]
        question = QA.column("question")[1].as_py()
        assert question[llm[0]["start"]:llm[0]["end"]] == "blood glucose"


def test_reasoning_stages_account_for_every_row(cfg, ray_local, tmp_path):
    """extract -> link -> reformat -> (paths given) -> prune -> generate -> verify on a tiny KG."""
    kg = cfg.kg_uri()
    nodes = pa.table({"node_id": pa.array([10, 20, 30, 40], pa.int64()),
                      "name": ["metformin", "type 2 diabetes mellitus", "insulin resistance", "warfarin"],
                      "name_norm": ["metformin", "type 2 diabetes mellitus", "insulin resistance", "warfarin"],
                      "type": ["drug", "disease", "effect/phenotype", "drug"],
                      "source": ["DrugBank"] * 4, "source_id": ["a", "b", "c", "d"]})
    storage.write_table(storage.join(kg, "nodes"), nodes, stage="kg")
    extract_answers = {
        QA.column("id")[0].as_py(): {"question_entities": [{"name": "type 2 diabetes mellitus", "type": "disease"}],
                                     "answer_entities": [{"name": "Metformin", "type": "drug"}]},
        QA.column("id")[1].as_py(): {"question_entities": [{"name": "type 2 diabetes mellitus", "type": "disease"}],
                                     "answer_entities": [{"name": "metformin", "type": "drug"}]},
        QA.column("id")[2].as_py(): {"question_entities": [{"name": "zzz unknown thing", "type": "pathway"}],
                                     "answer_entities": [{"name": "metformin", "type": "drug"}]},
    }
    fake = FakeLlm({
        "extract": lambda r: json.dumps(extract_answers[r["id"]]),
        "link": lambda r: json.dumps({"choice": 1}),
        "reformat": lambda r: json.dumps({"description": "A diabetic patient.", "conclusion": "Metformin."}),
        "prune": lambda r: json.dumps({"keep": [2, 1, 2, 99]}),
        "generate": lambda r: json.dumps({"reasoning_paths": [1, 7],
                                          "reasoning_process": "1. metformin treats type 2 diabetes mellitus",
                                          "conclusion": "Metformin."}),
        "verify": lambda r: json.dumps({"answer": "A"} if r["answer_idx"] else {"correct": True}),
    })
    out = cfg.out_uri
    cfg.reason.grounding, cfg.reason.grounding_gold = "llm", None  # the LLM path; hybrid has its own test above
    storage.write_table(out("sources/qa"), QA, stage="sources")
    ext = extract_entities(cfg, out("sources/qa"), out_uri=out("reason/extract"),
                           rejects_uri=out("reason/extract_rejects"), fingerprint="f", llm_fn=fake)
    assert ext.output.rows == 3 and ext.output.tokens == {"extract_input": 30, "extract_output": 15}
    lk = link.link_entities(cfg, out("reason/extract"), nodes_uri=storage.join(kg, "nodes"),
                            lexicon_uri=storage.join(kg, "lexicon"), embeddings_uri=storage.join(kg, "embeddings"), out_uri=out("reason/link"),
                            rejects_uri=out("reason/link_rejects"), fingerprint="f", llm_fn=fake)
    assert lk.output.rows == 3 and lk.rejects.rows == 0  # link keeps every QA row
    linked = storage.read_table(out("reason/link"))
    by_id = {r["id"]: json.loads(r["links_json"]) for r in linked.to_pylist()}
    assert {x["method"] for x in by_id[QA.column("id")[0].as_py()]} == {"exact"}
    assert [x["node_id"] for x in by_id[QA.column("id")[2].as_py()] if x["role"] == "q"] == [None]
    rf = reformat.reformat_rows(cfg, out("reason/link"), out_uri=out("reason/reformat"), rejects_uri=out("reason/reformat_rejects"),
                                pairs_uri=out("reason/pairs"), fingerprint="f", llm_fn=fake)
    pairs = storage.read_table(out("reason/pairs")).to_pylist()
    assert pairs == [{"pair_id": "20->10", "src": 20, "dst": 10}] and rf.output.rows == 3
    # Paths as the Spark engine writes them: four 2-hop paths, one 1-hop path for the pair.
    paths = pa.table({"pair_id": ["20->10"] * 4, "hops": [2, 2, 2, 2],
                      "path_nodes": [[20, 30, 10], [20, 40, 10], [20, 30, 10], [20, 40, 10]],
                      "path_relations": [["disease_phenotype_positive", "drug_effect"], ["x", "y"], ["p", "q"],
                                         ["r", "s"]]})
    storage.write_table(out("reason/paths"), paths, stage="paths")
    cfg.reason.keep_paths_per_group = 2
    pr = prune.prune_paths(cfg, out("reason/reformat"), paths_uri=out("reason/paths"),
                           nodes_uri=storage.join(kg, "nodes"), out_uri=out("reason/prune"),
                           rejects_uri=out("reason/prune_rejects"), fingerprint="f", llm_fn=fake)
    assert pr.output.rows == 3 and pr.rejects.rows == 0  # prune keeps every QA row
    assert pr.output.extra["groups"] == 2 and pr.output.extra["llm_groups"] == 2  # rows 0 and 1 share the pair
    pruned = {r["id"]: r for r in storage.read_table(out("reason/prune")).to_pylist()}
    assert pruned[QA.column("id")[0].as_py()]["n_kept_paths"] == 2
    assert pruned[QA.column("id")[2].as_py()]["n_kept_paths"] == 0
    texts = json.loads(pruned[QA.column("id")[0].as_py()]["kept_paths_text_json"])
    assert texts[0].startswith("type 2 diabetes mellitus -[") and texts[0].endswith("metformin")
    calls_before = fake.calls
    gen = generate.generate_reasoning(cfg, out("reason/prune"), out_uri=out("reason/generate"),
                                      rejects_uri=out("reason/generate_rejects"), fingerprint="f", llm_fn=fake)
    assert fake.calls == calls_before + 1
    assert gen.output.rows == 2 and gen.rejects.rejects == {"no_path": 1}
    # the verify stage as the runner calls it: verification, SFT rows, JSONL and all rejects, on workers
    from medreason_dist import pipeline
    from medreason_dist.runner.contract import StageContext

    sft_manifest = verify.verify_and_build_sft(StageContext(pipeline.get_stage("verify"), cfg, "f"), llm_fn=fake)
    kept = storage.read_table(out("reason/verified"))
    assert kept.column("id").to_pylist() == [QA.column("id")[0].as_py()]  # gold A matches, gold B does not
    assert sft_manifest.rejects == {"answer_mismatch": 1}
    assert sft_manifest.extra["citing_path_rows"] == 1 and sft_manifest.extra["pathless_rows"] == 0
    # accounting: every QA row is in exactly one terminal place
    terminal = (kept.column("id").to_pylist()
                + storage.read_table(out("reason/verify_rejects")).column("id").to_pylist()
                + storage.read_table(out("reason/generate_rejects")).column("id").to_pylist())
    assert sorted(terminal) == sorted(QA.column("id").to_pylist())
    sft = storage.read_table(out("reason/sft"))
    assert sft.column("id").to_pylist() == kept.column("id").to_pylist()
    gathered = storage.read_table(out("reason/rejects"))
    assert sorted(gathered.column("id").to_pylist()) == sorted(set(QA.column("id").to_pylist())
                                                               - set(kept.column("id").to_pylist()))
    import datasets

    ds = datasets.load_dataset("json", data_files=storage.local_path(out("reason/sft_jsonl/sft.jsonl")).as_posix(),
                               split="train")
    assert ds.num_rows == 1 and ds[0]["answer_idx"] == "A" and len(ds[0]["paths"]) == 2
    assert generate.cites_path(sft.column("reasoning")[0].as_py(), sft.column("paths_used_json")[0].as_py())
