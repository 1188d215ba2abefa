"""Synthetic PrimeKG-shaped knowledge graphs, for tests and benchmarks.

Same schemas as ingest's ``nodes`` and ``edges`` datasets (:mod:`medreason_dist.kg.schema`),
PrimeKG's ten node types in PrimeKG's proportions, its 30 relations between the same type pairs
in its proportions, and heavy-tailed degrees: every node draws a Pareto "popularity" that it
keeps across relations (a gene that is a hub in protein-protein edges is popular elsewhere too),
and edge endpoints are drawn proportionally to it. Deterministic by seed; numpy-vectorised, so
the full size (129,375 nodes, ~4.05M undirected edges) takes seconds.

Names are synthetic (``drug 17``); nothing here is medical knowledge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from medreason_dist.kg.schema import EDGES_SCHEMA, KG_COLUMNS, NODES_SCHEMA, RELATIONS, TYPE_SOURCES, normalize_names

FULL_NODES = 129_375
FULL_EDGES = 4_050_249

# Node counts per type in PrimeKG (they sum to FULL_NODES).
TYPE_COUNTS: dict[str, int] = {
    "gene/protein": 27_671,
    "drug": 7_957,
    "disease": 17_080,
    "effect/phenotype": 15_311,
    "anatomy": 14_035,
    "biological_process": 28_642,
    "molecular_function": 11_169,
    "cellular_component": 4_176,
    "pathway": 2_516,
    "exposure": 818,
}

# relation -> (x type, y type, approximate undirected edge count in PrimeKG).
RELATION_MIX: dict[str, tuple[str, str, int]] = {
    "anatomy_protein_present": ("anatomy", "gene/protein", 1_518_203),
    "drug_drug": ("drug", "drug", 1_336_314),
    "protein_protein": ("gene/protein", "gene/protein", 321_075),
    "disease_phenotype_positive": ("disease", "effect/phenotype", 150_317),
    "bioprocess_protein": ("biological_process", "gene/protein", 144_805),
    "cellcomp_protein": ("cellular_component", "gene/protein", 83_402),
    "disease_protein": ("disease", "gene/protein", 80_411),
    "molfunc_protein": ("molecular_function", "gene/protein", 69_530),
    "drug_effect": ("drug", "effect/phenotype", 64_784),
    "bioprocess_bioprocess": ("biological_process", "biological_process", 52_886),
    "pathway_protein": ("pathway", "gene/protein", 42_646),
    "disease_disease": ("disease", "disease", 32_194),
    "contraindication": ("drug", "disease", 30_675),
    "drug_protein": ("drug", "gene/protein", 25_653),
    "anatomy_protein_absent": ("anatomy", "gene/protein", 19_887),
    "phenotype_phenotype": ("effect/phenotype", "effect/phenotype", 18_736),
    "anatomy_anatomy": ("anatomy", "anatomy", 14_032),
    "molfunc_molfunc": ("molecular_function", "molecular_function", 13_574),
    "indication": ("drug", "disease", 9_388),
    "cellcomp_cellcomp": ("cellular_component", "cellular_component", 4_845),
    "phenotype_protein": ("effect/phenotype", "gene/protein", 3_330),
    "off-label use": ("drug", "disease", 2_568),
    "pathway_pathway": ("pathway", "pathway", 2_535),
    "exposure_disease": ("exposure", "disease", 2_304),
    "exposure_exposure": ("exposure", "exposure", 2_070),
    "exposure_bioprocess": ("exposure", "biological_process", 1_625),
    "exposure_protein": ("exposure", "gene/protein", 1_212),
    "disease_phenotype_negative": ("disease", "effect/phenotype", 1_193),
    "exposure_molfunc": ("exposure", "molecular_function", 45),
    "exposure_cellcomp": ("exposure", "cellular_component", 10),
}

# Entity types that MedReason's question/answer entity linking mostly hits.
QA_TYPE_WEIGHTS: dict[str, float] = {
    "disease": 0.35,
    "drug": 0.25,
    "effect/phenotype": 0.2,
    "gene/protein": 0.1,
    "anatomy": 0.07,
    "biological_process": 0.03,
}

_NAME_PREFIX = {
    "gene/protein": "gene",
    "drug": "drug",
    "disease": "disease",
    "effect/phenotype": "phenotype",
    "anatomy": "anatomy",
    "biological_process": "process",
    "molecular_function": "function",
    "cellular_component": "component",
    "pathway": "pathway",
    "exposure": "exposure",
}

# A relation never fills more than this share of the possible node pairs (matters at small scale).
_MAX_DENSITY = 0.25


@dataclass(frozen=True)
class SyntheticKG:
    nodes: pa.Table  # NODES_SCHEMA
    edges: pa.Table  # EDGES_SCHEMA, src <= dst, each undirected edge once


def _scaled_type_counts(scale: float) -> dict[str, int]:
    return {t: max(3, int(round(c * scale))) for t, c in TYPE_COUNTS.items()}


def generate_kg(scale: float = 1.0, *, seed: int = 0, tail: float = 1.3) -> SyntheticKG:
    """A PrimeKG-shaped graph with ``round(129,375 * scale)`` nodes (about).

    ``tail`` is the Pareto shape of node popularity: smaller means heavier tails (bigger hubs).
    Edge counts scale with the node count, so the mean degree stays PrimeKG's (~63), except
    that a relation is capped at a quarter of its possible node pairs on tiny graphs.
    """
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    rng = np.random.default_rng(seed)
    counts = _scaled_type_counts(scale)
    types = list(TYPE_COUNTS)
    starts: dict[str, int] = {}
    offset = 0
    for t in types:
        starts[t] = offset
        offset += counts[t]
    n_nodes = offset
    popularity = 1.0 + rng.pareto(tail, size=n_nodes)

    src_parts: list[np.ndarray] = []
    dst_parts: list[np.ndarray] = []
    rel_parts: list[np.ndarray] = []
    disp_parts: list[np.ndarray] = []
    relation_names = list(RELATION_MIX)
    display_names: list[str] = []
    display_index: dict[tuple[str, str], int] = {}
    for rel_code, relation in enumerate(relation_names):
        x_type, y_type, full = RELATION_MIX[relation]
        nx_, ny_ = counts[x_type], counts[y_type]
        possible = nx_ * (nx_ - 1) // 2 if x_type == y_type else nx_ * ny_
        target = min(int(round(full * n_nodes / FULL_NODES)), int(possible * _MAX_DENSITY))
        if target <= 0:
            continue
        a, b = _draw_edges(rng, popularity, starts[x_type], nx_, starts[y_type], ny_, x_type == y_type, target)
        src_parts.append(np.minimum(a, b))
        dst_parts.append(np.maximum(a, b))
        rel_parts.append(np.full(len(a), rel_code, dtype=np.int16))
        labels = RELATIONS.get(relation, (relation,))
        codes = []
        for lab in labels:
            key = (relation, lab)
            if key not in display_index:
                display_index[key] = len(display_names)
                display_names.append(lab)
            codes.append(display_index[key])
        if len(codes) == 1:
            disp_parts.append(np.full(len(a), codes[0], dtype=np.int16))
        else:  # e.g. drug_protein: target / enzyme / carrier / transporter, mostly target
            probs = np.array([0.7] + [0.3 / (len(codes) - 1)] * (len(codes) - 1))
            disp_parts.append(np.asarray(codes, dtype=np.int16)[rng.choice(len(codes), size=len(a), p=probs)])

    src = np.concatenate(src_parts)
    dst = np.concatenate(dst_parts)
    rel = np.concatenate(rel_parts)
    disp = np.concatenate(disp_parts)
    order = np.lexsort((rel, dst, src))
    edges = pa.table(
        {
            "src": pa.array(src[order], pa.int64()),
            "dst": pa.array(dst[order], pa.int64()),
            "relation": pa.DictionaryArray.from_arrays(pa.array(rel[order]), pa.array(relation_names)).cast(pa.string()),
            "display_relation": pa.DictionaryArray.from_arrays(pa.array(disp[order]), pa.array(display_names)).cast(
                pa.string()
            ),
        },
        schema=EDGES_SCHEMA,
    )
    return SyntheticKG(nodes=_nodes_table(counts, starts, n_nodes), edges=edges)


def _draw_edges(
    rng: np.random.Generator,
    popularity: np.ndarray,
    x_start: int,
    nx_: int,
    y_start: int,
    ny_: int,
    same_type: bool,
    target: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``target`` distinct edges with endpoints drawn by popularity (no self-loops)."""
    px = popularity[x_start : x_start + nx_] / popularity[x_start : x_start + nx_].sum()
    py = popularity[y_start : y_start + ny_] / popularity[y_start : y_start + ny_].sum()
    keys = np.empty(0, dtype=np.int64)
    span = np.int64(len(popularity))
    for _ in range(12):  # each round tops up what de-duplication removed
        need = target - len(keys)
        if need <= 0:
            break
        draw = int(need * 1.3) + 16
        a = x_start + rng.choice(nx_, size=draw, p=px)
        b = y_start + rng.choice(ny_, size=draw, p=py)
        keep = a != b
        a, b = a[keep], b[keep]
        if same_type:
            a, b = np.minimum(a, b), np.maximum(a, b)
        new = a.astype(np.int64) * span + b.astype(np.int64)
        # Keep first occurrences in draw order, so the result does not depend on sort order.
        merged = np.concatenate([keys, new])
        _, first = np.unique(merged, return_index=True)
        keys = merged[np.sort(first)]
    keys = keys[:target]
    return (keys // span).astype(np.int64), (keys % span).astype(np.int64)


def _nodes_table(counts: dict[str, int], starts: dict[str, int], n_nodes: int) -> pa.Table:
    names: list[str] = []
    types: list[str] = []
    sources: list[str] = []
    source_ids: list[str] = []
    for t, n in counts.items():
        prefix = _NAME_PREFIX[t]
        source = TYPE_SOURCES[t][0]
        names.extend(f"{prefix} {i}" for i in range(n))
        types.extend([t] * n)
        sources.extend([source] * n)
        source_ids.extend(str(100_000 + i) for i in range(n))
    name_arr = pa.array(names, pa.string())
    return pa.table(
        {
            "node_id": pa.array(np.arange(n_nodes, dtype=np.int64)),
            "name": name_arr,
            "name_norm": normalize_names(name_arr),
            "type": pa.array(types, pa.string()),
            "source": pa.array(sources, pa.string()),
            "source_id": pa.array(source_ids, pa.string()),
        },
        schema=NODES_SCHEMA,
    )


def sample_pairs(
    kg: SyntheticKG,
    n_questions: int,
    *,
    seed: int = 0,
    question_entities: tuple[int, int] = (2, 4),
    answer_entities: tuple[int, int] = (1, 3),
) -> pa.Table:
    """Pairs drawn the way MedReason forms them: per question, every question entity x every
    answer entity. Entities are drawn from clinical types, more often from well-connected nodes
    (common concepts recur across questions). Returns ``(pair_id, src, dst)``; a question entity
    may equal an answer entity (the engine reports ``same_node``)."""
    rng = np.random.default_rng(seed)
    node_types = kg.nodes.column("type").to_numpy(zero_copy_only=False)
    n_nodes = kg.nodes.num_rows
    degree = np.bincount(kg.edges.column("src").to_numpy(), minlength=n_nodes) + np.bincount(
        kg.edges.column("dst").to_numpy(), minlength=n_nodes
    )
    weight = np.zeros(n_nodes)
    for t, share in QA_TYPE_WEIGHTS.items():
        mask = node_types == t
        if mask.any():
            w = np.sqrt(degree[mask] + 1.0)
            weight[mask] = share * w / w.sum()
    weight /= weight.sum()
    n_q = rng.integers(question_entities[0], question_entities[1] + 1, size=n_questions)
    n_a = rng.integers(answer_entities[0], answer_entities[1] + 1, size=n_questions)
    q_ent = rng.choice(n_nodes, size=int(n_q.sum()), p=weight)
    a_ent = rng.choice(n_nodes, size=int(n_a.sum()), p=weight)
    pair_ids: list[str] = []
    srcs: list[int] = []
    dsts: list[int] = []
    qi = ai = 0
    for q in range(n_questions):
        qs = q_ent[qi : qi + n_q[q]]
        ans = a_ent[ai : ai + n_a[q]]
        qi += n_q[q]
        ai += n_a[q]
        for i, s in enumerate(qs):
            for j, d in enumerate(ans):
                pair_ids.append(f"q{q:06d}-{i}-{j}")
                srcs.append(int(s))
                dsts.append(int(d))
    return pa.table(
        {"pair_id": pa.array(pair_ids, pa.string()), "src": pa.array(srcs, pa.int64()), "dst": pa.array(dsts, pa.int64())}
    )


def to_primekg_table(kg: SyntheticKG) -> pa.Table:
    """The graph as PrimeKG's ``kg.csv`` table: every undirected edge in both directions."""
    nodes = kg.nodes
    node_ids = nodes.column("node_id").to_numpy()
    index = np.full(int(node_ids.max()) + 1 if len(node_ids) else 0, -1, dtype=np.int64)
    index[node_ids] = np.arange(len(node_ids))
    src = kg.edges.column("src").to_numpy()
    dst = kg.edges.column("dst").to_numpy()
    x = np.concatenate([src, dst])
    y = np.concatenate([dst, src])
    rel = pa.concat_arrays([kg.edges.column("relation").combine_chunks()] * 2)
    disp = pa.concat_arrays([kg.edges.column("display_relation").combine_chunks()] * 2)
    x_rows = pa.array(index[x])
    y_rows = pa.array(index[y])

    def node_col(name: str, rows: pa.Array) -> pa.Array:
        return nodes.column(name).combine_chunks().take(rows)

    columns = {
        "relation": rel,
        "display_relation": disp,
        "x_index": pa.array(x, pa.int64()),
        "x_id": node_col("source_id", x_rows),
        "x_type": node_col("type", x_rows),
        "x_name": node_col("name", x_rows),
        "x_source": node_col("source", x_rows),
        "y_index": pa.array(y, pa.int64()),
        "y_id": node_col("source_id", y_rows),
        "y_type": node_col("type", y_rows),
        "y_name": node_col("name", y_rows),
        "y_source": node_col("source", y_rows),
    }
    return pa.table({c: columns[c] for c in KG_COLUMNS})


def write_primekg_csv(kg: SyntheticKG, path: str) -> int:
    """Write the graph as a PrimeKG-format ``kg.csv`` at a local path; returns the row count."""
    table = to_primekg_table(kg)
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(include_header=True))
    return table.num_rows
