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
from medreason_dist.stages.common import LlmFn, run_llm_sharded, with_column
from medreason_dist.stages.resumable import ResumableResult

STEP = "reformat"
PAIRS_SCHEMA = pa.schema([("pair_id", pa.string()), ("src", pa.int64()), ("dst", pa.int64())])


def pair_id(src: int, dst: int) -> str:
    return f"{src}->{dst}"


def entity_pairs(links: list[dict]) -> list[dict]:
    """The row's (question node, answer node) pairs, each once: two mentions linked to the same
    node (e.g. "MI" and "myocardial infarction") give one pair, not two groups of the same paths."""
    q = {x["node_id"] for x in links if x["role"] == "q" and x["node_id"] is not None}
    a = {x["node_id"] for x in links if x["role"] == "a" and x["node_id"] is not None}
    return [{"pair_id": pair_id(qs, an), "src": qs, "dst": an} for qs in sorted(q) for an in sorted(a) if qs != an]


def _linked_names(links: list[dict], role: str) -> str:
    return ", ".join(sorted({x["name"] for x in links if x["role"] == role and x["node_id"] is not None})) or "(none)"


def with_pair_columns(linked: pa.Table) -> pa.Table:
    """Per batch, on workers: linked entity names of question and answer, and the row's pairs."""
    links = [json.loads(j) for j in linked.column("links_json").to_pylist()]
    rows = with_column(linked, "question_entity_names", [_linked_names(x, "q") for x in links], pa.string())
    rows = with_column(rows, "answer_entity_names", [_linked_names(x, "a") for x in links], pa.string())
    return with_column(rows, "pairs_json", [json.dumps(entity_pairs(x)) for x in links], pa.string())


def pairs_of_batch(linked: pa.Table) -> pa.Table:
    pairs = [p for j in linked.column("links_json").to_pylist() for p in entity_pairs(json.loads(j))]
    return pa.Table.from_pylist(pairs, schema=PAIRS_SCHEMA)


def _first_of_group(group: pa.Table) -> pa.Table:
    return group.slice(0, 1)


def write_unique_pairs(linked_uri: str, pairs_uri: str, *, fingerprint: str, options, num_cpus: float
                       ) -> storage.Manifest:
    """The unique (question node, answer node) pairs of the run, found and written by workers."""
    from medreason_dist import raydata

    if storage.describe(linked_uri, options).rows == 0:
        return storage.write_table(pairs_uri, PAIRS_SCHEMA.empty_table(), stage="reformat.pairs",
                                   config_hash=fingerprint, options=options)
    unique = (raydata.read(linked_uri, options, columns=["links_json"])
              .map_batches(pairs_of_batch, batch_format="pyarrow", num_cpus=num_cpus)
              .groupby("pair_id").map_groups(_first_of_group, batch_format="pyarrow", num_cpus=num_cpus))
    return raydata.write(unique, pairs_uri, stage="reformat.pairs", schema=PAIRS_SCHEMA, options=options,
                         config_hash=fingerprint)


def reformat_rows(cfg: Config, linked_uri: str, *, out_uri: str, rejects_uri: str, pairs_uri: str,
                  fingerprint: str, llm_fn: LlmFn, force: bool = False) -> ResumableResult:
    """Pairs for the path search, then description + conclusion per linked row, on workers."""
    pairs = write_unique_pairs(linked_uri, pairs_uri, fingerprint=fingerprint, options=cfg.storage,
                               num_cpus=cfg.llm.light_stage_cpus)
    return run_llm_sharded(cfg, llm_fn, linked_uri, step=STEP, prompt=reformat_prompt, output_model=Reformatted,
                           sampling=cfg.reason.reformat, out_uri=out_uri, rejects_uri=rejects_uri, stage=STEP,
                           fingerprint=fingerprint, extra={"unique_pairs": pairs.rows}, force=force,
                           prepare=with_pair_columns)
