"""The LEADS pipeline around a stand-in LLM step: inputs, stage wiring through the runner,
resume, rejects, exports, retrieval through the loopback services, and the evaluation figures.

The stand-in (tests/ray_helpers.FakeLlm) honours run_llm's contract, so these tests exercise
everything but generation; tests/test_leads_e2e.py runs the real engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset
import pytest

from medreason_dist import datasets as D
from medreason_dist import storage
from medreason_dist.config import PACKAGED_DATA, load_config
from medreason_dist.leads_pipeline import LEADS_PIPELINE
from medreason_dist.runner import execute
from medreason_dist.stages.leads_inputs import load_inputs
from ray_helpers import FakeLlm, local_ray

FIXTURE = PACKAGED_DATA / "leads" / "knee_oa_exercise"
GOLD = json.loads((FIXTURE / "gold_extraction.json").read_text())
QUERY = {"pubmed": '("knee osteoarthritis"[tiab] OR "osteoarthritis, knee"[mh]) AND (exercise*[tiab] OR '
                   'strengthening[tiab])',
         "ctgov": {"cond": "knee osteoarthritis", "intr": "exercise", "term": ""}}


@pytest.fixture(scope="module")
def ray_local():
    with local_ray(__name__):  # the stand-in answers below travel to workers by value
        yield


def _config(tmp_path, *more):
    return load_config(Path(__file__).resolve().parent.parent / "conf" / "leads_local.yaml",
                       [f"run.out={tmp_path / 'out'}", "leads.batch_rows=8", *more])


# -- inputs -------------------------------------------------------------------------------------


def test_fixture_review_inputs_merge_quarantine_and_gold(tmp_path):
    inputs = load_inputs(_config(tmp_path).leads)
    assert len(inputs.records) == 50
    assert inputs.stats["duplicates_merged"] == 3 and inputs.stats["full_texts"] == 3
    assert [q["reason"] for q in inputs.quarantine] == ["missing_title"]
    assert sum(bool(r["label_included"]) for r in inputs.records) == 16
    assert all(r["label_included"] is not None for r in inputs.records)
    assert {r["pmid"] for r in inputs.records if r["full_text"]} == set(GOLD)


def test_gold_label_for_unknown_pmid_and_stray_full_text_are_quarantined(tmp_path):
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "99999999.md").write_text("A trial nobody screened.")
    gold = tmp_path / "gold.csv"
    gold.write_text("pmid,included\n30100081,1\n12345678,0\n")
    cfg = _config(tmp_path, f"leads.review.fulltexts={texts}", f"leads.review.gold_labels={gold}")
    reasons = sorted(q["reason"] for q in load_inputs(cfg.leads).quarantine)
    assert reasons == ["fulltext_without_record", "gold_label_without_record", "missing_title"]


def test_bad_gold_label_line_is_named(tmp_path):
    gold = tmp_path / "gold.csv"
    gold.write_text("pmid,included\n30100081,maybe\n")
    with pytest.raises(ValueError, match="line 2"):
        load_inputs(_config(tmp_path, f"leads.review.gold_labels={gold}").leads)


def _write_review(folder: Path, pmid: str, title: str, trials: list[dict]) -> None:
    (folder / "search_screen").mkdir(parents=True, exist_ok=True)
    review = {"pmid": pmid, "title": title, "PICO": str({"P": "adults with asthma", "I": "inhaled steroid",
                                                         "C": "", "O": "exacerbations"}),
              "trials": str(trials)}
    (folder / "search_screen" / f"{pmid}.json").write_text(json.dumps(review))


def test_published_reviews_pool_their_studies_as_negatives(tmp_path):
    folder = tmp_path / "reviews"
    _write_review(folder, "1", "Steroids for asthma", [{"title": "Budesonide in asthma", "pmid": "11"},
                                                       {"pmid": "12"}])  # no title: quarantined
    _write_review(folder, "2", "Exercise for asthma", [{"title": "Swimming training in asthma", "pmid": "21"}])
    inputs = load_inputs(_config(tmp_path, f"leads.reviews_dir={folder}").leads)
    by_review = {(r["review_id"], r["title"]): r["label_included"] for r in inputs.records}
    assert by_review == {("1", "Budesonide in asthma"): True, ("1", "Swimming training in asthma"): False,
                         ("2", "Budesonide in asthma"): False, ("2", "Swimming training in asthma"): True}
    assert [q["reason"] for q in inputs.quarantine] == ["no_title"]
    assert [p["included_titles"] for p in inputs.protocols] == [["Budesonide in asthma"],
                                                                ["Swimming training in asthma"]]
    assert [c for c in json.loads(inputs.protocols[0]["protocol_json"])["inclusion"]] == []  # PICO criteria used


# -- the stages through the runner --------------------------------------------------------------


def _screen_answer(row: dict) -> str | None:
    if row["pmid"] == "30117890":  # one record the engine fails on: it must become a reject
        return None
    label = "YES" if row["label_included"] else "NO"
    inclusion = {f"I{i}": {"label": label, "rationale": "as the abstract says"} for i in range(1, 5)}
    exclusion = {f"E{i}": {"label": "NO", "rationale": "not that kind of study"} for i in range(1, 3)}
    return json.dumps({**inclusion, **exclusion})


def _extract_answer(row: dict) -> str:
    gold = GOLD[row["pmid"]]
    evidence = gold["evidence"]
    characteristics = {name: ({"reported": True, "value": value, "evidence": evidence[name]}
                              if name in evidence and evidence[name].split()[0] in row["chunk_text"]
                              else {"reported": False, "value": None, "evidence": None})
                       for name, value in gold["characteristics"].items()}
    arms = [{"label": a["label"], "type": a["type"], "intervention_names": a["interventions"]} for a in gold["arms"]]
    return json.dumps({"characteristics": characteristics, "arms": arms, "participants": [], "results": []})


ANSWERS = {"leads_search": lambda row: json.dumps(QUERY), "leads_screen": _screen_answer,
           "leads_extract": _extract_answer}


@pytest.fixture(scope="module")
def finished(ray_local, tmp_path_factory, monkeypatch_module):
    tmp = tmp_path_factory.mktemp("leads")
    cfg = _config(tmp, "leads.extract.chunk_tokens=80")  # several chunks per full text
    fake = FakeLlm(ANSWERS)
    monkeypatch_module.setattr("medreason_dist.leads_pipeline._llm_fn", lambda: fake)
    names = ["leads_inputs", "leads_search", "leads_retrieve", "leads_screen", "leads_extract", "leads_eval"]
    outcomes = execute.run_stages(cfg, LEADS_PIPELINE, names)
    return cfg, fake, outcomes


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _read(cfg, ref) -> list[dict]:
    return storage.read_table(cfg.dataset_uri(ref.name), options=cfg.storage).to_pylist()


def test_every_stage_runs_and_every_record_is_accounted_for(finished):
    cfg, _, outcomes = finished
    assert [(o.stage, o.status) for o in outcomes] == [
        ("leads_inputs", "ran"), ("leads_search", "ran"), ("leads_retrieve", "ran"), ("leads_screen", "ran"),
        ("leads_extract", "ran"), ("leads_eval", "ran")], [o.detail for o in outcomes]
    screened, rejects = _read(cfg, D.LEADS_SCREENING), _read(cfg, D.LEADS_SCREEN_REJECTS)
    assert len(screened) == 49 and [(r["id"], r["reason"]) for r in rejects] == [("pmid:30117890", "engine_error")]
    assert all(len(r["labels"]) == 6 for r in screened)
    scores = {r["pmid"]: r["score"] for r in screened}
    assert scores["30100081"] == pytest.approx((4 + 2) / 6)  # four YES, two exclusions not applying (negated NO)
    manifest = storage.read_manifest(cfg.dataset_uri(D.LEADS_SCREENING.name), cfg.storage)
    assert manifest.rejects == {"engine_error": 1} and manifest.extra["predicted_include"] == 16


def test_extraction_merges_chunks_into_one_row_per_study(finished):
    cfg, _, _ = finished
    rows = {r["pmid"]: r for r in _read(cfg, D.LEADS_EXTRACTION)}
    assert set(rows) == set(GOLD)
    assert all(r["chunks"] > 1 for r in rows.values())  # 80-token chunks
    values = {c["field"]: c for c in rows["30100081"]["characteristics"]}
    assert values["participants"]["value_number"] == 146 and values["country"]["value"] == "Denmark"
    assert [a["type"] for a in rows["30100081"]["arms"]] == ["EXPERIMENTAL", "NO_INTERVENTION"]


def test_evaluation_figures(finished):
    cfg, _, _ = finished
    rows = {(r["review_id"], r["task"], r["metric"]): r for r in _read(cfg, D.LEADS_EVAL)}
    recall = rows[("all", "screening", "recall")]
    assert recall["value"] == 1.0 and recall["total"] == 16 and recall["ci_low"] < 1.0  # the reject was a negative
    assert rows[("all", "screening", "precision")]["value"] == 1.0
    assert rows[("all", "screening", "recall@20")]["value"] == 1.0
    assert rows[("all", "screening", "wss@95")]["value"] > 0.5
    assert rows[("all", "screening", "labels.I1.YES")]["value"] == 16
    search = rows[("all", "search", "recall")]
    assert 0 < search["value"] <= 1 and search["total"] == 16
    assert rows[("all", "search", "queries_accepted")]["value"] == 1.0
    items = _read(cfg, D.LEADS_EVAL_ITEMS)
    chars = [i for i in items if i["kind"] == "characteristic"]
    assert len(chars) == 18 and sum(i["correct"] for i in chars) >= 12
    assert all(i["predicted"] is None for i in items if i["kind"] == "participants")  # never extracted: wrong
    assert rows[("all", "extraction", "accuracy[participants]")]["value"] == 0.0


def test_screening_exports_open_in_reviewer_tools(finished):
    import csv
    import io

    import rispy

    cfg, _, _ = finished
    ris = storage.read_bytes(cfg.dataset_uri(D.LEADS_SCREENING_RIS.name)).decode()
    entries = rispy.loads(ris)
    assert len(entries) == 49
    labels = [n for e in entries for n in e["notes"] if n.startswith("ASReview_")]
    assert labels.count("ASReview_relevant") == 16 and labels.count("ASReview_irrelevant") == 33
    assert entries[0]["notes"][0] == "ASReview_relevant"  # best score first
    rows = list(csv.DictReader(io.StringIO(storage.read_bytes(cfg.dataset_uri(D.LEADS_SCREENING_CSV.name)).decode())))
    assert len(rows) == 49 and rows[0]["rank"] == "1" and {"I1", "E2", "I1_rationale"} <= set(rows[0])


def test_extraction_and_evaluation_as_csv(finished):
    import csv
    import io

    cfg, _, _ = finished
    text = storage.read_bytes(cfg.dataset_uri(D.LEADS_EXTRACTION_CSV.name)).decode()
    lines = list(csv.DictReader(io.StringIO(text)))
    country = [r for r in lines if r["pmid"] == "30100081" and r["name"] == "country"]
    assert country[0]["kind"] == "characteristic" and country[0]["value"] == "Denmark"
    assert {r["kind"] for r in lines} == {"characteristic", "arm"}  # the stand-in reports no statistics
    metrics = list(csv.DictReader(io.StringIO(storage.read_bytes(cfg.dataset_uri(D.LEADS_EVAL_CSV.name)).decode())))
    assert len(metrics) == storage.read_manifest(cfg.dataset_uri(D.LEADS_EVAL.name)).rows


def test_retrieve_runs_the_accepted_query_through_both_clients(finished):
    cfg, _, _ = finished
    retrieved = _read(cfg, D.LEADS_RETRIEVED)
    assert retrieved and all(r["query"] == QUERY["pubmed"] for r in retrieved)
    assert all("osteoarthritis" in (r["title"] + (r["abstract"] or "")).lower() for r in retrieved)
    trials = _read(cfg, D.LEADS_RETRIEVED_TRIALS)
    assert trials and all("knee" in " ".join(t["conditions"]).lower() for t in trials)
    assert _read(cfg, D.LEADS_RETRIEVED_ARMS) and _read(cfg, D.LEADS_RETRIEVED_MEASUREMENTS)
    assert _read(cfg, D.LEADS_RETRIEVE_ERRORS) == []


def test_rerun_skips_everything_and_a_threshold_change_reruns_screening_only(finished):
    cfg, fake, _ = finished
    calls = fake.calls
    names = ["leads_inputs", "leads_search", "leads_screen", "leads_extract", "leads_eval"]
    assert {o.status for o in execute.run_stages(cfg, LEADS_PIPELINE, names)} == {"skipped"}
    assert fake.calls == calls
    changed = cfg.model_copy(deep=True)
    changed.leads.screen.threshold = 0.9
    plan = {e.stage: e.action for e in execute.plan(changed, LEADS_PIPELINE, names)}
    assert plan == {"leads_inputs": "up to date", "leads_search": "up to date", "leads_screen": "run",
                    "leads_extract": "up to date", "leads_eval": "run"}


def test_unreachable_service_is_an_error_row_not_a_crash(finished, tmp_path):
    import socket

    cfg, _, _ = finished
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    broken = cfg.model_copy(deep=True)
    broken.leads.pubmed.base_url = f"http://127.0.0.1:{port}/entrez/eutils"
    broken.run.locations = {ref.name: str(tmp_path / ref.name.replace("/", "_")) for ref in
                            (D.LEADS_RETRIEVED, D.LEADS_RETRIEVED_TRIALS, D.LEADS_RETRIEVED_ARMS,
                             D.LEADS_RETRIEVED_MEASUREMENTS, D.LEADS_RETRIEVE_ERRORS)}
    [outcome] = execute.run_stages(broken, LEADS_PIPELINE, ["leads_retrieve"])
    assert outcome.status == "ran", outcome.detail
    errors = _read(broken, D.LEADS_RETRIEVE_ERRORS)
    assert [(e["service"], e["reason"]) for e in errors] == [("pubmed", "service_error")]
    assert storage.read_manifest(broken.dataset_uri(D.LEADS_RETRIEVED.name)).rejects == {"pubmed.service_error": 1}


def test_a_refused_query_is_a_reject_with_the_grammar_reason(ray_local, tmp_path, monkeypatch):
    cfg = _config(tmp_path)
    bad = dict(QUERY, pubmed='(knee AND "osteoarthritis')
    monkeypatch.setattr("medreason_dist.leads_pipeline._llm_fn",
                        lambda: FakeLlm({"leads_search": lambda row: json.dumps(bad)}))
    outcomes = execute.run_stages(cfg, LEADS_PIPELINE, ["leads_inputs", "leads_search"])
    assert [o.status for o in outcomes] == ["ran", "ran"]
    [reject] = _read(cfg, D.LEADS_SEARCH_REJECTS)
    assert reject["reason"] == "query_grammar" and reject["detail"].startswith("pubmed:")


def test_datasets_open_without_project_code(finished):
    import duckdb

    cfg, _, _ = finished
    path = storage.local_path(cfg.dataset_uri(D.LEADS_SCREENING.name))
    n = duckdb.sql(f"select count(*) from read_parquet('{path}/*.parquet')").fetchall()[0][0]
    assert n == 49
    labels = duckdb.sql(f"select unnest(labels).label as l, count(*) from read_parquet('{path}/*.parquet') "
                        "group by l order by l").fetchall()
    assert dict(labels)["YES"] == 16 * 4
    table = pyarrow.dataset.dataset(str(storage.local_path(cfg.dataset_uri(D.LEADS_EXTRACTION.name))), format="parquet")
    assert table.count_rows() == 3


def test_full_text_mode_screens_on_the_full_text_where_there_is_one(tmp_path):
    from medreason_dist.literature.protocol import load_protocol
    from medreason_dist.stages.leads_inputs import LEADS_RECORD_SCHEMA
    from medreason_dist.stages.leads_llm import _screen_prepare, _screen_prompt

    inputs = load_inputs(_config(tmp_path).leads)
    protocols = {"knee_oa_exercise": load_protocol(FIXTURE / "protocol.yaml")}
    table = _screen_prepare(pa.Table.from_pylist(inputs.records, schema=LEADS_RECORD_SCHEMA), protocols, "full_text")
    rows = table.to_pylist()
    assert {r["screen_mode"] for r in rows if r["full_text"]} == {"full_text"}
    assert {r["screen_mode"] for r in rows if not r["full_text"]} == {"title_abstract"}
    build = _screen_prompt(protocols, max_chars=5000)
    with_text = next(r for r in rows if r["full_text"])
    assert "Full text:" in build(with_text)[-1]["content"]
    assert "Abstract:" in build(next(r for r in rows if not r["full_text"] and r["abstract"]))[-1]["content"]
