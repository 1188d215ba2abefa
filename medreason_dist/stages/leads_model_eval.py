"""Stage `leads_model_eval`: the literature student before and after fine-tuning, on held-out rows.

From the curated ``test`` split (reviews and studies no training row touched) a seeded sample of
``leads.model_eval.per_task`` rows per task; every model answers each instruction through the
engine layer (greedy, resumable per model), and each answer is scored against the row's target
by :func:`medreason_dist.literature.instructions.score`. With ``leads.model_eval.decoding:
schema`` (default) the engine holds each answer to its task's JSON schema
(``instructions.ANSWER_MODELS``), so the scores measure content; ``free`` generates plain text,
so they also measure whether the model learned the format:

- ``parsed``: the answer is JSON of the task's shape;
- ``item_recall``: target items found (characteristics fields; arm, statistic and result
  entries; the search's PICO groups; the screening decision), pooled over the task's rows;
- ``exact``: rows whose answer has every target item (screening: the right decision; search: a
  query that parses and covers every PICO group).

All three are proportions with 95% Wilson intervals, base and fine-tuned side by side. The
held-out loss per task (response tokens' mean negative log-likelihood, the training objective)
is computed for both models on the same rows.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter

import pyarrow as pa

from medreason_dist import storage
from medreason_dist.config import Config, StepSampling
from medreason_dist.literature.instructions import ANSWER_MODELS, TASKS, score
from medreason_dist.literature.metrics import wilson
from medreason_dist.stages.common import LlmFn, run_llm_rows

log = logging.getLogger(__name__)
STEP = "leads_model_eval"

EVAL_SCHEMA = pa.schema([
    ("model", pa.string()), ("task", pa.string()), ("metric", pa.string()), ("hits", pa.int64()),
    ("total", pa.int64()), ("value", pa.float64()), ("low", pa.float64()), ("high", pa.float64()),
])
ITEMS_SCHEMA = pa.schema([
    ("model", pa.string()), ("row_id", pa.string()), ("task", pa.string()), ("answer", pa.string()),
    ("error", pa.string()), ("parsed", pa.bool_()), ("hits", pa.int64()), ("total", pa.int64()),
    ("correct", pa.bool_()),
])
LOSS_SCHEMA = pa.schema([("model", pa.string()), ("task", pa.string()), ("examples", pa.int64()),
                         ("tokens", pa.int64()), ("loss", pa.float64())])


def held_out_sample(instructions: pa.Table, per_task: int, seed: int, max_prompt_chars: int) -> tuple[pa.Table, dict]:
    """Seeded choice of ``per_task`` test rows per task; rows with over-long instructions are counted, not used."""
    rows = [r for r in instructions.select(["row_id", "task", "split", "instruction", "response"]).to_pylist()
            if r["split"] == "test"]
    too_long = {}
    picked = []
    for task in TASKS:
        of_task = [r for r in rows if r["task"] == task]
        fits = [r for r in of_task if len(r["instruction"]) <= max_prompt_chars]
        if len(fits) < len(of_task):
            too_long[task] = len(of_task) - len(fits)
        fits.sort(key=lambda r: hashlib.blake2b(f"{seed}\x1f{r['row_id']}".encode(), digest_size=8).digest())
        picked += fits[:per_task]
    table = pa.Table.from_pylist(picked, schema=pa.schema([(n, pa.string()) for n in
                                                           ("row_id", "task", "split", "instruction", "response")]))
    return table.append_column("key", table.column("row_id")), {"too_long": too_long}


def _prompt(row: dict) -> list[dict[str, str]]:
    return [{"role": "user", "content": row["instruction"]}]


def _metric_rows(model: str, items: list[dict]) -> list[dict]:
    out = []
    for task in TASKS + ("all",):
        mine = [i for i in items if task == "all" or i["task"] == task]
        if not mine:
            continue
        pairs = {"parsed": (sum(i["parsed"] for i in mine), len(mine)),
                 "item_recall": (sum(i["hits"] for i in mine), sum(i["total"] for i in mine)),
                 "exact": (sum(i["correct"] for i in mine), len(mine))}
        for metric, (hits, total) in pairs.items():
            p = wilson(hits, total)
            out.append({"model": model, "task": task, "metric": metric, "hits": hits, "total": total,
                        "value": p.value, "low": p.low, "high": p.high})
    return out


def evaluate_students(cfg: Config, instructions_uri: str, models: dict[str, str], *, out_uri: str, items_uri: str,
                      raw_uri: str, loss_uri: str, fingerprint: str, llm_fn: LlmFn, force: bool = False,
                      loss_paths: dict[str, str] | None = None) -> storage.Manifest:
    settings = cfg.leads.model_eval
    rows, sample_note = held_out_sample(storage.read_table(instructions_uri, options=cfg.storage), settings.per_task,
                                    cfg.run.seed, settings.max_prompt_chars)
    if rows.num_rows == 0:
        raise ValueError("the curated test split has no rows to evaluate on (leads.curate.test_fraction is 0?)")
    sampling = StepSampling(temperature=0.0, max_tokens=settings.max_tokens)
    targets = {r["row_id"]: r for r in rows.to_pylist()}
    items, metrics = [], []
    for name, ref in models.items():
        schema = settings.decoding == "schema"
        run_llm_rows(cfg, llm_fn, rows, step=STEP, prompt=_prompt, output_model=dict(ANSWER_MODELS) if schema else None,
                     model_key="task" if schema else None, sampling=sampling,
                     settings=cfg.llm.model_copy(update={"model": ref}), out_uri=storage.join(raw_uri, name),
                     rejects_uri=storage.join(raw_uri, name + "_errors"), stage=f"leads_model_eval.{name}",
                     fingerprint=storage.config_hash_of([fingerprint, name, ref, settings.decoding]), force=force)
        mine = []
        for r in storage.read_table(storage.join(raw_uri, name), options=cfg.storage).to_pylist():
            answer = r.get(f"{STEP}_result") or ""
            s = score(r["task"], answer, targets[r["row_id"]]["response"])
            mine.append({"model": name, "row_id": r["row_id"], "task": r["task"], "answer": answer, "error": None,
                         **{k: s[k] for k in ("parsed", "hits", "total", "correct")}})
        # Rows the engine could not answer count as unparsed and wrong.
        for r in storage.read_table(storage.join(raw_uri, name + "_errors"), options=cfg.storage).to_pylist():
            t = targets[r["key"]]  # rejects carry the row's key (its row_id)
            s = score(t["task"], "", t["response"])
            mine.append({"model": name, "row_id": r["key"], "task": t["task"], "answer": None,
                         "error": r.get("reason"), **{k: s[k] for k in ("parsed", "hits", "total", "correct")}})
        items += mine
        metrics += _metric_rows(name, mine)
    storage.write_table(items_uri, pa.Table.from_pylist(items, schema=ITEMS_SCHEMA), stage="leads_model_eval.items",
                        config_hash=fingerprint, options=cfg.storage)
    losses = held_out_loss(cfg, rows, loss_paths or {})
    storage.write_table(loss_uri, pa.Table.from_pylist(losses, schema=LOSS_SCHEMA), stage="leads_model_eval.loss",
                        config_hash=fingerprint, options=cfg.storage)
    return storage.write_table(out_uri, pa.Table.from_pylist(metrics, schema=EVAL_SCHEMA), stage="leads_model_eval",
                               config_hash=fingerprint, extra={"models": models, "sample": sample_note,
                                                               "decoding": settings.decoding,
                                                               "rows_per_task": _count(rows)},
                               options=cfg.storage)


def _count(rows: pa.Table) -> dict[str, int]:
    return dict(Counter(rows.column("task").to_pylist()))


def held_out_loss(cfg: Config, rows: pa.Table, model_paths: dict[str, str]) -> list[dict]:
    """Per model and task: mean NLL of the target responses (the SFT loss) on the evaluation rows."""
    from medreason_dist.train.task_loss import per_task_loss

    out = []
    data = rows.to_pylist()
    for name, path in model_paths.items():
        for task, v in sorted(per_task_loss(path, data, max_seq_len=cfg.sft.max_seq_len).items()):
            out.append({"model": name, "task": task, "examples": v["examples"], "tokens": v["tokens"],
                        "loss": v["loss"]})
    return out
