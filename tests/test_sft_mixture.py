"""Task-mixture sampling: weighted shares, redistribution, exclusions, seeding, errors."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from medreason_dist.train.mixture import allocate, sample_mixture


def _table(counts: dict[str, int]) -> pa.Table:
    rows = [{"row_id": f"{task}-{i}", "task": task, "response": "{}"}
            for task, n in counts.items() for i in range(n)]
    return pa.Table.from_pylist(rows)


def _taken(table: pa.Table) -> Counter:
    return Counter(table["task"].to_pylist())


def test_shares_follow_the_weights():
    table = _table({"screening": 100, "arms": 100, "results": 100})
    out, stats = sample_mixture(table, {"screening": 2, "arms": 1, "results": 1}, 40, seed=0)
    assert _taken(out) == {"screening": 20, "arms": 10, "results": 10}
    assert stats["tasks"]["screening"] == {"available": 100, "taken": 20, "weight": 2.0}
    assert stats["rows_out"] == out.num_rows == 40 and stats["rows_in"] == 300
    assert out.column_names == table.column_names
    # fractional shares are rounded so that exactly max_rows rows come out
    out, _ = sample_mixture(table, {"screening": 1, "arms": 1, "results": 1}, 10, seed=0)
    assert out.num_rows == 10 and sorted(_taken(out).values()) == [3, 3, 4]


def test_a_short_task_gives_all_it_has_and_the_rest_is_redistributed_by_weight():
    table = _table({"search": 3, "screening": 100, "arms": 100, "results": 5})
    out, stats = sample_mixture(table, {"search": 1, "screening": 2, "arms": 1, "results": 1}, 40, seed=3)
    # shares 8/16/8/8: search (3) and results (5) fall short and give everything; the other 32
    # go to screening/arms by 2:1 (21.33/10.67), and the largest remainder rounds arms up
    assert _taken(out) == {"search": 3, "results": 5, "screening": 21, "arms": 11}
    assert out.num_rows == 40
    assert {t: s["taken"] for t, s in stats["tasks"].items()} == {"search": 3, "results": 5, "screening": 21,
                                                                  "arms": 11}
    # more rows asked for than exist: everything of every weighted task
    out, _ = sample_mixture(table, {"search": 1, "screening": 2, "arms": 1, "results": 1}, 10_000, seed=3)
    assert out.num_rows == 208
    assert allocate({"a": 10, "b": 2, "c": 3}, {"a": 1, "b": 1, "c": 1}, 100) == {"a": 10, "b": 2, "c": 3}
    # a cascade: c's shortfall (10 -> 2) lifts b's share to 14, and b (12) then falls short as well
    assert allocate({"a": 100, "b": 12, "c": 2}, {"a": 1, "b": 1, "c": 1}, 30) == {"a": 16, "b": 12, "c": 2}


def test_excluded_tasks_are_counted_and_none_takes_every_weighted_row():
    table = _table({"search": 4, "screening": 6, "arms": 5, "participants": 2})
    out, stats = sample_mixture(table, {"screening": 1, "arms": 3, "search": 0, "results": 1}, None, seed=0)
    assert _taken(out) == {"screening": 6, "arms": 5}  # weights only choose the tasks here
    assert stats["excluded"] == {"search": 4, "participants": 2} and stats["excluded_rows"] == 6
    assert stats["tasks"]["participants"] == {"available": 2, "taken": 0, "weight": None}
    assert stats["tasks"]["search"] == {"available": 4, "taken": 0, "weight": 0.0}
    assert stats["tasks"]["results"] == {"available": 0, "taken": 0, "weight": 1.0}  # weighted but absent
    empty, _ = sample_mixture(table, {"screening": 1}, 0, seed=0)
    assert empty.num_rows == 0 and empty.schema == table.schema


def test_the_same_seed_takes_the_same_rows_in_the_same_interleaved_order():
    table = _table({"screening": 200, "arms": 200, "results": 200})
    weights = {"screening": 1, "arms": 1, "results": 2}
    first, stats_a = sample_mixture(table, weights, 60, seed=7)
    again, stats_b = sample_mixture(table, weights, 60, seed=7)
    assert first.equals(again) and stats_a == stats_b
    # the input order does not matter, only the seed and the row ids
    shuffled = table.take(pa.array(list(range(table.num_rows))[::-1]))
    assert sample_mixture(shuffled, weights, 60, seed=7)[0].equals(first)
    # the tasks are interleaved, not in blocks: many task changes along the output
    tasks = first["task"].to_pylist()
    changes = sum(a != b for a, b in zip(tasks, tasks[1:]))
    assert changes >= 25, tasks
    # each task's rows are spread over the whole output, not bunched at one end
    for task in weights:
        positions = [i for i, t in enumerate(tasks) if t == task]
        assert positions[0] < 20 and positions[-1] >= 40, (task, positions)


def test_another_seed_takes_other_rows():
    table = _table({"screening": 200, "arms": 200})
    a, _ = sample_mixture(table, {"screening": 1, "arms": 1}, 40, seed=1)
    b, _ = sample_mixture(table, {"screening": 1, "arms": 1}, 40, seed=2)
    assert _taken(a) == _taken(b) == {"screening": 20, "arms": 20}
    assert set(a["row_id"].to_pylist()) != set(b["row_id"].to_pylist())
    # every-row sampling is the same set in another order
    c, _ = sample_mixture(table, {"screening": 1, "arms": 1}, None, seed=1)
    d, _ = sample_mixture(table, {"screening": 1, "arms": 1}, None, seed=2)
    assert sorted(c["row_id"].to_pylist()) == sorted(d["row_id"].to_pylist())
    assert c["row_id"].to_pylist() != d["row_id"].to_pylist()


def test_bad_weights_and_tables_raise_naming_the_problem():
    table = _table({"screening": 3})
    with pytest.raises(ValueError, match="'screenig'"):
        sample_mixture(table, {"screenig": 1.0}, 10, seed=0)
    with pytest.raises(ValueError, match="'arms'"):
        sample_mixture(table, {"screening": 1.0, "arms": -0.5}, 10, seed=0)
    with pytest.raises(ValueError, match="'arms'"):
        sample_mixture(table, {"arms": float("nan")}, 10, seed=0)
    with pytest.raises(ValueError, match="max_rows"):
        sample_mixture(table, {"screening": 1.0}, -1, seed=0)
    with pytest.raises(ValueError, match="task"):
        sample_mixture(table.drop_columns(["task"]), {"screening": 1.0}, 10, seed=0)
