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


def node_embeddings(nodes_uri: str, cache_uri: str, model_ref: str, model_path: str, *, batch_size: int,
                    options: storage.StorageOptions | None = None, num_cpus: float = 0.25) -> str:
    """The dataset of every KG node name's embedding, computed once per KG version and model by
    workers (read, embed, write); returns its URI.

    ``num_cpus`` is what the embedding actor reserves, not what it uses (torch takes the node's
    threads either way): a whole CPU next to a run's shared LLM engine, which holds its own
    bundle, left no CPU for the read tasks of a 2-CPU Ray, and the stage waited forever.
    """
    import ray

    from medreason_dist import raydata

    nodes_manifest = storage.read_manifest(nodes_uri, options)
    key = storage.config_hash_of({"nodes": nodes_manifest.content_hash, "model": model_ref})
    uri = storage.join(cache_uri, key)
    if storage.is_committed(uri, options):
        return uri
    log.info("embedding %d KG node names with %s", nodes_manifest.rows, model_ref)
    extra = {"model": model_ref, "nodes_content_hash": nodes_manifest.content_hash}
    if nodes_manifest.rows == 0:
        storage.write_table(uri, EMBED_SCHEMA.empty_table(), stage="kg.embeddings", config_hash=key, extra=extra,
                            options=options)
        return uri
    ds = raydata.read(nodes_uri, options, columns=["node_id", "name", "type"]).map_batches(
        Embedder, fn_constructor_kwargs=dict(model_path=model_path, text_column="name", batch_size=batch_size),
        batch_size=batch_size * 4, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=1),
        num_cpus=num_cpus).map_batches(lambda t: t.select(["node_id", "type", "vector"]).cast(EMBED_SCHEMA),
                                       batch_format="pyarrow", num_cpus=0.1)
    raydata.write(ds, uri, stage="kg.embeddings", schema=EMBED_SCHEMA, options=options, config_hash=key, extra=extra)
    return uri


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
