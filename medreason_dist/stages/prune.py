"""Stage `prune`: per question, per (start, end) group of KG paths, keep the most relevant few.

Groups with no more paths than we keep skip the LLM. Larger groups are capped at
``max_paths_per_group`` by a seeded sample and the LLM picks up to ``keep_paths_per_group``.
Every QA row comes out once, with the kept paths (possibly none: flagged pathless later).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict

import pyarrow as pa

from medreason_dist import storage
from medreason_dist.config import Config
from medreason_dist.kg.render import render_path
from medreason_dist.llm.prompts import prune_prompt
from medreason_dist.llm.schemas import PathSelection
from medreason_dist.stages.common import LlmFn, run_llm_rows, with_column

STEP = "prune"


def _seeded_sample(items: list, n: int, seed: int, key: str) -> list:
    if len(items) <= n:
        return items
    digest = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big")
    return random.Random(digest).sample(items, n)


def build_groups(rows: pa.Table, paths: pa.Table, names: dict[int, str], *, max_per_group: int,
                 seed: int) -> list[dict]:
    """One group per (QA row, pair) that has paths; each path rendered as text."""
    by_pair: dict[str, list[dict]] = defaultdict(list)
    for p in paths.select(["pair_id", "hops", "path_nodes", "path_relations"]).to_pylist():
        by_pair[p["pair_id"]].append(p)
    groups = []
    for r in rows.select(["id", "pairs_json", "reformat_result"]).to_pylist():
        ref = json.loads(r["reformat_result"])
        for pair in json.loads(r["pairs_json"]):
            found = sorted(by_pair.get(pair["pair_id"], []), key=lambda p: (p["path_nodes"], p["path_relations"]))
            if not found:
                continue
            key = f"{r['id']}|{pair['pair_id']}"
            found = _seeded_sample(found, max_per_group, seed, key)
            rendered = [{"nodes": p["path_nodes"], "relations": p["path_relations"],
                         "text": render_path([names.get(n, str(n)) for n in p["path_nodes"]], p["path_relations"])}
                        for p in found]
            groups.append({"key": key, "id": r["id"], "pair_id": pair["pair_id"], "n_paths": len(rendered),
                           "start_name": names.get(pair["src"], str(pair["src"])),
                           "end_name": names.get(pair["dst"], str(pair["dst"])),
                           "description": ref["description"], "conclusion": ref["conclusion"],
                           "paths_json": json.dumps(rendered),
                           "paths_text_json": json.dumps([p["text"] for p in rendered])})
    return groups


def prune_paths(cfg: Config, rows: pa.Table, *, paths_uri: str, nodes_uri: str, out_uri: str, choices_uri: str,
                choices_rejects_uri: str, fingerprint: str, llm_fn: LlmFn, force: bool = False) -> storage.Manifest:
    opts, rc = cfg.storage, cfg.reason
    paths = storage.read_table(paths_uri, options=opts)
    nodes = storage.read_table(nodes_uri, columns=["node_id", "name"], options=opts)
    names = dict(zip(nodes.column("node_id").to_pylist(), nodes.column("name").to_pylist()))
    groups = build_groups(rows, paths, names, max_per_group=rc.max_paths_per_group, seed=cfg.paths.seed)
    keep_n = rc.keep_paths_per_group
    kept: dict[str, list[dict]] = defaultdict(list)
    llm_groups = [g for g in groups if g["n_paths"] > keep_n]
    for g in groups:
        if g["n_paths"] <= keep_n:  # nothing to choose: keep them all without an LLM call
            kept[g["id"]].extend(json.loads(g["paths_json"]))
    tokens: dict[str, int] = {}
    errors: dict[str, int] = defaultdict(int)
    if llm_groups:
        table = pa.Table.from_pylist(llm_groups)
        table = with_column(table, "keep_n", [keep_n] * table.num_rows, pa.int64())
        res = run_llm_rows(cfg, llm_fn, table, step=STEP, prompt=prune_prompt, output_model=PathSelection,
                           sampling=rc.prune, out_uri=choices_uri, rejects_uri=choices_rejects_uri,
                           stage="prune.choice", fingerprint=fingerprint, force=force)
        tokens = res.output.tokens
        for g in storage.read_table(choices_uri, options=opts).to_pylist():
            options_ = json.loads(g["paths_json"])
            picks = [i for i in dict.fromkeys(json.loads(g["prune_result"])["keep"]) if 1 <= i <= len(options_)]
            if not picks:
                errors["no_valid_selection"] += 1
            kept[g["id"]].extend(options_[i - 1] for i in picks[:keep_n])
        for r in storage.read_table(choices_rejects_uri, options=opts).to_pylist():
            errors[r["reason"]] += 1
    ids = rows.column("id").to_pylist()
    out = with_column(rows, "kept_paths_json", [json.dumps(kept.get(i, [])) for i in ids], pa.string())
    out = with_column(out, "kept_paths_text_json", [json.dumps([p["text"] for p in kept.get(i, [])]) for i in ids],
                      pa.string())
    out = with_column(out, "n_kept_paths", [len(kept.get(i, [])) for i in ids], pa.int64())
    return storage.write_table(out_uri, out, stage=STEP, config_hash=fingerprint, tokens=tokens,
                               extra={"groups": len(groups), "llm_groups": len(llm_groups),
                                      "group_errors": dict(errors), "rows_in": rows.num_rows}, options=opts)
