"""Stage `link`: map extracted entity names to KG nodes.

Per entity: an exact normalised-name match of the same type is accepted; otherwise the name is
embedded and searched among nodes of the same type (top-k with similarity >= min); a top-1 at or
above the accept threshold is taken directly; remaining candidates go to the LLM, which picks
one or none. Every QA row comes out (with zero or more links); the LLM choices are resumable.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pyarrow as pa

from medreason_dist import storage
from medreason_dist.config import Config
from medreason_dist.embed import build_index, embed_table, merged_index, node_embeddings, search
from medreason_dist.kg.schema import normalize_names
from medreason_dist.llm.prompts import link_choice_prompt
from medreason_dist.llm.schemas import LinkChoice
from medreason_dist.stages.common import LlmFn, run_llm_rows, with_column

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
                    *, top_k: int, min_sim: float, accept_sim: float, any_type_fallback: bool = False) -> list[dict]:
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
    index = build_index(node_vectors)
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
            decisions.append({"method": "exact", "node_id": nid, "score": 1.0, "candidates": cand_list})
        elif cand_list and cand_list[0]["score"] >= accept_sim:
            c = cand_list[0]
            decisions.append({"method": "embedding", "node_id": c["node_id"], "score": c["score"],
                              "candidates": cand_list})
        elif cand_list:
            decisions.append({"method": "llm", "node_id": None, "score": None, "candidates": cand_list})
        else:
            decisions.append({"method": "no_candidate", "node_id": None, "score": None, "candidates": []})
    return decisions


def link_entities(cfg: Config, extracted: pa.Table, *, nodes_uri: str, embeddings_uri: str, out_uri: str,
                  choices_uri: str, choices_rejects_uri: str, fingerprint: str, llm_fn: LlmFn,
                  force: bool = False) -> storage.Manifest:
    from medreason_dist.models import resolve_model

    opts = cfg.storage
    entities = explode_entities(extracted)
    nodes = storage.read_table(nodes_uri, columns=["node_id", "name", "name_norm", "type"], options=opts)
    model_path = resolve_model(cfg.models.embedder, cfg.models.cache_dir, storage_options=opts)
    node_vectors = node_embeddings(nodes_uri, embeddings_uri, cfg.models.embedder, model_path,
                                   batch_size=cfg.reason.embed_batch_size, options=opts)
    if entities.num_rows:
        embedded = embed_table(entities.select(["key", "entity_name"]), model_path, "entity_name",
                               cfg.reason.embed_batch_size)
        order = {k: i for i, k in enumerate(embedded.column("key").to_pylist())}
        flat = embedded.column("vector").combine_chunks()
        matrix = flat.flatten().to_numpy(zero_copy_only=False).reshape(len(flat), -1)
        vectors = matrix[[order[k] for k in entities.column("key").to_pylist()]]
    else:
        vectors = np.zeros((0, 1), np.float32)
    rc = cfg.reason
    decisions = candidate_links(entities, nodes, node_vectors, vectors, top_k=rc.link_top_k,
                                min_sim=rc.link_min_similarity, accept_sim=rc.link_accept_similarity,
                                any_type_fallback=rc.link_any_type_fallback)

    # The unclear ones: the LLM picks one candidate or none (resumable per entity).
    ask = [i for i, d in enumerate(decisions) if d["method"] == "llm"]
    choices: dict[str, dict] = {}
    tokens: dict[str, int] = {}
    if ask:
        ask_table = entities.take(pa.array(ask, pa.int64()))
        ask_table = with_column(ask_table, "candidates_json",
                                [json.dumps(decisions[i]["candidates"]) for i in ask], pa.string())
        res = run_llm_rows(cfg, llm_fn, ask_table, step=STEP, prompt=link_choice_prompt, output_model=LinkChoice,
                           sampling=rc.link, out_uri=choices_uri, rejects_uri=choices_rejects_uri,
                           stage="link.choice", fingerprint=fingerprint, force=force)
        tokens = res.output.tokens
        for r in storage.read_table(choices_uri, options=opts).to_pylist():
            choices[r["key"]] = json.loads(r["link_result"])
        for r in storage.read_table(choices_rejects_uri, options=opts).to_pylist():
            choices[r["key"]] = {"error": r["reason"]}

    links_by_row: dict[str, list[dict]] = defaultdict(list)
    method_counts: dict[str, int] = defaultdict(int)
    for i, ent in enumerate(entities.to_pylist()):
        d = decisions[i]
        method, node_id, score = d["method"], d["node_id"], d["score"]
        if method == "llm":
            choice = choices.get(ent["key"], {"error": "missing"})
            if "error" in choice:
                method = f"llm_error:{choice['error']}"
            elif 1 <= choice["choice"] <= len(d["candidates"]):
                c = d["candidates"][choice["choice"] - 1]
                node_id, score = c["node_id"], c["score"]
            else:
                method = "llm_none"
        method_counts[method] += 1
        links_by_row[ent["id"]].append({"role": ent["role"], "name": ent["entity_name"],
                                        "type": ent["entity_type"], "node_id": node_id, "score": score,
                                        "method": method})
    out = extracted.drop_columns([c for c in extracted.column_names if c.startswith("extract_") and
                                  c not in ("extract_result",)])
    out = with_column(out, "links_json", [json.dumps(links_by_row.get(i, [])) for i in
                                          out.column("id").to_pylist()], pa.string())
    out = with_column(out, "n_linked", [sum(1 for x in links_by_row.get(i, []) if x["node_id"] is not None)
                                        for i in out.column("id").to_pylist()], pa.int64())
    return storage.write_table(out_uri, out, stage=STEP, config_hash=fingerprint, tokens=tokens,
                               extra={"entities": entities.num_rows, "methods": dict(method_counts),
                                      "rows_in": extracted.num_rows}, options=opts)
