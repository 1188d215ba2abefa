"""Stage `prune`: per question, per (start, end) group of KG paths, keep the most relevant few.

Groups with no more paths than we keep skip the LLM. Larger groups are capped at
``max_paths_per_group`` by a seeded sample and the LLM picks up to ``keep_paths_per_group``.
Every QA row comes out once, with the kept paths (possibly none: flagged pathless later).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict

import pyarrow as pa

from medreason_dist import storage
from medreason_dist.config import Config
from medreason_dist.kg.render import render_path
from medreason_dist.llm.prompts import prune_prompt
from medreason_dist.llm.schemas import PathSelection
from medreason_dist.stages.common import LlmFn, run_llm_sharded, with_column
from medreason_dist.stages.sharded import CARRIED, ROW_KIND, ask_only, with_carried_rows

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


# A prune shard: its QA rows (carried) and one row per (row, pair) group with paths; only groups
# with more paths than kept are asked (see stages/sharded.py).
TAKE_ALL, CHOOSE = "take_all", "choose"


def _lookup(uri: str, column: str, values: list, columns: list[str], options) -> pa.Table:
    """Rows of a dataset whose ``column`` is in ``values`` (a filtered scan, on the worker)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    files = storage.describe(uri, options).files
    fs = storage.filesystem(files[0], options)[0]
    dataset = pads.dataset([storage.filesystem(f, options)[1] for f in files], format="parquet", filesystem=fs)
    wanted = pa.array(values, dataset.schema.field(column).type)  # typed even when empty
    return dataset.to_table(columns=columns, filter=pc.field(column).isin(wanted))


def prune_shard_rows(rows: pa.Table, *, paths_uri: str, nodes_uri: str, options, max_per_group: int, seed: int,
                     keep_n: int) -> pa.Table:
    """Per shard, on a worker: the QA rows plus one row per (row, pair) group of rendered paths."""
    pair_ids = sorted({p["pair_id"] for j in rows.column("pairs_json").to_pylist() for p in json.loads(j)})
    paths = _lookup(paths_uri, "pair_id", pair_ids, ["pair_id", "hops", "path_nodes", "path_relations"], options)
    node_ids = sorted({n for ns in paths.column("path_nodes").to_pylist() for n in ns}
                      | {p[k] for j in rows.column("pairs_json").to_pylist() for p in json.loads(j) for k in ("src", "dst")})
    nodes = _lookup(nodes_uri, "node_id", node_ids, ["node_id", "name"], options)
    names = dict(zip(nodes.column("node_id").to_pylist(), nodes.column("name").to_pylist()))
    groups = build_groups(rows, paths, names, max_per_group=max_per_group, seed=seed)
    questions = pa.Table.from_pylist([dict(g, **{ROW_KIND: CHOOSE if g["n_paths"] > keep_n else TAKE_ALL},
                                           keep_n=keep_n, group_pos=i) for i, g in enumerate(groups)]) if groups else None
    return with_carried_rows(rows, questions)


def kept_paths_per_row(table: pa.Table, keep_n: int) -> pa.Table:
    """Per shard, on the writer: fold the groups back into their QA rows (the stage's output)."""
    kinds = table.column(ROW_KIND).to_pylist()
    rows = table.filter(pa.array([k == CARRIED for k in kinds]))
    kept: dict[str, list[dict]] = defaultdict(list)
    errors: dict[str, Counter] = defaultdict(Counter)
    n_groups, n_llm = Counter(), Counter()
    groups = [g for g, k in zip(table.to_pylist(), kinds) if k != CARRIED]
    for g in sorted(groups, key=lambda g: g["group_pos"]):
        options_ = json.loads(g["paths_json"])
        n_groups[g["id"]] += 1
        if g[ROW_KIND] == TAKE_ALL:  # nothing to choose: every path is kept, no LLM call
            kept[g["id"]].extend(options_)
            continue
        n_llm[g["id"]] += 1
        if g[f"{STEP}_error"]:
            errors[g["id"]][g[f"{STEP}_error"]] += 1
            continue
        picks = [i for i in dict.fromkeys(json.loads(g[f"{STEP}_result"])["keep"]) if 1 <= i <= len(options_)]
        if not picks:
            errors[g["id"]]["no_valid_selection"] += 1
        kept[g["id"]].extend(options_[i - 1] for i in picks[:keep_n])
    ids = rows.column("id").to_pylist()
    step_columns = [c for c in rows.column_names if c.startswith(f"{STEP}_")] + [ROW_KIND]
    group_columns = ["pair_id", "n_paths", "start_name", "end_name", "description", "conclusion", "paths_json",
                     "paths_text_json", "keep_n", "group_pos"]
    out = rows.drop_columns([c for c in step_columns + group_columns if c in rows.column_names])
    out = with_column(out, "kept_paths_json", [json.dumps(kept.get(i, [])) for i in ids], pa.string())
    out = with_column(out, "kept_paths_text_json", [json.dumps([p["text"] for p in kept.get(i, [])]) for i in ids],
                      pa.string())
    out = with_column(out, "n_kept_paths", [len(kept.get(i, [])) for i in ids], pa.int64())
    out = with_column(out, "prune_groups", [n_groups[i] for i in ids], pa.int64())
    out = with_column(out, "prune_llm_groups", [n_llm[i] for i in ids], pa.int64())
    out = with_column(out, "prune_group_errors_json", [json.dumps(dict(errors[i])) for i in ids], pa.string())
    # prune drops no QA row: a group the LLM could not rank only loses its paths (counted above)
    return with_column(out, f"{STEP}_error", [None] * out.num_rows, pa.string())


def prune_counts(out: pa.Table) -> dict[str, int]:
    counts = Counter({"groups": int(sum(out.column("prune_groups").to_pylist())),
                      "llm_groups": int(sum(out.column("prune_llm_groups").to_pylist()))})
    for errors in out.column("prune_group_errors_json").to_pylist():
        for reason, n in json.loads(errors).items():
            counts[f"group_errors.{reason}"] += n
    return dict(counts)


def prune_paths(cfg: Config, reformat_uri: str, *, paths_uri: str, nodes_uri: str, out_uri: str, rejects_uri: str,
                fingerprint: str, llm_fn: LlmFn, force: bool = False):
    """Keep the most relevant paths of every (QA row, pair) group, shard by shard on workers."""
    from functools import partial

    rc = cfg.reason
    return run_llm_sharded(
        cfg, llm_fn, reformat_uri, step=STEP, prompt=ask_only(CHOOSE, prune_prompt), output_model=PathSelection,
        sampling=rc.prune, out_uri=out_uri, rejects_uri=rejects_uri, stage=STEP, fingerprint=fingerprint, force=force,
        prepare=partial(prune_shard_rows, paths_uri=paths_uri, nodes_uri=nodes_uri, options=cfg.storage,
                        max_per_group=rc.max_paths_per_group, seed=cfg.paths.seed, keep_n=rc.keep_paths_per_group),
        finalize=partial(kept_paths_per_row, keep_n=rc.keep_paths_per_group), count_fn=prune_counts)
