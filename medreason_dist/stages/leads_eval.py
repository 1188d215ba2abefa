"""Stage `leads_eval`: search, screening and extraction figures against gold, with intervals.

- **search**: each accepted PubMed query is executed by the local boolean search
  (:func:`medreason_dist.literature.query.search`, over title, abstract, MeSH, types, keywords)
  against an index: the run's candidate records, or, for a folder of published reviews, the
  pooled included studies of all reviews. Recall = the review's included studies found / all
  of them; precision = included found / everything found. A review whose query was refused
  counts with nothing found. Pooled over reviews, with Wilson intervals.
- **screening**: at ``leads.screen.threshold``, recall and precision of "predicted include" against
  the gold labels; per review the records are ranked by score for recall@k and WSS@95. A
  record the model could not label (a screening reject) is ranked last and predicted excluded,
  so failures cost recall instead of vanishing. Label counts per criterion for the report.
- **extraction**: every gold value of ``leads.review.gold_extraction`` next to the extracted one
  (``leads/eval_items``): text by normalised match (case, punctuation and spacing ignored; the
  gold text inside the extracted one or the reverse counts), numbers within
  ``leads.eval.number_tolerance`` (relative); accuracy per field with Wilson intervals. A study
  whose extraction was rejected counts with nothing extracted.

The figures are computed on the driver from a few columns (ids, labels, scores, extracted
values; no record text): that is at most a row per candidate.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter, defaultdict
from typing import Any

import pyarrow as pa

from medreason_dist import storage
from medreason_dist.literature.metrics import recall_at_k, recall_precision, wilson, wss_at
from medreason_dist.literature.query import QueryError, search
from medreason_dist.literature.records import parse_number

EVAL_SCHEMA = pa.schema([("review_id", pa.string()), ("task", pa.string()), ("metric", pa.string()),
                         ("value", pa.float64()), ("ci_low", pa.float64()), ("ci_high", pa.float64()),
                         ("hits", pa.int64()), ("total", pa.int64()), ("detail", pa.string())])
ITEM_SCHEMA = pa.schema([("review_id", pa.string()), ("pmid", pa.string()), ("kind", pa.string()),
                         ("field", pa.string()), ("gold", pa.string()), ("predicted", pa.string()),
                         ("correct", pa.bool_()), ("method", pa.string())])
ALL = "all"


def _row(review: str, task: str, metric: str, value: float | None, *, lo=None, hi=None, hits=None, total=None,
         detail: str | None = None) -> dict:
    return {"review_id": review, "task": task, "metric": metric, "value": value, "ci_low": lo, "ci_high": hi,
            "hits": hits, "total": total, "detail": detail}


def _prop(review: str, task: str, metric: str, p) -> dict:
    return _row(review, task, metric, p.value, lo=p.low, hi=p.high, hits=p.hits, total=p.total)


# -- search -------------------------------------------------------------------------------------


def search_metrics(queries: list[dict], protocols: list[dict], records: list[dict]) -> list[dict]:
    pooled_titles = [t for p in protocols for t in p["included_titles"] or []]
    if pooled_titles:  # published reviews: the index is every review's included studies
        index = [{"title": t, "id": f"{p['review_id']}:{i}", "owner": p["review_id"]}
                 for p in protocols for i, t in enumerate(p["included_titles"] or [])]
        gold = {p["review_id"]: {r["id"] for r in index if r["owner"] == p["review_id"]} for p in protocols}
    else:
        index = [dict(r, id=r["record_id"]) for r in {r["record_id"]: r for r in records}.values()]
        gold = defaultdict(set)
        for r in records:
            if r["label_included"]:
                gold[r["review_id"]].add(r["record_id"])
    by_review = {q["review_id"]: q for q in queries}
    rows, found_total, retrieved_total, gold_total, accepted = [], 0, 0, 0, 0
    for p in protocols:
        review, wanted = p["review_id"], gold.get(p["review_id"], set())
        q = by_review.get(review)
        hits: set[str] = set()
        if q and q.get("pubmed_query"):
            try:
                hits = {r["id"] for r in search(q["pubmed_query"], index)}
                accepted += 1
            except QueryError as err:  # the stage's grammar accepted it; say so if they ever disagree
                rows.append(_row(review, "search", "query_error", None, detail=str(err)))
        found = len(hits & wanted)
        rows.append(_prop(review, "search", "recall", wilson(found, len(wanted))))
        rows.append(_prop(review, "search", "precision", wilson(found, len(hits))))
        found_total, retrieved_total, gold_total = found_total + found, retrieved_total + len(hits), \
            gold_total + len(wanted)
    rows.append(_prop(ALL, "search", "recall", wilson(found_total, gold_total)))
    rows.append(_prop(ALL, "search", "precision", wilson(found_total, retrieved_total)))
    rows.append(_prop(ALL, "search", "queries_accepted", wilson(accepted, len(protocols))))
    return rows


# -- screening ----------------------------------------------------------------------------------


def screening_metrics(records: list[dict], screened: list[dict], recall_at: list[int]) -> list[dict]:
    results = {(s["review_id"], s["record_id"]): s for s in screened}
    rows: list[dict] = []
    per_review: dict[str, list[tuple[float, bool, bool]]] = defaultdict(list)  # (score, predicted, gold)
    unscreened = Counter()
    for r in records:
        if r["label_included"] is None:
            continue
        s = results.get((r["review_id"], r["record_id"]))
        if s is None:
            unscreened[r["review_id"]] += 1
        score = s["score"] if s else float("-inf")
        per_review[r["review_id"]].append((score, bool(s and s["predicted_include"]), bool(r["label_included"])))
    pooled_pred, pooled_gold, pooled_at = [], [], defaultdict(lambda: [0, 0])
    wss = []
    for review, items in sorted(per_review.items()):
        pred, gold = [i[1] for i in items], [i[2] for i in items]
        for name, p in recall_precision(pred, gold).items():
            rows.append(_prop(review, "screening", name, p))
        ranking = sorted(range(len(items)), key=lambda i: -items[i][0])  # stable: file order on ties
        for k in recall_at:
            p = recall_at_k(ranking, gold, k)
            rows.append(_prop(review, "screening", f"recall@{k}", p))
            pooled_at[k][0] += p.hits
            pooled_at[k][1] += p.total
        w = wss_at(ranking, gold)
        rows.append(_row(review, "screening", "wss@95", w, total=len(items)))
        if w is not None:
            wss.append(w)
        rows.append(_row(review, "screening", "unscreened", float(unscreened[review]), total=len(items)))
        pooled_pred += pred
        pooled_gold += gold
    if pooled_gold:
        for name, p in recall_precision(pooled_pred, pooled_gold).items():
            rows.append(_prop(ALL, "screening", name, p))
        for k, (hits, total) in sorted(pooled_at.items()):
            rows.append(_prop(ALL, "screening", f"recall@{k}", wilson(hits, total)))
        rows.append(_row(ALL, "screening", "wss@95", sum(wss) / len(wss) if wss else None, total=len(wss),
                         detail="mean over reviews"))
    labels = Counter((lab["criterion"], lab["label"]) for s in screened for lab in s["labels"] or [])
    for (criterion, label), n in sorted(labels.items()):
        rows.append(_row(ALL, "screening", f"labels.{criterion}.{label}", float(n), hits=n, total=len(screened)))
    return rows


# -- extraction ---------------------------------------------------------------------------------


def _norm(text: Any) -> str:
    return " ".join(re.sub(r"[^a-z0-9.]+", " ", str(text).lower()).split())


def same_value(gold: Any, predicted: Any, tolerance: float) -> tuple[bool, str]:
    """(correct, method): numbers within a relative tolerance, text by normalised match."""
    if predicted is None:
        return False, "missing"
    g, p = parse_number(gold), parse_number(predicted)
    if g is not None and not isinstance(gold, str):
        return p is not None and abs(p - g) <= tolerance * max(abs(g), 1e-9), "number"
    a, b = _norm(gold), _norm(predicted)
    return bool(a) and bool(b) and (a == b or a in b or b in a), "text"


def _groups(entries: list[dict], key: str) -> dict[tuple[str, str], Any]:
    return {(_norm(e.get(key)), _norm(e.get("group"))): e.get("value") for e in entries or []}


def extraction_items(gold: dict[str, dict], extracted: list[dict], review_of: dict[str, str],
                     tolerance: float) -> list[dict]:
    by_pmid = {e["pmid"]: e for e in extracted if e.get("pmid")}
    items = []

    def item(pmid, kind, field, gold_value, predicted):
        correct, method = same_value(gold_value, predicted, tolerance)
        items.append({"review_id": review_of.get(pmid), "pmid": pmid, "kind": kind, "field": field,
                      "gold": None if gold_value is None else str(gold_value),
                      "predicted": None if predicted is None else str(predicted), "correct": correct,
                      "method": method})

    for pmid, g in sorted(gold.items()):
        e = by_pmid.get(pmid) or {}
        values = {c["field"]: c["value"] for c in e.get("characteristics") or [] if c["reported"]}
        for field, gold_value in (g.get("characteristics") or {}).items():
            item(pmid, "characteristic", field, gold_value, values.get(field))
        arms = {_norm(a["label"]): a["type"] for a in e.get("arms") or []}
        for arm in g.get("arms") or []:
            item(pmid, "arm", f"arm type: {arm['label']}", arm["type"], arms.get(_norm(arm["label"])))
        for kind, key, part in (("participants", "measure", "participants"), ("results", "outcome", "results")):
            found = _groups(e.get(part) or [], key)
            for entry in g.get(part) or []:
                for group, value in (entry.get("values") or {}).items():
                    item(pmid, kind, f"{entry[key]} ({entry.get('paramType', '')}) [{group}]", value,
                         found.get((_norm(entry[key]), _norm(group))))
    return items


def extraction_metrics(items: list[dict]) -> list[dict]:
    rows = []
    by_field: dict[tuple[str, str], list[bool]] = defaultdict(list)
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for it in items:
        name = it["field"] if it["kind"] == "characteristic" else it["kind"]
        by_field[(it["kind"], name)].append(it["correct"])
        by_kind[it["kind"]].append(it["correct"])
    for (kind, name), marks in sorted(by_field.items()):
        rows.append(_prop(ALL, "extraction", f"accuracy.{name}", wilson(sum(marks), len(marks))))
    for kind, marks in sorted(by_kind.items()):
        rows.append(_prop(ALL, "extraction", f"accuracy[{kind}]", wilson(sum(marks), len(marks))))
    every = [it["correct"] for it in items]
    if every:
        rows.append(_prop(ALL, "extraction", "accuracy", wilson(sum(every), len(every))))
    return rows


# -- the stage ----------------------------------------------------------------------------------


def evaluate(cfg, *, protocols_uri: str, records_uri: str, search_uri: str | None, screening_uri: str | None,
             extraction_uri: str | None, gold_extraction: dict | None, out_uri: str, items_uri: str,
             csv_uri: str, fingerprint: str) -> storage.Manifest:
    options = cfg.storage

    def read(uri, columns):
        return storage.read_table(uri, columns=columns, options=options).to_pylist() if uri else []

    protocols = read(protocols_uri, ["review_id", "included_titles"])
    records = read(records_uri, ["review_id", "record_id", "pmid", "title", "abstract", "mesh_terms",
                                 "publication_types", "keywords", "label_included"])
    rows: list[dict] = []
    tasks = []
    if search_uri:
        rows += search_metrics(read(search_uri, ["review_id", "pubmed_query"]), protocols, records)
        tasks.append("search")
    if screening_uri:
        screened = read(screening_uri, ["review_id", "record_id", "score", "predicted_include", "labels"])
        rows += screening_metrics(records, screened, cfg.leads.eval.recall_at)
        tasks.append("screening")
    items: list[dict] = []
    if extraction_uri and gold_extraction:
        extracted = read(extraction_uri, ["pmid", "characteristics", "arms", "participants", "results"])
        review_of = {r["pmid"]: r["review_id"] for r in records if r["pmid"]}
        items = extraction_items(gold_extraction, extracted, review_of, cfg.leads.eval.number_tolerance)
        rows += extraction_metrics(items)
        tasks.append("extraction")
    storage.write_table(items_uri, pa.Table.from_pylist(items, schema=ITEM_SCHEMA), stage="leads_eval.items",
                        config_hash=fingerprint, options=options)
    sink = io.StringIO()  # a few hundred metric rows at most: written here, as CSV for spreadsheets
    writer = csv.DictWriter(sink, fieldnames=EVAL_SCHEMA.names)
    writer.writeheader()
    writer.writerows(rows)
    storage.write_bytes(csv_uri, sink.getvalue().encode(), options)
    headline = {f"{r['task']}.{r['metric']}": r["value"] for r in rows if r["review_id"] == ALL
                and not r["metric"].startswith(("labels.", "accuracy.", "accuracy["))}
    return storage.write_table(out_uri, pa.Table.from_pylist(rows, schema=EVAL_SCHEMA), stage="leads_eval",
                               config_hash=fingerprint, extra={"tasks": tasks, "headline": headline},
                               options=options)


def load_gold_extraction(path: str | None) -> dict | None:
    if not path:
        return None
    from pathlib import Path

    from medreason_dist.config import resolve_packaged

    src = resolve_packaged(path)
    text = storage.read_bytes(src) if "://" in src else Path(src).read_bytes()
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ValueError(f"gold extraction {path}: not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"gold extraction {path}: expected an object keyed by PMID")
    return data
