"""Stage `lexicon`: the KG's matching keys (names, synonyms, variants), built once per KG version.

The build runs as one Ray task next to the data: it reads the nodes dataset, the synonyms file
and the reference questions, and writes the lexicon dataset; the driver only waits for it.
"""

from __future__ import annotations

import time

from medreason_dist import storage
from medreason_dist.config import LexiconConfig, resolve_packaged


def _read_text(ref: str | None, options) -> str | None:
    if ref is None:
        return None
    return storage.read_bytes(resolve_packaged(ref), options).decode("utf-8")


def build_and_write(nodes_uri: str, out_uri: str, *, settings: LexiconConfig, synonyms_ref: str | None,
                    fingerprint: str, options) -> storage.Manifest:
    """Build the lexicon of ``nodes_uri`` and commit it at ``out_uri`` (where it runs: any process)."""
    from medreason_dist.kg.lexicon import (LexiconSettings, build_lexicon, read_synonyms,
                                           reference_questions_from_jsonl)

    started = time.perf_counter()
    nodes = storage.read_table(nodes_uri, columns=["node_id", "name", "type"], options=options)
    synonyms_text = _read_text(synonyms_ref, options)
    synonyms = read_synonyms(synonyms_text, source=synonyms_ref) if synonyms_text is not None else None
    reference_text = _read_text(settings.reference_questions, options)
    reference = reference_questions_from_jsonl(reference_text) if reference_text is not None else None
    table, counts = build_lexicon(nodes, synonyms, reference,
                                  LexiconSettings(min_chars=settings.min_chars,
                                                  max_question_share=settings.max_question_share))
    counts["synonyms"] = len(synonyms or [])
    counts["reference_questions"] = len(reference or [])
    return storage.write_table(out_uri, table, stage="lexicon", config_hash=fingerprint,
                               extra={"counts": counts, "build_seconds": round(time.perf_counter() - started, 3),
                                      "synonyms_source": synonyms_ref}, options=options)


def build_kg_lexicon(nodes_uri: str, out_uri: str, *, settings: LexiconConfig, synonyms_ref: str | None,
                     fingerprint: str, options, num_cpus: float = 1.0) -> storage.Manifest:
    """Run :func:`build_and_write` as a Ray task and return its manifest."""
    import ray

    task = ray.remote(num_cpus=num_cpus)(build_and_write)
    return ray.get(task.remote(nodes_uri, out_uri, settings=settings, synonyms_ref=synonyms_ref,
                               fingerprint=fingerprint, options=options))
