"""Stage `reformat`: description + conclusion per question, and the entity pairs to connect.

Only linked entities count. Pairs are (question node, answer node) with distinct nodes; the
unique pairs of the whole run go to the ``pairs`` dataset that the Spark path engine reads.
"""

from __future__ import annotations

import json

import pyarrow as pa

from medreason_dist import storage
from medreason_dist.config import Config
from medreason_dist.llm.prompts import reformat_prompt
from medreason_dist.llm.schemas import Reformatted
from medreason_dist.stages.common import LlmFn, run_llm_rows, with_column
from medreason_dist.stages.resumable import ResumableResult

STEP = "reformat"
PAIRS_SCHEMA = pa.schema([("pair_id", pa.string()), ("src", pa.int64()), ("dst", pa.int64())])


def pair_id(src: int, dst: int) -> str:
    return f"{src}->{dst}"


def entity_pairs(links: list[dict]) -> list[dict]:
    q = {(x["node_id"], x["name"]) for x in links if x["role"] == "q" and x["node_id"] is not None}
    a = {(x["node_id"], x["name"]) for x in links if x["role"] == "a" and x["node_id"] is not None}
    return [{"pair_id": pair_id(qs, an), "src": qs, "dst": an} for qs, _ in sorted(q) for an, _ in sorted(a)
            if qs != an]


def reformat_rows(cfg: Config, linked: pa.Table, *, out_uri: str, rejects_uri: str, pairs_uri: str,
                  fingerprint: str, llm_fn: LlmFn, force: bool = False) -> ResumableResult:
    q_names, a_names, pairs_col = [], [], []
    all_pairs: dict[str, dict] = {}
    for links_json in linked.column("links_json").to_pylist():
        links = json.loads(links_json)
        q_names.append(", ".join(sorted({x["name"] for x in links if x["role"] == "q" and x["node_id"] is not None}))
                       or "(none)")
        a_names.append(", ".join(sorted({x["name"] for x in links if x["role"] == "a" and x["node_id"] is not None}))
                       or "(none)")
        pairs = entity_pairs(links)
        pairs_col.append(json.dumps(pairs))
        for p in pairs:
            all_pairs[p["pair_id"]] = p
    rows = with_column(linked, "question_entity_names", q_names, pa.string())
    rows = with_column(rows, "answer_entity_names", a_names, pa.string())
    rows = with_column(rows, "pairs_json", pairs_col, pa.string())
    storage.write_table(pairs_uri, pa.Table.from_pylist(sorted(all_pairs.values(), key=lambda p: p["pair_id"]),
                                                        schema=PAIRS_SCHEMA),
                        stage="reformat.pairs", config_hash=fingerprint, options=cfg.storage)
    return run_llm_rows(cfg, llm_fn, rows, step=STEP, prompt=reformat_prompt, output_model=Reformatted,
                        sampling=cfg.reason.reformat, out_uri=out_uri, rejects_uri=rejects_uri, stage=STEP,
                        fingerprint=fingerprint, extra={"unique_pairs": len(all_pairs)}, force=force)
