"""Seeded choice of which shortest paths to keep, as ranks in ``[0, n_paths)``.

The path engine numbers the shortest paths of a pair ``0 .. n-1`` without listing them (see
``paths/assemble.py``). Keeping every path means ranks ``0 .. n-1``; above the cap we keep a uniform
sample of exactly ``max_paths`` distinct ranks. The sample depends only on
``(seed, pair_id, n, max_paths)`` — never on partitioning, executor count or run order — so a
re-run, or a run on another cluster, keeps the same paths.

Pure numpy: importable without Spark; Spark calls :func:`ranks_batch` through ``mapInArrow``.
"""

from __future__ import annotations

import hashlib
from typing import Iterator

import numpy as np
import pyarrow as pa

RANKS_SCHEMA = pa.schema(
    [
        pa.field("pair_id", pa.string()),
        pa.field("pid", pa.int64()),
        pa.field("j", pa.int32()),  # position of the kept path among the pair's kept paths
        pa.field("rank", pa.int64()),
    ]
)


def pair_generator(seed: int, pair_id: str) -> np.random.Generator:
    """A random generator owned by one pair: stable across processes and numpy builds."""
    digest = hashlib.blake2b(f"{int(seed)}\x1f{pair_id}".encode(), digest_size=16).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest, "little")))


def choose_ranks(seed: int, pair_id: str, n_paths: int, max_paths: int) -> np.ndarray:
    """Sorted ranks to keep: all of ``range(n_paths)`` up to the cap, else a seeded sample."""
    if n_paths <= max_paths:
        return np.arange(n_paths, dtype=np.int64)
    picked = pair_generator(seed, pair_id).choice(n_paths, size=max_paths, replace=False, shuffle=False)
    return np.sort(np.asarray(picked, dtype=np.int64))


def ranks_batch(batches: Iterator[pa.RecordBatch], seed: int, max_paths: int) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: rows ``(pair_id, pid, n_paths)`` -> rows of :data:`RANKS_SCHEMA`."""
    for batch in batches:
        pair_ids = batch.column("pair_id").to_pylist()
        pids = batch.column("pid").to_numpy(zero_copy_only=False)
        totals = batch.column("n_paths").to_numpy(zero_copy_only=False)
        out_ids: list[str] = []
        out_pid: list[np.ndarray] = []
        out_j: list[np.ndarray] = []
        out_rank: list[np.ndarray] = []
        for pair_id, pid, total in zip(pair_ids, pids, totals):
            ranks = choose_ranks(seed, pair_id, int(total), max_paths)
            out_ids.extend([pair_id] * len(ranks))
            out_pid.append(np.full(len(ranks), pid, dtype=np.int64))
            out_j.append(np.arange(len(ranks), dtype=np.int32))
            out_rank.append(ranks)
        if not out_ids:
            continue
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(out_ids, pa.string()),
                pa.array(np.concatenate(out_pid)),
                pa.array(np.concatenate(out_j)),
                pa.array(np.concatenate(out_rank)),
            ],
            schema=RANKS_SCHEMA,
        )
