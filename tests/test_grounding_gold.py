"""Grounding gold set (medreason_dist/data/demo/grounding_gold.jsonl) against the demo KG."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "medreason_dist" / "data" / "demo"
GOLD = DEMO / "grounding_gold.jsonl"
SCRIPT = DEMO / "build_grounding_gold.py"
QA = DEMO / "qa_sample.jsonl"
KG = REPO / "medreason_dist" / "data" / "demo_kg" / "kg.csv"

ROW_KEYS = {"set", "question", "options", "answer_idx", "answer", "phrasing", "gold", "path"}
ITEM_KEYS = {"surface", "node_id", "node_name"}


@pytest.fixture(scope="module")
def kg():
    graph = nx.Graph()
    names = {}
    with open(KG, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            x, y = int(row["x_index"]), int(row["y_index"])
            names[x], names[y] = row["x_name"], row["y_name"]
            graph.add_edge(x, y)
    return graph, names


@pytest.fixture(scope="module")
def rows():
    with open(GOLD, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def valid_demo_questions():
    out = []
    for line in QA.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("options"), dict) and row.get("answer_idx") in row["options"]:
            out.append(row)
    return out


def test_row_shape_and_answers(rows):
    for r in rows:
        assert set(r) == ROW_KEYS, r["question"][:60]
        assert r["set"] in ("new", "demo")
        assert r["phrasing"] in ("kg_names", "synonym", "lay")
        assert set(r["gold"]) == {"question", "answer"}
        assert r["answer_idx"] in r["options"]
        assert r["answer"] == r["options"][r["answer_idx"]]
        assert r["gold"]["answer"], r["question"][:60]
        for role in ("question", "answer"):
            for item in r["gold"][role]:
                assert set(item) == ITEM_KEYS


def test_new_rows_count_and_phrasing(rows):
    new = [r for r in rows if r["set"] == "new"]
    assert len(new) >= 45
    assert all(len(r["options"]) == 4 for r in new)
    other = sum(r["phrasing"] in ("synonym", "lay") for r in new)
    assert other >= 0.3 * len(new)


def test_demo_rows_are_the_valid_sample_rows(rows):
    demo = [r for r in rows if r["set"] == "demo"]
    sample = valid_demo_questions()
    assert [r["question"] for r in demo] == [s["question"] for s in sample]
    for r, s in zip(demo, sample):
        assert r["options"] == s["options"] and r["answer_idx"] == s["answer_idx"]
    new_questions = {r["question"] for r in rows if r["set"] == "new"}
    assert not new_questions & {s["question"] for s in sample}
    assert len({r["question"] for r in rows}) == len(rows)


def test_surfaces_and_nodes(rows, kg):
    _, names = kg
    for r in rows:
        texts = {"question": r["question"], "answer": r["answer"]}
        for role, text in texts.items():
            ids = [item["node_id"] for item in r["gold"][role]]
            assert len(ids) == len(set(ids)), (r["question"][:60], role)
            for item in r["gold"][role]:
                assert item["surface"] and item["surface"] in text, (r["question"][:60], item)
                assert item["node_id"] in names, item
                assert names[item["node_id"]] == item["node_name"], item


def test_paths(rows, kg):
    graph, _ = kg
    for r in rows:
        path = r["path"]
        if r["set"] == "demo" and not path:
            continue
        where = r["question"][:60]
        assert path, where
        assert path[0] in {i["node_id"] for i in r["gold"]["question"]}, where
        assert path[-1] in {i["node_id"] for i in r["gold"]["answer"]}, where
        assert all(graph.has_edge(u, v) for u, v in zip(path, path[1:])), where
        assert len(path) - 1 == nx.shortest_path_length(graph, path[0], path[-1]), where
        assert 1 <= len(path) - 1 <= 3, where


def test_build_script_reproduces_file(tmp_path):
    out = tmp_path / "gold.jsonl"
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], check=True, capture_output=True, timeout=60)
    assert out.read_bytes() == GOLD.read_bytes()
