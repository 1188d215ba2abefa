"""The LEADS HTML report: every section present, data escaped, missing stages say "not run"."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from medreason_dist import storage
from medreason_dist.report.leads import write_leads_report

NAMES = ["leads/protocols", "leads/records", "leads/quarantine", "leads/search", "leads/search_rejects",
         "leads/retrieved", "leads/retrieve_errors", "leads/screening", "leads/screen_rejects", "leads/extraction",
         "leads/extract_rejects", "leads/eval", "leads/eval_items"]
EVIL = "<script>alert(1)</script>"
LABEL = pa.list_(pa.struct([("criterion", pa.string()), ("kind", pa.string()), ("label", pa.string()),
                            ("rationale", pa.string())]))


def _uris(root: Path) -> dict[str, str]:
    return {name: "file://" + str(root / name) for name in NAMES}


def _inputs(uris: dict[str, str]) -> None:
    storage.write_table(uris["leads/protocols"], pa.table({
        "review_id": ["r1", "r2"], "title": [f"Statins {EVIL}", "Aspirin"], "protocol_json": ["{}", "{}"],
        "criteria": [["I1", "I2", "E1"], ["I1", "E1"]], "n_fields": pa.array([3, 2], pa.int32()),
        "source": ["config", "config"], "included_titles": [["A trial"], []]}), stage="leads_inputs")
    storage.write_table(uris["leads/records"], pa.table({
        "review_id": ["r1", "r1", "r1", "r2"], "record_id": ["a", "b", "c", "d"], "title": ["A", "B", "C", "D"],
        "abstract": ["x"] * 4, "label_included": [True, False, None, True], "full_text": ["t", None, None, None]}),
        stage="leads_inputs", extra={"stats": {"records_read": 6, "duplicates_merged": 1, "quarantined": 1,
                                               "records": 4, "full_texts": 1}})
    storage.write_table(uris["leads/quarantine"], pa.table({
        "file": ["f.csv"], "record": ["7"], "reason": ["missing_title"], "detail": ["empty"]}),
        stage="leads_inputs", rejects={"missing_title": 1})


def _later_stages(uris: dict[str, str]) -> None:
    storage.write_table(uris["leads/search"], pa.table({
        "review_id": ["r1"], "pubmed_query": [f'statin[tiab] AND "{EVIL}"'], "ctgov_cond": ["hyperlipidemia"],
        "ctgov_intr": ["statin"], "ctgov_term": [None], "leads_search_input_tokens": [1000],
        "leads_search_output_tokens": [200]}), stage="leads_search",
        tokens={"leads_search_input": 1000, "leads_search_output": 200},
        extra={"wall_s": 12.5, "engine_startups": [{"seconds": 41.0, "ok": True}]})
    storage.write_table(uris["leads/search_rejects"], pa.table({
        "key": ["k2"], "id": ["r2"], "stage": ["leads_search"], "reason": ["unparsable_query"],
        "detail": ["( unclosed"]}),
        stage="leads_search", rejects={"unparsable_query": 1})
    labels = [[{"criterion": "I1", "kind": "inclusion", "label": "YES", "rationale": "r"},
               {"criterion": "I2", "kind": "inclusion", "label": "PARTIAL", "rationale": "r"},
               {"criterion": "E1", "kind": "exclusion", "label": "NO", "rationale": "r"}],
              [{"criterion": "I1", "kind": "inclusion", "label": "NO", "rationale": "r"},
               {"criterion": "I2", "kind": "inclusion", "label": "UNCERTAIN", "rationale": "r"},
               {"criterion": "E1", "kind": "exclusion", "label": "YES", "rationale": "r"}],
              [{"criterion": "I1", "kind": "inclusion", "label": "YES", "rationale": "r"}]]
    storage.write_table(uris["leads/screening"], pa.table({
        "review_id": ["r1", "r1", "r2"], "record_id": ["a", "b", "d"], "pmid": ["1", "2", "4"],
        "title": ["A", "B", "D"], "label_included": [True, False, True], "screen_mode": ["criteria"] * 3,
        "labels": pa.array(labels, LABEL), "score": [0.9, -0.5, 0.4], "predicted_include": [True, False, True],
        "leads_screen_input_tokens": [300, 300, 300], "leads_screen_output_tokens": [50, 50, 50]}),
        stage="leads_screen", tokens={"leads_screen_input": 900, "leads_screen_output": 150})
    storage.write_table(uris["leads/screen_rejects"], pa.table({
        "key": ["k"], "id": ["c"], "stage": ["leads_screen"], "reason": ["invalid_json"], "detail": ["?"]}),
        stage="leads_screen", rejects={"invalid_json": 1})
    rows = [("all", "search", "recall", 0.5, 0.09, 0.91, 1, 2), ("r1", "search", "precision", 1.0, 0.2, 1.0, 1, 1),
            ("all", "screening", "recall", 1.0, 0.34, 1.0, 2, 2),
            ("all", "screening", "recall@10", 1.0, 0.34, 1.0, 2, 2),
            ("all", "screening", "wss@95", 0.28, None, None, None, 2),
            ("all", "screening", "labels.I1.YES", 2.0, None, None, 2, 3)]
    cols = ["review_id", "task", "metric", "value", "ci_low", "ci_high", "hits", "total"]
    table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)})
    storage.write_table(uris["leads/eval"], table.append_column("detail", pa.array([None] * len(rows), pa.string())),
                        stage="leads_eval")


def _report(tmp_path: Path, uris: dict[str, str]) -> str:
    target = "file://" + str(tmp_path / "out" / "report.html")
    assert write_leads_report(uris, target, run_name="demo") == target
    return (tmp_path / "out" / "report.html").read_text(encoding="utf-8")


def _section(text: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}"><h2>[^<]*</h2>(.*?)</section>', text, re.S)
    assert match, f"no section {anchor}"
    return match.group(1)


def test_full_report_sections_charts_and_escaping(tmp_path):
    uris = _uris(tmp_path / "run")
    _inputs(uris)
    _later_stages(uris)
    text = _report(tmp_path, uris)

    for heading in ("Inputs", "Search", "Screening", "Extraction", "Tokens and cost"):
        assert f"<h2>{heading}</h2>" in text
    assert "Label distribution per criterion" in text and "Ranking recall curve" in text
    # Label chart and recall curve are embedded images; nothing is fetched from the network.
    assert len(re.findall(r'<img alt="plot" src="data:image/png;base64,', _section(text, "screening"))) == 2
    assert "http://" not in text and "https://" not in text

    # Data are escaped wherever they land (protocol title, generated query).
    assert "<script>" not in text
    assert "Statins &lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in text

    inputs = _section(text, "inputs")
    assert "duplicates_merged" in inputs and "missing_title" in inputs
    search = _section(text, "search")
    assert "hyperlipidemia" in search and "unparsable_query" in search and "50.0%" in search
    assert "retrieve" not in search.lower()  # retrieve did not run and only shows when it did
    screening = _section(text, "screening")
    for criterion in ("I1", "I2", "E1"):
        assert f"<td>{criterion}</td>" in screening
    assert "recall@10" in screening and "wss@95" in screening and "invalid_json" in screening
    assert "labels.I1.YES" not in screening  # counts are drawn from the labels column, not listed as metrics

    assert _section(text, "extraction").strip() == '<p class="not-run">not run</p>'
    tokens = _section(text, "tokens")
    assert "1,000" in tokens and "12.5" in tokens and "41.0" in tokens and "$" in tokens


def test_extraction_accuracy_and_misses(tmp_path):
    uris = _uris(tmp_path / "run")
    _inputs(uris)
    storage.write_table(uris["leads/extraction"], pa.table({
        "review_id": ["r1"], "record_id": ["a"], "pmid": ["1"], "title": ["A"], "chunks": [2], "chunks_failed": [0],
        "conflicts": [1], "unsupported": [0], "leads_extract_input_tokens": [5000],
        "leads_extract_output_tokens": [700]}), stage="leads_extract",
        tokens={"leads_extract_input": 5000, "leads_extract_output": 700})
    storage.write_table(uris["leads/eval"], pa.table({
        "review_id": ["all", "all"], "task": ["extraction", "extraction"],
        "metric": ["accuracy", "accuracy.sample_size"], "value": [0.75, 0.5], "ci_low": [0.3, 0.1],
        "ci_high": [0.95, 0.9], "hits": [3, 1], "total": [4, 2], "detail": [None, None]}), stage="leads_eval")
    storage.write_table(uris["leads/eval_items"], pa.table({
        "review_id": ["r1", "r1"], "pmid": ["1", "1"], "kind": ["characteristic"] * 2,
        "field": ["sample_size", "duration"], "gold": ["120", "12 weeks"], "predicted": [f"{EVIL}", "12 weeks"],
        "correct": [False, True], "method": ["number", "text"]}), stage="leads_eval")
    text = _report(tmp_path, uris)

    extraction = _section(text, "extraction")
    assert "accuracy.sample_size" in extraction and "75.0%" in extraction and "[30.0, 95.0]" in extraction
    assert "<img" in extraction
    assert "Wrong extractions (1 of 2 compared)" in extraction and "12 weeks" not in extraction
    assert "&lt;script&gt;" in extraction and "<script>" not in text
    assert "5,000" in _section(text, "tokens")


def test_report_with_only_inputs_and_missing_names(tmp_path):
    uris = _uris(tmp_path / "run")
    _inputs(uris)
    del uris["leads/eval"]  # a name the caller did not pass at all reads as "not run" too
    text = _report(tmp_path, uris)

    assert "r1" in _section(text, "inputs") and "Statins" in text
    for anchor in ("search", "screening", "extraction", "tokens"):
        assert _section(text, anchor).strip() == '<p class="not-run">not run</p>'
    assert "could not render" not in text


def test_report_with_nothing_written(tmp_path):
    text = _report(tmp_path, _uris(tmp_path / "empty"))
    assert text.count('<p class="not-run">not run</p>') == 7
    assert "<title>LEADS literature report: demo</title>" in text
