"""Accuracy with 95% confidence intervals, per model and benchmark, as an Arrow table."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pyarrow as pa

Z95 = 1.959963984540054  # two-sided 95% normal quantile

SUMMARY_SCHEMA = pa.schema([
    pa.field("model", pa.string()),
    pa.field("benchmark", pa.string()),
    pa.field("n", pa.int64()),
    pa.field("correct", pa.int64()),
    pa.field("accuracy", pa.float64()),
    pa.field("ci_low", pa.float64()),
    pa.field("ci_high", pa.float64()),
    pa.field("unparsed", pa.int64()),
    pa.field("ci_method", pa.string()),
])

ALL_BENCHMARKS = "all"


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) for n == 0.

    Unlike the normal (Wald) interval it stays inside [0, 1] and keeps its coverage for
    accuracies near 0 or 1 and for the small n of some benchmarks.
    """
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= correct <= n:
        raise ValueError(f"correct={correct} outside [0, n={n}]")
    p = correct / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == n else min(1.0, centre + half)
    return low, high


def bootstrap_interval(outcomes: Iterable[bool | int], n_boot: int = 2000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of 0/1 outcomes (seeded, vectorised)."""
    arr = np.asarray(list(outcomes), dtype=np.float64)
    if arr.size == 0:
        return 0.0, 1.0
    rng = np.random.default_rng(seed)
    # Resampling n Bernoulli outcomes = drawing the number correct from Binomial(n, p_hat).
    means = rng.binomial(arr.size, arr.mean(), size=n_boot) / arr.size
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def summarize(per_item: pa.Table, *, method: str = "wilson", include_all: bool = True,
              n_boot: int = 2000, seed: int = 0) -> pa.Table:
    """Per (model, benchmark) accuracy table from a per-item table (model, benchmark, correct, parsed).

    Unparsed items count as wrong and are also reported in ``unparsed``. With ``include_all``
    each model gets a pooled row with benchmark ``"all"``.
    """
    if method not in ("wilson", "bootstrap"):
        raise ValueError(f"unknown interval method {method!r}")
    models = per_item.column("model").to_pylist()
    benches = per_item.column("benchmark").to_pylist()
    correct = per_item.column("correct").to_pylist()
    parsed = per_item.column("parsed").to_pylist()
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (m, b) in enumerate(zip(models, benches)):
        groups.setdefault((m, b), []).append(i)
        if include_all:
            groups.setdefault((m, ALL_BENCHMARKS), []).append(i)
    rows = []
    for (model, bench), idx in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] == ALL_BENCHMARKS, kv[0][1])):
        outcomes = [bool(correct[i]) for i in idx]
        k, n = sum(outcomes), len(outcomes)
        lo, hi = wilson_interval(k, n) if method == "wilson" else bootstrap_interval(outcomes, n_boot, seed)
        rows.append({"model": model, "benchmark": bench, "n": n, "correct": k, "accuracy": k / n if n else 0.0,
                     "ci_low": lo, "ci_high": hi, "unparsed": sum(1 for i in idx if not parsed[i]),
                     "ci_method": method})
    return pa.Table.from_pylist(rows, schema=SUMMARY_SCHEMA)


def side_by_side(summary: pa.Table) -> pa.Table:
    """One row per benchmark, one "acc [lo, hi] (n)" column per model: the report's table."""
    rows = summary.to_pylist()
    models = sorted({r["model"] for r in rows})
    benches = sorted({r["benchmark"] for r in rows}, key=lambda b: (b == ALL_BENCHMARKS, b))
    cell = {(r["model"], r["benchmark"]): r for r in rows}
    out = {"benchmark": benches}
    for m in models:
        col = []
        for b in benches:
            r = cell.get((m, b))
            col.append(None if r is None else
                       f"{100 * r['accuracy']:.1f} [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}] (n={r['n']}, unparsed={r['unparsed']})")
        out[m] = col
    return pa.table(out)
