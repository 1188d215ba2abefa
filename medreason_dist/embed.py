"""Sentence embeddings on Ray Data and vectorised nearest-neighbour search per node type.

Node embeddings are computed once per (KG nodes content hash, embedding model) and stored as a
dataset under ``<kg>/embeddings/<key>``; linking reuses them. The search multiplies normalised
matrices in blocks within each node type, so it never loops over nodes in Python.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from medreason_dist import storage

log = logging.getLogger(__name__)

EMBED_SCHEMA = pa.schema([("node_id", pa.int64()), ("type", pa.string()), ("vector", pa.list_(pa.float32()))])


class Embedder:
    """Ray Data callable: adds a normalised ``vector`` column computed from ``text_column``."""

    def __init__(self, model_path: str, text_column: str = "name", batch_size: int = 256) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(model_path, device="cpu")
        self.text_column = text_column
        self.batch_size = batch_size

    def __call__(self, batch: pa.Table) -> pa.Table:
        texts = [t or "" for t in batch.column(self.text_column).to_pylist()]
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
        return batch.append_column("vector", pa.array(list(vectors), pa.list_(pa.float32())))


def embed_table(table: pa.Table, model_path: str, text_column: str, batch_size: int) -> pa.Table:
    """Embed a table's text column with Ray Data (batched, streaming)."""
    import ray

    ds = ray.data.from_arrow(table).map_batches(
        Embedder, fn_constructor_kwargs=dict(model_path=model_path, text_column=text_column, batch_size=batch_size),
        batch_size=batch_size * 4, batch_format="pyarrow", concurrency=1, num_cpus=1,
    )
    parts = [b for b in ds.iter_batches(batch_size=None, batch_format="pyarrow")]
    return pa.concat_tables(parts) if parts else table.append_column("vector", pa.array([], pa.list_(pa.float32())))


def node_embeddings(nodes_uri: str, cache_uri: str, model_ref: str, model_path: str, *, batch_size: int,
                    options: storage.StorageOptions | None = None) -> pa.Table:
    """Embeddings of every KG node name, computed once per KG version and model."""
    nodes_manifest = storage.read_manifest(nodes_uri, options)
    key = storage.config_hash_of({"nodes": nodes_manifest.content_hash, "model": model_ref})
    uri = storage.join(cache_uri, key)
    if storage.is_committed(uri, options):
        return storage.read_table(uri, options=options)
    nodes = storage.read_table(nodes_uri, columns=["node_id", "name", "type"], options=options)
    log.info("embedding %d KG node names with %s", nodes.num_rows, model_ref)
    embedded = embed_table(nodes, model_path, "name", batch_size)
    table = embedded.select(["node_id", "type", "vector"]).cast(EMBED_SCHEMA)
    storage.write_table(uri, table, stage="kg.embeddings", config_hash=key,
                        extra={"model": model_ref, "nodes_content_hash": nodes_manifest.content_hash},
                        options=options)
    return table


@dataclass
class TypeIndex:
    node_ids: np.ndarray  # (n,)
    matrix: np.ndarray  # (n, d) float32, rows L2-normalised


def build_index(node_vectors: pa.Table) -> dict[str, TypeIndex]:
    index: dict[str, TypeIndex] = {}
    types = np.asarray(node_vectors.column("type").to_pylist(), dtype=object)
    ids = node_vectors.column("node_id").to_numpy()
    flat = node_vectors.column("vector").combine_chunks()
    dim = len(flat[0]) if len(flat) else 0
    matrix = flat.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim) if dim else np.zeros((0, 0), np.float32)
    for t in sorted(set(types)):
        mask = types == t
        index[t] = TypeIndex(ids[mask], np.ascontiguousarray(matrix[mask], dtype=np.float32))
    return index


def merged_index(index: dict[str, TypeIndex]) -> TypeIndex:
    """One index over every type (for an entity whose extracted type may be wrong)."""
    parts = list(index.values())
    if not parts:
        return TypeIndex(np.zeros(0, np.int64), np.zeros((0, 0), np.float32))
    return TypeIndex(np.concatenate([p.node_ids for p in parts]), np.concatenate([p.matrix for p in parts]))


def search(index: dict[str, TypeIndex], vectors: np.ndarray, types: list[str], *, top_k: int,
           min_similarity: float, block: int = 2048) -> list[list[tuple[int, float]]]:
    """Top-k nodes of the same type with cosine similarity >= ``min_similarity``, per query."""
    results: list[list[tuple[int, float]]] = [[] for _ in types]
    types_arr = np.asarray(types, dtype=object)
    for t, idx in index.items():
        rows = np.nonzero(types_arr == t)[0]
        if rows.size == 0 or idx.matrix.shape[0] == 0:
            continue
        k = min(top_k, idx.matrix.shape[0])
        for start in range(0, rows.size, block):
            chunk = rows[start:start + block]
            sims = vectors[chunk] @ idx.matrix.T  # (b, n)
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            top_sims = np.take_along_axis(sims, top, axis=1)
            order = np.argsort(-top_sims, axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)
            top_sims = np.take_along_axis(top_sims, order, axis=1)
            for row, cand, sim in zip(chunk, top, top_sims):
                keep = sim >= min_similarity
                results[row] = [(int(idx.node_ids[c]), float(s)) for c, s in zip(cand[keep], sim[keep])]
    return results
