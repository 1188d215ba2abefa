"""The HTML run report: collected from manifests, self-contained, every section present."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from medreason_dist import storage
from medreason_dist.eval.score import score_predictions, write_results
from medreason_dist.report.html import build_report, collect_run_summary, write_report

SECTION_IDS = ["funnel", "paths", "grounding", "citations", "tokens", "decontamination", "sft", "eval"]
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or "")
                 if p and Path(p).exists()), None)


def _fake_run(root: Path) -> str:
    out = str(root / "run")
    j = lambda rel: storage.join(out, rel)
    storage.write_table(j("sources/qa"), pa.table({"id": [f"q{i}" for i in range(100)]}), stage="sources",
                        rejects={"duplicate": 7, "missing_answer": 3})
    storage.write_table(j("sources/quarantine"), pa.table({"reason": ["duplicate"] * 7 + ["missing_answer"] * 3}),
                        stage="sources.quarantine", rejects={"duplicate": 7, "missing_answer": 3})
    storage.write_table(j("reason/extract"), pa.table({"id": [f"q{i}" for i in range(95)]}), stage="extract",
                        rejects={"invalid_json": 5}, tokens={"input_tokens": 40_000, "output_tokens": 9_000})
    storage.write_table(j("reason/link"), pa.table({"id": [f"q{i}" for i in range(95)]}), stage="link",
                        extra={"grounding": "hybrid", "methods.dictionary": 150, "methods.embedding": 20,
                               "methods.llm_none": 5, "dictionary_generic_skipped": 7, "gold.questions": 10,
                               "gold.tp": 18, "gold.fp": 2, "gold.fn": 4, "gold.tp.dictionary": 16,
                               "gold.fp.dictionary": 1, "gold.tp.llm": 2, "gold.fp.llm": 1})
    storage.write_table(j("reason/prune"), pa.table({"id": [f"q{i}" for i in range(90)],
                                                     "n_kept_paths": [2] * 63 + [0] * 27}), stage="prune")
    storage.write_table(j("reason/paths"), pa.table({"pair_id": ["p"] * 9, "hops": [1, 2, 2, 2, 3, 3, 3, 3, None]}),
                        stage="paths")
    storage.write_table(j("reason/generate"), pa.table({"id": [f"q{i}" for i in range(80)]}), stage="generate",
                        rejects={"no_path": 15}, tokens={"input_tokens": 200_000, "output_tokens": 90_000},
                        extra={"cost_usd": 1.25})
    sft = pa.table({"id": [f"q{i}" for i in range(60)],
                    "paths_used": [["a -[x]-> b"]] * 45 + [[]] * 10 + [None] * 5})
    storage.write_table(j("reason/sft"), sft, stage="verify", rejects={"answer_mismatch": 20})
    storage.write_table(j("train/sft_clean"), pa.table({"id": [f"q{i}" for i in range(58)]}), stage="decontaminate",
                        rejects={"eval_contamination": 2},
                        extra={"decontamination": {"n": 13, "min_shared": 1, "train_rows": 60, "rejected_rows": 2,
                                                   "rejects_by_kind": {"exact+ngram": 2},
                                                   "per_eval_source": {"medqa_test": {
                                                       "eval_rows": 1273, "train_rows_overlapping_before": 2,
                                                       "eval_items_hit_before": 2,
                                                       "train_rows_overlapping_after": 0}}}})
    storage.write_table(j("train/loss"), pa.table({"step": list(range(1, 31)),
                                                   "loss": [2.5 * 0.95 ** s for s in range(30)]}), stage="sft")
    preds = [{"id": f"e{i}", "source": b, "model": m, "answer_idx": "A", "options": {"A": "x", "B": "y"},
              "output": "The answer is A." if i % (3 if m == "base" else 6) else "The answer is B."}
             for m in ("base", "tuned") for b in ("medqa_test", "medbullets_op4") for i in range(30)]
    write_results(j("eval/results"), j("eval/items"), score_predictions(preds))
    # An attempt that never committed is ignored.
    (root / "run" / "reason" / "prune" / ".attempts" / "x").mkdir(parents=True)
    return out


def _images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def test_report_from_a_run_is_self_contained_with_all_sections(tmp_path):
    out = _fake_run(tmp_path)
    summary = collect_run_summary(out)
    assert [s.label for s in summary.stages] == ["sources", "extract", "link", "paths", "prune", "generate",
                                                 "verify", "decontaminate", "sft", "eval"]
    g = summary.grounding
    assert (g.mode, g.links_by_method["dictionary"], g.questions_with_path, g.gold["tp"]) == ("hybrid", 150, 63, 18)
    assert summary.path_hops == {1: 1, 2: 3, 3: 4}
    assert (summary.citations.with_path, summary.citations.total) == (45, 60)
    assert summary.sft_loss[0] == (1, 2.5) and len(summary.sft_loss) == 30
    assert {r["model"] for r in summary.eval_summary} == {"base", "tuned"}

    path = build_report(summary, tmp_path / "report" / "index.html")
    text = path.read_text()
    for anchor in SECTION_IDS:
        assert f'id="{anchor}"' in text
    assert "not run" not in text
    # No external assets: nothing is fetched over the network.
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', text, re.IGNORECASE)
    assert "<script" not in text and "@import" not in text
    images = _images(text)
    assert len(images) >= 6 and all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    assert "75.0%" in text  # 45 of 60 reasonings cite a path
    assert "90.0% [" in text and "70.0% [" in text  # link precision 18/20, questions with a path 63/90
    assert "$1.2500" in text  # the generate stage's own cost
    assert "$0.0114" in text  # extract: 40k in at 0.15/M + 9k out at 0.60/M
    assert "medqa_test" in text and "95% CI" in text
    # The storage-level writer produces the same document under the run root.
    uri = write_report(out)
    assert uri.endswith("/run/report/index.html")
    stored = storage.read_bytes(uri).decode()
    assert all(f'id="{a}"' in stored for a in SECTION_IDS)


def test_missing_data_shows_not_run(tmp_path):
    summary = collect_run_summary(str(tmp_path / "empty_run"))
    assert summary.stages == [] and summary.eval_summary is None
    text = build_report(summary, tmp_path / "r.html").read_text()
    assert text.count("not run") == len(SECTION_IDS)
    # A plain dict is accepted too, with only some sections filled.
    partial = build_report({"run_name": "partial", "sft_loss": [[1, 2.0], [2, 1.5]]}, tmp_path / "p.html").read_text()
    assert partial.count("not run") == len(SECTION_IDS) - 1 and len(_images(partial)) == 1


@pytest.mark.skipif(CHROMIUM is None, reason="headless chromium is not installed (/usr/bin/chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    path = build_report(collect_run_summary(_fake_run(tmp_path)), tmp_path / "index.html")
    png = tmp_path / "report.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={png}",
                    "--window-size=1100,4000", path.as_uri()], check=True, timeout=120,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert png.read_bytes().startswith(b"\x89PNG")
