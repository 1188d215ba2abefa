"""Score model outputs against gold letters: a per-item table and a summary table.

Input rows (dicts or an Arrow table) carry ``id``, ``source`` (the benchmark), ``model``,
``answer_idx`` (gold letter), ``options`` and the generated text in ``output`` (another column
name can be given). An optional ``error`` column (the LLM layer's error reason) marks rows that
produced no text; they are unparsed and wrong, with that reason as the method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import pyarrow as pa

from medreason_dist.eval.extract import extract_answer
from medreason_dist.eval.metrics import summarize

PER_ITEM_SCHEMA = pa.schema([
    pa.field("id", pa.string()),
    pa.field("benchmark", pa.string()),
    pa.field("model", pa.string()),
    pa.field("gold", pa.string()),
    pa.field("pred", pa.string()),
    pa.field("method", pa.string()),
    pa.field("parsed", pa.bool_()),
    pa.field("correct", pa.bool_()),
])

NO_GOLD = "no_gold_letter"


@dataclass
class ScoreResult:
    per_item: pa.Table
    summary: pa.Table


def _rows(pred_rows: pa.Table | Iterable[dict]) -> Iterable[dict]:
    if isinstance(pred_rows, pa.Table):
        return pred_rows.to_pylist()
    return pred_rows


def score_predictions(pred_rows: pa.Table | Iterable[dict[str, Any]], *, output_column: str = "output",
                      error_column: str = "error", method: str = "wilson", include_all: bool = True) -> ScoreResult:
    items = []
    for row in _rows(pred_rows):
        gold = row.get("answer_idx")
        gold = str(gold).strip().upper() if gold not in (None, "") else None
        error = row.get(error_column)
        if error:
            letter, how = None, f"no_output:{error}"
        else:
            letter, how = extract_answer(row.get(output_column), row.get("options"))
        items.append({
            "id": str(row.get("id")), "benchmark": str(row.get("source")), "model": str(row.get("model")),
            "gold": gold, "pred": letter, "method": how if gold else NO_GOLD,
            "parsed": letter is not None,
            # An item without a gold letter cannot be scored right; it is kept and visible.
            "correct": bool(gold is not None and letter == gold),
        })
    per_item = pa.Table.from_pylist(items, schema=PER_ITEM_SCHEMA)
    return ScoreResult(per_item, summarize(per_item, method=method, include_all=include_all))


def write_results(results_uri: str, items_uri: str, result: ScoreResult, *, config_hash: str = "",
                  extra: dict | None = None, tokens: dict[str, int] | None = None, options=None):
    """Commit the summary (main output, ``eval/results``) and the per-item table (``eval/items``).

    ``tokens`` (e.g. ``{"base.input_tokens": ..., "base.output_tokens": ...}``) goes into the
    results manifest, where the report's token/cost section finds it.
    """
    from medreason_dist import storage

    unparsed = int(sum(1 for p in result.per_item.column("parsed").to_pylist() if not p))
    rejects = {"unparsed": unparsed} if unparsed else {}
    storage.write_table(items_uri, result.per_item, stage="eval.items", config_hash=config_hash,
                        rejects=rejects, extra=extra, options=options)
    return storage.write_table(results_uri, result.summary, stage="eval", config_hash=config_hash,
                               rejects=rejects, tokens=tokens,
                               extra={**(extra or {}), "summary": result.summary.to_pylist()}, options=options)
