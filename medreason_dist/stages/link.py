"""Stage `link`: map each question's entities to KG nodes.

``reason.grounding`` says where entities come from. ``dictionary``: the KG lexicon matched on the
question stem and the gold answer text (stages/grounding.py), no model. ``llm``: the names the
extract stage's LLM wrote, linked as below. ``hybrid`` (default): dictionary links first; the
LLM's names add what the dictionary missed (a name the dictionary already linked, or any answer
name when the dictionary linked the answer text, is not asked again).

Per LLM-extracted entity: an exact normalised-name match of the same type is accepted; otherwise the name is
embedded and searched among nodes of the same type (top-k with similarity >= min); a top-1 at or
above the accept threshold is taken directly; remaining candidates go to the LLM, which picks
one or none. Every QA row comes out (with zero or more links); the LLM choices are resumable.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa

from medreason_dist import storage
from medreason_dist.config import Config
from medreason_dist.embed import build_index, merged_index, node_embeddings, search
from medreason_dist.kg.schema import normalize_names
from medreason_dist.llm.prompts import link_choice_prompt
from medreason_dist.llm.schemas import LinkChoice
from medreason_dist.stages.common import LlmFn, run_llm_sharded, with_column
from medreason_dist.stages.grounding import covered, dictionary_links, in_text, locate, merge_links, score_row
from medreason_dist.stages.sharded import CARRIED, ROW_KIND, ask_only, with_carried_rows

STEP = "link"


def explode_entities(extracted: pa.Table) -> pa.Table:
    """One row per extracted entity: key ``<qa id>:<q|a><n>``."""
    rows = []
    for r in extracted.select(["id", "extract_result"]).to_pylist():
        parsed = json.loads(r["extract_result"])
        for role, field in (("q", "question_entities"), ("a", "answer_entities")):
            seen = set()
            for i, ent in enumerate(parsed.get(field, [])):
                ident = (ent["name"].strip().lower(), ent["type"])
                if ident in seen:
                    continue
                seen.add(ident)
                rows.append({"key": f"{r['id']}:{role}{i}", "id": r["id"], "role": role,
                             "entity_name": ent["name"].strip(), "entity_type": ent["type"]})
    schema = pa.schema([("key", pa.string()), ("id", pa.string()), ("role", pa.string()),
                        ("entity_name", pa.string()), ("entity_type", pa.string())])
    return pa.Table.from_pylist(rows, schema=schema)


ANY_TYPE = "*"


def candidate_links(entities: pa.Table, nodes: pa.Table, node_vectors: pa.Table, entity_vectors: np.ndarray,
                    *, top_k: int, min_sim: float, accept_sim: float, any_type_fallback: bool = False,
                    index: dict | None = None) -> list[dict]:
    """Decide each entity's link without the LLM where the evidence is clear.

    With ``any_type_fallback`` an entity whose own type has no exact match and no candidate is
    searched among all node types (small extractors often get the type wrong).
    """
    names = dict(zip(nodes.column("node_id").to_pylist(), nodes.column("name").to_pylist()))
    node_types = dict(zip(nodes.column("node_id").to_pylist(), nodes.column("type").to_pylist()))
    exact: dict[tuple[str, str], int] = {}
    for nid, norm, typ in zip(nodes.column("node_id").to_pylist(), nodes.column("name_norm").to_pylist(),
                              nodes.column("type").to_pylist()):
        exact.setdefault((norm, typ), nid)
        exact.setdefault((norm, ANY_TYPE), nid)
    norms = normalize_names(entities.column("entity_name")).to_pylist()
    types = entities.column("entity_type").to_pylist()
    index = index if index is not None else build_index(node_vectors)
    found = search(index, entity_vectors, types, top_k=top_k, min_similarity=min_sim)
    if any_type_fallback:
        lost = [i for i, (norm, typ, c) in enumerate(zip(norms, types, found)) if not c and (norm, typ) not in exact]
        if lost:
            again = search({ANY_TYPE: merged_index(index)}, entity_vectors[lost], [ANY_TYPE] * len(lost), top_k=top_k,
                           min_similarity=min_sim)
            for i, cands in zip(lost, again):
                found[i] = cands
                types[i] = ANY_TYPE
    decisions = []
    for norm, typ, cands in zip(norms, types, found):
        cand_list = [{"node_id": nid, "name": names.get(nid, ""), "type": node_types.get(nid, typ),
                      "score": round(s, 4)} for nid, s in cands]
        if (norm, typ) in exact:
            nid = exact[(norm, typ)]
            decisions.append({"method": "exact", "node_id": nid, "node_name": names.get(nid), "score": 1.0,
                              "candidates": cand_list})
        elif cand_list and cand_list[0]["score"] >= accept_sim:
            c = cand_list[0]
            decisions.append({"method": "embedding", "node_id": c["node_id"], "node_name": c["name"],
                              "score": c["score"], "candidates": cand_list})
        elif cand_list:
            decisions.append({"method": "llm", "node_id": None, "score": None, "candidates": cand_list})
        else:
            decisions.append({"method": "no_candidate", "node_id": None, "score": None, "candidates": []})
    return decisions


# A link shard: its QA rows (carried) and one row per extracted entity; only entities whose
# candidates need a choice are asked (see stages/sharded.py).
DECIDED, CHOOSE = "decided", "choose"


_WORKER_CACHE: dict[tuple, object] = {}  # per worker process: the embedder and the node index


def _cached(key: tuple, build):
    if key not in _WORKER_CACHE:
        _WORKER_CACHE[key] = build()
    return _WORKER_CACHE[key]


DICTIONARY_LINKS = "dictionary_links_json"
GENERIC_SKIPPED = "dictionary_generic_skipped"


def with_dictionary_links(extracted: pa.Table, matcher) -> pa.Table:
    """The QA rows with their lexicon links (and the generic spans passed over) as columns."""
    found = [dictionary_links(matcher, q, a) for q, a in zip(extracted.column("question").to_pylist(),
                                                              extracted.column("answer_text").to_pylist())]
    rows = with_column(extracted, DICTIONARY_LINKS, [json.dumps(links) for links, _ in found], pa.string())
    return with_column(rows, GENERIC_SKIPPED, [generic for _, generic in found], pa.int64())


def llm_entities(extracted: pa.Table, grounding: str, names: str = "in_text") -> pa.Table:
    """The LLM-extracted entities still to link: none for dictionary grounding; for hybrid, those
    the row's dictionary links do not already cover (and, with ``names="in_text"``, that its text
    contains)."""
    entities = explode_entities(extracted)
    if grounding == "dictionary":
        return entities.slice(0, 0)
    if grounding == "llm" or entities.num_rows == 0:
        return entities
    by_id = dict(zip(extracted.column("id").to_pylist(),
                     (json.loads(j) for j in extracted.column(DICTIONARY_LINKS).to_pylist())))
    texts = {i: {"q": q, "a": a} for i, q, a in zip(extracted.column("id").to_pylist(),
                                                     extracted.column("question").to_pylist(),
                                                     extracted.column("answer_text").to_pylist())}
    keep = [not covered(name, role, by_id.get(i, [])) and (names == "any" or in_text(name, texts[i][role]))
            for i, role, name in zip(entities.column("id").to_pylist(), entities.column("role").to_pylist(),
                                     entities.column("entity_name").to_pylist())]
    return entities.filter(pa.array(keep, pa.bool_()))


def link_shard_rows(extracted: pa.Table, *, nodes_uri: str, lexicon_uri: str, vectors_uri: str | None,
                    model_path: str | None, grounding: str, top_k: int, min_sim: float, accept_sim: float,
                    any_type_fallback: bool, embed_batch_size: int, options,
                    hybrid_llm_names: str = "in_text") -> pa.Table:
    """Per shard, on a worker: the QA rows (with their dictionary links) plus one row per
    LLM-extracted entity with its link decision."""
    from medreason_dist.embed import Embedder
    from medreason_dist.kg.matcher import LexiconMatcher

    if grounding == "llm":
        extracted = with_column(extracted, DICTIONARY_LINKS, ["[]"] * extracted.num_rows, pa.string())
        extracted = with_column(extracted, GENERIC_SKIPPED, [0] * extracted.num_rows, pa.int64())
    else:
        matcher = _cached(("lexicon", lexicon_uri), lambda: LexiconMatcher(storage.read_table(lexicon_uri,
                                                                                              options=options)))
        extracted = with_dictionary_links(extracted, matcher)
    entities = llm_entities(extracted, grounding, hybrid_llm_names)
    if entities.num_rows == 0:
        return with_carried_rows(extracted, None)
    nodes = _cached(("nodes", nodes_uri), lambda: storage.read_table(
        nodes_uri, columns=["node_id", "name", "name_norm", "type"], options=options))
    vectors = _cached(("vectors", vectors_uri), lambda: storage.read_table(vectors_uri, options=options))
    embedder = _cached(("embedder", model_path), lambda: Embedder(model_path, "entity_name", embed_batch_size))
    embedded = embedder(entities.select(["entity_name"]))
    flat = embedded.column("vector").combine_chunks()
    matrix = flat.flatten().to_numpy(zero_copy_only=False).reshape(len(flat), -1)
    index = _cached(("index", vectors_uri), lambda: build_index(vectors))
    decisions = candidate_links(entities, nodes, vectors, matrix, top_k=top_k, min_sim=min_sim,
                                accept_sim=accept_sim, any_type_fallback=any_type_fallback, index=index)
    entities = with_column(entities, ROW_KIND, [CHOOSE if d["method"] == "llm" else DECIDED for d in decisions],
                           pa.string())
    entities = with_column(entities, "decision_json", [json.dumps(d) for d in decisions], pa.string())
    entities = with_column(entities, "candidates_json", [json.dumps(d["candidates"]) for d in decisions], pa.string())
    entities = with_column(entities, "entity_pos", list(range(entities.num_rows)), pa.int64())
    return with_carried_rows(extracted, entities)


_EVIDENCE = {"exact": "exact name match", "no_candidate": "no node above the similarity floor",
             "llm_none": "the LLM chose none of the candidates"}


def links_per_row(table: pa.Table) -> pa.Table:
    """Per shard, on the writer: fold dictionary links, entity decisions and LLM choices back into
    their QA rows."""
    kinds = table.column(ROW_KIND).to_pylist()
    rows = table.filter(pa.array([k == CARRIED for k in kinds]))
    texts = {r["id"]: {"q": r["question"], "a": r["answer_text"]}
             for r in rows.select(["id", "question", "answer_text"]).to_pylist()}
    llm_links: dict[str, list[dict]] = defaultdict(list)
    entities = [e for e, k in zip(table.to_pylist(), kinds) if k != CARRIED]
    for ent in sorted(entities, key=lambda e: e["entity_pos"]):
        d = json.loads(ent["decision_json"])
        method, node_id, score, node_name = d["method"], d["node_id"], d["score"], d.get("node_name")
        evidence = _EVIDENCE.get(method, f"embedding similarity {score}" if method == "embedding" else "")
        if method == "llm":
            if ent[f"{STEP}_error"]:
                method = f"llm_error:{ent[f'{STEP}_error']}"
                evidence = "the LLM's choice failed"
            else:
                choice = json.loads(ent[f"{STEP}_result"])["choice"]
                if 1 <= choice <= len(d["candidates"]):
                    c = d["candidates"][choice - 1]
                    node_id, score, node_name = c["node_id"], c["score"], c["name"]
                    evidence = f"LLM chose candidate {choice} of {len(d['candidates'])} (similarity {score})"
                else:
                    method, evidence = "llm_none", _EVIDENCE["llm_none"]
        start, end = locate(ent["entity_name"], texts.get(ent["id"], {}).get(ent["role"]))
        llm_links[ent["id"]].append({
            "role": ent["role"], "name": ent["entity_name"], "surface": ent["entity_name"], "start": start,
            "end": end, "node_id": node_id, "node_name": node_name, "type": ent["entity_type"], "score": score,
            "method": method, "evidence": evidence})
    drop = [c for c in rows.column_names if (c.startswith("extract_") and c != "extract_result")
            or c.startswith(f"{STEP}_") or c in (ROW_KIND, "role", "entity_name", "entity_type", "decision_json",
                                                 "candidates_json", "entity_pos", DICTIONARY_LINKS)]
    ids = rows.column("id").to_pylist()
    merged = [merge_links(json.loads(d), llm_links.get(i, []))
              for i, d in zip(ids, rows.column(DICTIONARY_LINKS).to_pylist())]
    out = rows.drop_columns(drop)
    # The engine step hands carried rows back through pandas in shards that also held entity rows
    # (no value there): the count comes back as float. Every shard file must have one schema.
    out = with_column(out, GENERIC_SKIPPED, [int(v or 0) for v in out.column(GENERIC_SKIPPED).to_pylist()],
                      pa.int64())
    out = with_column(out, "links_json", [json.dumps(x) for x in merged], pa.string())
    out = with_column(out, "n_linked", [sum(1 for x in links if x["node_id"] is not None) for links in merged],
                      pa.int64())
    out = with_column(out, "link_methods_json", [json.dumps([x["method"] for x in links]) for links in merged],
                      pa.string())
    # link drops no QA row: an entity without a node is recorded with its method
    return with_column(out, f"{STEP}_error", [None] * out.num_rows, pa.string())


def link_counts(out: pa.Table, gold: dict | None = None) -> dict[str, int]:
    """Links per method, generic spans passed over, and (for rows in ``gold``) gold.* tallies."""
    counts: Counter = Counter()
    for methods in out.column("link_methods_json").to_pylist():
        for m in json.loads(methods):
            counts["entities"] += 1
            counts[f"methods.{m}"] += 1
    if GENERIC_SKIPPED in out.column_names:
        counts["dictionary_generic_skipped"] += sum(out.column(GENERIC_SKIPPED).to_pylist())
    if gold:
        for ident, links_json in zip(out.column("id").to_pylist(), out.column("links_json").to_pylist()):
            if ident in gold:
                for k, v in score_row(json.loads(links_json), gold[ident]).items():
                    counts[f"gold.{k}"] += v
    return dict(counts)


def load_configured_gold(cfg: Config) -> dict | None:
    from medreason_dist.config import resolve_packaged
    from medreason_dist.stages.grounding import load_gold

    ref = cfg.reason.grounding_gold
    if not ref:
        return None
    uri = resolve_packaged(ref)
    return load_gold(storage.read_bytes(uri, cfg.storage).decode("utf-8"), source=ref)


def _no_model(ds, **_):
    return ds


def link_entities(cfg: Config, extracted_uri: str, *, nodes_uri: str, lexicon_uri: str, embeddings_uri: str,
                  out_uri: str, rejects_uri: str, fingerprint: str, llm_fn: LlmFn, force: bool = False):
    """Link every row's entities to KG nodes, shard by shard on workers."""
    from functools import partial

    from medreason_dist.models import resolve_model

    rc = cfg.reason
    model_path = vectors_uri = None
    if rc.grounding != "dictionary":  # the dictionary needs no model
        model_path = resolve_model(cfg.models.embedder, cfg.models.cache_dir, storage_options=cfg.storage)
        vectors_uri = node_embeddings(nodes_uri, embeddings_uri, cfg.models.embedder, model_path,
                                      batch_size=rc.embed_batch_size, options=cfg.storage,
                                      num_cpus=cfg.llm.light_stage_cpus)
    if rc.grounding == "dictionary":
        llm_fn = _no_model  # no row asks the LLM: skip the engine altogether
    return run_llm_sharded(
        cfg, llm_fn, extracted_uri, step=STEP, prompt=ask_only(CHOOSE, link_choice_prompt), output_model=LinkChoice,
        sampling=rc.link, out_uri=out_uri, rejects_uri=rejects_uri, stage=STEP, fingerprint=fingerprint, force=force,
        prepare=partial(link_shard_rows, nodes_uri=nodes_uri, lexicon_uri=lexicon_uri, vectors_uri=vectors_uri,
                        model_path=model_path, grounding=rc.grounding, hybrid_llm_names=rc.hybrid_llm_names,
                        top_k=rc.link_top_k,
                        min_sim=rc.link_min_similarity, accept_sim=rc.link_accept_similarity,
                        any_type_fallback=rc.link_any_type_fallback, embed_batch_size=rc.embed_batch_size,
                        options=cfg.storage),
        finalize=links_per_row, count_fn=partial(link_counts, gold=load_configured_gold(cfg)),
        extra={"grounding": rc.grounding})
