"""Synthetic PrimeKG-shaped graphs: schema, type mix, heavy tails, determinism, kg.csv, pairs."""

from __future__ import annotations

import re
import time
from collections import Counter

import numpy as np
import pyarrow.csv as pacsv
import pytest

from medreason_dist.kg.schema import EDGES_SCHEMA, KG_COLUMNS, NODES_SCHEMA, NODE_TYPES
from medreason_dist.kg.synthetic import (
    FULL_EDGES,
    FULL_NODES,
    RELATION_MIX,
    TYPE_COUNTS,
    generate_kg,
    sample_pairs,
    to_primekg_table,
    write_primekg_csv,
)


@pytest.fixture(scope="module")
def kg():
    return generate_kg(0.05, seed=11)


def _degrees(kg):
    n = kg.nodes.num_rows
    return np.bincount(kg.edges.column("src").to_numpy(), minlength=n) + np.bincount(
        kg.edges.column("dst").to_numpy(), minlength=n
    )


def test_schema_and_edge_invariants(kg):
    assert kg.nodes.schema.equals(NODES_SCHEMA)
    assert kg.edges.schema.equals(EDGES_SCHEMA)
    src = kg.edges.column("src").to_numpy()
    dst = kg.edges.column("dst").to_numpy()
    assert (src < dst).all()  # one row per undirected edge, no self-loops
    keys = set(zip(src.tolist(), dst.tolist(), kg.edges.column("relation").to_pylist()))
    assert len(keys) == kg.edges.num_rows  # no duplicate (edge, relation)
    assert kg.nodes.column("node_id").to_pylist() == list(range(kg.nodes.num_rows))
    assert set(kg.nodes.column("type").to_pylist()) == set(NODE_TYPES)
    assert kg.nodes.column("name_norm").to_pylist()[:3] == [n.lower() for n in kg.nodes.column("name").to_pylist()[:3]]


def test_relations_join_the_right_types(kg):
    types = kg.nodes.column("type").to_numpy(zero_copy_only=False)
    src = kg.edges.column("src").to_numpy()
    dst = kg.edges.column("dst").to_numpy()
    rel = np.asarray(kg.edges.column("relation").to_pylist())
    for relation, (x_type, y_type, _) in RELATION_MIX.items():
        mask = rel == relation
        if not mask.any():
            continue
        pairs = {tuple(sorted(p)) for p in zip(types[src[mask]], types[dst[mask]])}
        assert pairs == {tuple(sorted((x_type, y_type)))}, relation


def test_type_mix_and_heavy_tail(kg):
    counts = Counter(kg.nodes.column("type").to_pylist())
    for t, full in TYPE_COUNTS.items():
        assert counts[t] == pytest.approx(full * 0.05, rel=0.02, abs=2)
    deg = _degrees(kg)
    # PrimeKG's mean degree, less what the density cap takes from drug_drug on a 5% graph.
    full_mean = 2 * FULL_EDGES / FULL_NODES
    assert 0.6 * full_mean < deg.mean() <= 1.01 * full_mean
    assert deg.max() > 30 * np.median(deg)  # hubs: far above the typical node
    top = np.sort(deg)[::-1]
    assert top[: len(top) // 100].sum() > 0.10 * deg.sum()  # 1% of nodes hold >10% of edge ends


def test_deterministic_by_seed():
    a, b, c = generate_kg(0.01, seed=5), generate_kg(0.01, seed=5), generate_kg(0.01, seed=6)
    assert a.edges.equals(b.edges) and a.nodes.equals(b.nodes)
    assert not a.edges.equals(c.edges)
    pa_, pb = sample_pairs(a, 50, seed=1), sample_pairs(a, 50, seed=1)
    assert pa_.equals(pb)


def test_pairs_look_like_medreason(kg):
    pairs = sample_pairs(kg, 200, seed=3)
    ids = pairs.column("pair_id").to_pylist()
    assert len(set(ids)) == len(ids)
    per_question = Counter(re.match(r"(q\d+)-", p).group(1) for p in ids)
    assert len(per_question) == 200
    assert set(per_question.values()) <= {q * a for q in range(2, 5) for a in range(1, 4)}
    n = kg.nodes.num_rows
    for col in ("src", "dst"):
        v = pairs.column(col).to_numpy()
        assert v.min() >= 0 and v.max() < n
    types = Counter(kg.nodes.column("type").to_numpy(zero_copy_only=False)[pairs.column("src").to_numpy()])
    assert types["disease"] + types["drug"] > len(ids) / 3  # clinical entities dominate


def test_primekg_csv_roundtrip(kg, tmp_path):
    small = generate_kg(0.005, seed=2)
    path = tmp_path / "kg.csv"
    rows = write_primekg_csv(small, str(path))
    assert rows == 2 * small.edges.num_rows
    table = pacsv.read_csv(path)
    assert tuple(table.column_names) == KG_COLUMNS
    x = table.column("x_index").to_numpy()
    y = table.column("y_index").to_numpy()
    assert sorted(zip(x.tolist(), y.tolist())) == sorted(zip(y.tolist(), x.tolist()))  # both directions
    names = dict(zip(small.nodes.column("node_id").to_pylist(), small.nodes.column("name").to_pylist()))
    first = table.slice(0, 1).to_pylist()[0]
    assert first["x_name"] == names[first["x_index"]] and first["y_name"] == names[first["y_index"]]
    assert to_primekg_table(small).num_rows == rows


@pytest.mark.slow
def test_full_scale_in_well_under_a_minute():
    t = time.perf_counter()
    full = generate_kg(1.0, seed=0)
    elapsed = time.perf_counter() - t
    assert full.nodes.num_rows == FULL_NODES
    assert full.edges.num_rows == pytest.approx(FULL_EDGES, rel=0.001)
    assert elapsed < 60, elapsed
