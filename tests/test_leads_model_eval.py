"""The literature-student evaluation's sampling and scoring tables (the engine path is in test_leads_e2e)."""

from __future__ import annotations

import pyarrow as pa

from medreason_dist.stages.leads_model_eval import _metric_rows, held_out_sample


def _rows(n_per_task: int) -> pa.Table:
    rows = []
    for task in ("search", "screening", "arms"):
        for i in range(n_per_task):
            rows.append({"row_id": f"{task}{i}", "task": task, "split": "test" if i % 2 == 0 else "train",
                         "instruction": "x" * (50 if i != 4 else 5000), "response": "{}"})
    return pa.Table.from_pylist(rows)


def test_sample_takes_test_rows_per_task_by_seed_and_counts_long_prompts():
    table = _rows(10)
    picked, note = held_out_sample(table, per_task=3, seed=0, max_prompt_chars=1000)
    assert set(picked.column("split").to_pylist()) == {"test"}
    by_task = {}
    for t in picked.column("task").to_pylist():
        by_task[t] = by_task.get(t, 0) + 1
    assert by_task == {"search": 3, "screening": 3, "arms": 3}
    assert note["too_long"] == {"search": 1, "screening": 1, "arms": 1}  # row 4 of each task
    assert picked.column("key").to_pylist() == picked.column("row_id").to_pylist()
    again, _ = held_out_sample(table, per_task=3, seed=0, max_prompt_chars=1000)
    other, _ = held_out_sample(table, per_task=3, seed=1, max_prompt_chars=1000)
    assert again.column("row_id").to_pylist() == picked.column("row_id").to_pylist()
    assert other.column("row_id").to_pylist() != picked.column("row_id").to_pylist()


def test_metrics_pool_items_and_rows_with_intervals():
    items = [{"task": "arms", "parsed": True, "hits": 2, "total": 2, "correct": True},
             {"task": "arms", "parsed": False, "hits": 0, "total": 3, "correct": False},
             {"task": "screening", "parsed": True, "hits": 0, "total": 1, "correct": False}]
    rows = {(r["task"], r["metric"]): r for r in _metric_rows("base", items)}
    assert (rows["arms", "item_recall"]["hits"], rows["arms", "item_recall"]["total"]) == (2, 5)
    assert (rows["all", "exact"]["hits"], rows["all", "exact"]["total"]) == (1, 3)
    assert rows["all", "parsed"]["value"] == 2 / 3
    assert all(0 <= r["low"] <= r["value"] <= r["high"] <= 1 for r in rows.values())
    assert ("search", "exact") not in rows  # a task without rows gets no line
