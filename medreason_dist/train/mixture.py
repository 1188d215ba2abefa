"""Task-mixture sampling of an instruction dataset (the LEADS literature-mining tasks).

``sample_mixture(table, weights, max_rows, seed)`` picks the training rows of a table whose
``task`` column names each row's task:

* Only tasks with a positive weight are used. Tasks with weight 0 and tasks that appear in the
  table but not in ``weights`` are left out; their row counts are reported under ``excluded``.
* With ``max_rows`` the rows are shared out in proportion to the weights. A task that has fewer
  rows than its share gives all of them, and what it could not fill goes to the remaining tasks,
  again by weight, until no task is short. Fractional shares are rounded by largest remainder.
  With ``max_rows=None`` every row of every weighted task is taken (the weights only decide
  which tasks take part).
* Inside a task, rows are ranked by a hash of ``(seed, row_id)`` and the first ones are taken,
  so the same seed always takes the same rows and another seed usually takes others.
* The output is ordered by a second, independent hash of ``(seed, row_id)`` across all tasks,
  which interleaves the tasks instead of leaving them in blocks (training batches see a mix).
  It must not be the selection hash: the rows a task keeps are its lowest selection hashes, so
  ordering by that hash would put tasks that keep a small fraction of their rows first.

The statistics dict has ``tasks`` (per task: ``available``, ``taken``, ``weight``, where
``weight`` is None for a task that was not weighted), ``excluded`` (rows per left-out task),
``excluded_rows``, ``rows_in``, ``rows_out``, ``max_rows`` and ``seed``.
"""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction
from typing import Any, Mapping

import pyarrow as pa

# The task names of the LEADS instruction dataset; a weight for any other name is a mistake.
LEADS_TASKS = ("search", "screening", "characteristics", "participants", "arms", "results")

NULL_TASK = "<null>"  # how rows with a null task are counted under ``excluded``


def _check_weights(weights: Mapping[str, float], known: tuple[str, ...]) -> dict[str, float]:
    checked: dict[str, float] = {}
    for key, value in weights.items():
        if key not in known:
            raise ValueError(f"mixture weight for unknown task {key!r} (known tasks: {', '.join(known)})")
        try:
            weight = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"mixture weight for task {key!r} is not a number: {value!r}") from None
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"mixture weight for task {key!r} must be a finite number >= 0, got {value!r}")
        checked[key] = weight
    return checked


def allocate(available: Mapping[str, int], weights: Mapping[str, float], max_rows: int | None) -> dict[str, int]:
    """Rows to take per task: weight-proportional shares of ``max_rows``, capped by availability.

    ``available`` and ``weights`` cover the same tasks, all weights > 0. Tasks that cannot fill
    their share give everything they have and the rest is shared again among the others.
    """
    if max_rows is None:
        return dict(available)
    taken = {task: 0 for task in available}
    open_tasks = sorted(t for t in available if available[t] > 0)
    budget = min(max_rows, sum(available[t] for t in open_tasks))
    exact = {t: Fraction(weights[t]) for t in open_tasks}  # exact shares: no float rounding drift
    while open_tasks and budget > 0:
        total_weight = sum(exact[t] for t in open_tasks)
        shares = {t: budget * exact[t] / total_weight for t in open_tasks}
        short = [t for t in open_tasks if available[t] <= shares[t]]
        if short:
            # These tasks are used up; share what is left again among the others.
            for t in short:
                taken[t] = available[t]
                budget -= available[t]
            open_tasks = [t for t in open_tasks if t not in short]
            continue
        # Every open task has more rows than its (fractional) share: round by largest remainder.
        # share < available and available is an integer, so ceil(share) <= available.
        floors = {t: math.floor(shares[t]) for t in open_tasks}
        leftover = budget - sum(floors.values())
        by_remainder = sorted(open_tasks, key=lambda t: (-(shares[t] - floors[t]), -weights[t], t))
        for t in open_tasks:
            taken[t] = floors[t]
        for t in by_remainder[:leftover]:
            taken[t] += 1
        break
    return taken


def _hash_key(seed: int, purpose: str, row_id: Any) -> int:
    digest = hashlib.blake2b(f"{purpose}\x1f{seed}\x1f{row_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def sample_mixture(table: pa.Table, weights: Mapping[str, float], max_rows: int | None,
                   seed: int) -> tuple[pa.Table, dict]:
    """The rows of ``table`` a weighted task mixture takes, interleaved; and statistics.

    Raises ValueError for a weight whose key is not a LEADS task name or whose value is
    negative (or not a finite number), for a negative ``max_rows`` and for a table without
    a ``task`` column. Rows are identified by ``row_id`` when the table has that column, else
    by their position.
    """
    if "task" not in table.column_names:
        raise ValueError(f"mixture sampling needs a 'task' column (table has {table.column_names})")
    if max_rows is not None and max_rows < 0:
        raise ValueError(f"max_rows must be >= 0 or None, got {max_rows}")
    checked = _check_weights(weights, LEADS_TASKS)
    active = {t: w for t, w in checked.items() if w > 0}

    tasks = table["task"].to_pylist()
    ids = table["row_id"].to_pylist() if "row_id" in table.column_names else list(range(table.num_rows))
    rows_of: dict[str, list[int]] = {}
    excluded: dict[str, int] = {}
    for i, task in enumerate(tasks):
        if task in active:
            rows_of.setdefault(task, []).append(i)
        else:
            name = NULL_TASK if task is None else str(task)
            excluded[name] = excluded.get(name, 0) + 1

    available = {t: len(rows_of.get(t, [])) for t in active}
    quota = allocate(available, active, max_rows)

    chosen: list[int] = []
    for task, members in rows_of.items():
        pick = {i: _hash_key(seed, "pick", ids[i]) for i in members}
        members.sort(key=lambda i: (pick[i], i))  # the row position breaks (unlikely) ties
        chosen.extend(members[:quota[task]])
    order = {i: _hash_key(seed, "order", ids[i]) for i in chosen}
    chosen.sort(key=lambda i: (order[i], i))
    sampled = table.take(pa.array(chosen, type=pa.int64()))

    task_stats: dict[str, dict] = {}
    for task in sorted(set(checked) | (set(excluded) - {NULL_TASK})):
        if task in active:
            task_stats[task] = {"available": available[task], "taken": quota[task], "weight": active[task]}
        else:
            task_stats[task] = {"available": excluded.get(task, 0), "taken": 0, "weight": checked.get(task)}
    stats = {
        "tasks": task_stats,
        "excluded": dict(sorted(excluded.items())),
        "excluded_rows": sum(excluded.values()),
        "rows_in": table.num_rows,
        "rows_out": sampled.num_rows,
        "max_rows": max_rows,
        "seed": seed,
    }
    return sampled, stats
