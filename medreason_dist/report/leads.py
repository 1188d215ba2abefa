"""The literature-mining (LEADS) run as one self-contained HTML file.

Sections follow the pipeline: inputs, search, screening, extraction, the curated instruction
data, the literature student (training and base vs fine-tuned on held-out rows), tokens and cost. Every
dataset is optional: a stage that did not run (or a dataset that cannot be read) turns its part
of the report into a "not run" note, so a partial run still gets a report. Charts and styles come
from :mod:`medreason_dist.report.html`, so both reports look alike.
"""

from __future__ import annotations

import datetime as _dt
import html
import logging
import re
from collections import Counter, defaultdict
from itertools import accumulate
from typing import Any

import pyarrow as pa

from medreason_dist import storage
from medreason_dist.stages.leads_curate import STATS_SCHEMA
from medreason_dist.report.html import _CSS, _NOT_RUN, Prices, _figure, _png, _split_tokens, _table

log = logging.getLogger(__name__)

LABEL_ORDER = ("YES", "PARTIAL", "UNCERTAIN", "NO")
LABEL_COLOURS = {"YES": "#4a9c5d", "PARTIAL": "#9ccc65", "UNCERTAIN": "#f2c14e", "NO": "#d9534f"}
# (stage label, main output whose manifest holds the stage's tokens and wall time)
LLM_STAGES = (("search", "leads/search"), ("screen", "leads/screening"), ("extract", "leads/extraction"))
MAX_MISSES = 50
_STATS_FIELDS = tuple(STATS_SCHEMA)  # wrong extraction items listed; the full list is in leads/eval_items


class _Run:
    """Cached, failure-tolerant access to the run's datasets by name."""

    def __init__(self, uris: dict[str, str], options):
        self.uris, self.options = uris, options
        self._cache: dict[tuple[str, str], Any] = {}

    def _memo(self, what: str, name: str, compute):
        if (what, name) not in self._cache:
            try:
                self._cache[what, name] = compute()
            except (storage.StorageError, OSError) as err:  # an unreachable bucket reads as "not run"
                log.warning("leads report: cannot read %s of %s: %s", what, name, err)
                self._cache[what, name] = None
        return self._cache[what, name]

    def has(self, name: str) -> bool:
        uri = self.uris.get(name)
        return bool(uri) and bool(self._memo("presence", name, lambda: storage.is_readable(uri, self.options)))

    def manifest(self, name: str):
        # A plain Parquet folder is readable but has no manifest: its counts then read as absent.
        return self._memo("manifest", name, lambda: storage.read_manifest(self.uris[name], self.options)) \
            if self.has(name) else None

    def rows(self, name: str, columns: list[str]) -> list[dict] | None:
        """The requested columns as dicts (columns the dataset lacks are left out), or None."""
        if not self.has(name):
            return None
        uri = self.uris[name]
        try:
            table = storage.read_table(uri, columns=columns, options=self.options)
        except (pa.ArrowInvalid, KeyError):  # an older schema without some column: read what exists
            table = storage.read_table(uri, options=self.options)
            table = table.select([c for c in columns if c in table.column_names])
        return table.to_pylist()

    def eval_rows(self, task: str) -> list[dict]:
        return [r for r in self.rows("leads/eval", ["review_id", "task", "metric", "value", "ci_low", "ci_high",
                                                     "hits", "total", "detail"]) or [] if r.get("task") == task]


# -- small formatting helpers -------------------------------------------------------------------


def _tag(name: str, text: str, css_class: str = "") -> str:
    attr = f' class="{css_class}"' if css_class else ""
    return f"<{name}{attr}>{html.escape(text)}</{name}>"


def _counts_table(counts: dict[str, int], what: str = "reason") -> str:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return _table([what, "count"], [[k, int(v)] for k, v in ordered]) if counts else _tag("p", "none")


def _rejects_part(run: _Run, name: str, title: str) -> list[str]:
    """Counts by reason: the manifest's when it kept them, else counted from the reason column."""
    if not run.has(name):
        return [_tag("h3", title), _NOT_RUN]
    m = run.manifest(name)
    counts = dict(m.rejects) if m is not None and m.rejects else dict(
        Counter(str(r.get("reason")) for r in run.rows(name, ["reason"]) or []))
    return [_tag("h3", title), _counts_table(counts)]


def _metric_cells(r: dict) -> list[Any]:
    """Proportions print as percentages with their interval; other metrics (counts, WSS) as numbers."""
    value, lo, hi, hits, total = (r.get(k) for k in ("value", "ci_low", "ci_high", "hits", "total"))
    prop = lo is not None and hi is not None
    shown = "-" if value is None else f"{100 * value:.1f}%" if prop else (
        f"{value:,.0f}" if float(value).is_integer() else f"{value:.3f}")
    counted = f"{hits:,}/{total:,}" if hits is not None and total is not None else (
        f"n={total:,}" if total is not None else "-")
    return [r.get("review_id"), r.get("metric"), shown, f"[{100 * lo:.1f}, {100 * hi:.1f}]" if prop else "-",
            counted, r.get("detail") or ""]


def _metrics_table(rows: list[dict]) -> str:
    # Pooled rows ("all") first: they are the headline; per-review rows follow in name order.
    rows = sorted(rows, key=lambda r: (r.get("review_id") != "all", str(r.get("review_id")), str(r.get("metric"))))
    return _table(["review", "metric", "value", "95% CI", "hits/total", "detail"], [_metric_cells(r) for r in rows])


def _criterion_key(criterion: str) -> tuple:
    # Inclusion criteria before exclusion ones, then numerically (I2 before I10).
    digits = re.findall(r"\d+", criterion)
    return ({"I": 0, "E": 1}.get(criterion[:1].upper(), 2), int(digits[0]) if digits else 0, criterion)


# -- sections -----------------------------------------------------------------------------------


def _section_inputs(run: _Run) -> str:
    protocols = run.rows("leads/protocols", ["review_id", "title", "criteria", "n_fields", "source",
                                             "included_titles"])
    if protocols is None:
        return _NOT_RUN
    records = run.rows("leads/records", ["review_id", "label_included"]) or []
    per_review = defaultdict(lambda: [0, 0])
    for r in records:
        per_review[r.get("review_id")][0] += 1
        per_review[r.get("review_id")][1] += bool(r.get("label_included"))
    parts = [_tag("p", f"{len(protocols):,} reviews, {len(records):,} candidate records.")]
    parts.append(_table(["review", "title", "criteria", "fields", "source", "gold titles", "candidates",
                         "gold included"],
                        [[p.get("review_id"), p.get("title"), ", ".join(p.get("criteria") or []), p.get("n_fields"),
                          p.get("source"), len(p.get("included_titles") or []), *per_review[p.get("review_id")]]
                         for p in protocols]))
    m = run.manifest("leads/records")
    stats = (m.extra or {}).get("stats") if m is not None else None
    if isinstance(stats, dict) and stats:  # e.g. records_read, duplicates_merged, quarantined, full_texts
        parts += [_tag("h3", "Record counts"), _table(["count", "value"], [[k, v] for k, v in stats.items()])]
    return "\n".join(parts + _rejects_part(run, "leads/quarantine", "Quarantined by reason"))


def _section_search(run: _Run) -> str:
    queries = run.rows("leads/search", ["review_id", "pubmed_query", "ctgov_cond", "ctgov_intr", "ctgov_term"])
    refused = run.rows("leads/search_rejects", ["id", "reason", "detail"])
    if queries is None and refused is None:
        return _NOT_RUN
    parts = [_tag("p", f"{len(queries or []):,} reviews with an accepted query, {len(refused or []):,} refused.")]
    ctgov = lambda q: "; ".join(f"{k}: {q[c]}" for k, c in (("condition", "ctgov_cond"), ("intervention", "ctgov_intr"),
                                                               ("term", "ctgov_term")) if q.get(c))
    rows = [[q.get("review_id"), "accepted", q.get("pubmed_query"), ctgov(q) or "-"] for q in queries or []]
    rows += [[r.get("id"), f"refused: {r.get('reason')}", r.get("detail") or "", "-"] for r in refused or []]
    parts.append(_table(["review", "status", "PubMed query (or why refused)", "ClinicalTrials.gov query"], rows))
    metrics = run.eval_rows("search")
    parts += [_tag("h3", "Search recall and precision"), _metrics_table(metrics) if metrics else _NOT_RUN]
    m = run.manifest("leads/retrieved")
    if m is not None:
        counts = (m.extra or {}).get("counts") or {}
        queries = (m.extra or {}).get("queries", "?")
        parts += [_tag("h3", "Retrieved"), _tag("p", f"{m.rows:,} records from {queries} queries.")]
        if isinstance(counts, dict) and counts:
            parts.append(_table(["count", "value"], [[k, v] for k, v in counts.items()]))
    errors = run.rows("leads/retrieve_errors", ["review_id", "service", "reason", "detail"])
    if errors:
        parts += [_tag("h3", "Retrieve errors"), _counts_table(dict(Counter(f"{e.get('service')}: {e.get('reason')}"
                                                                     for e in errors)), "service: reason")]
    return "\n".join(parts)


def _label_chart(counts: dict[str, Counter]) -> str:
    from matplotlib.ticker import MaxNLocator

    criteria = sorted(counts, key=_criterion_key)
    fig, ax = _figure(7.5, 0.8 + 0.4 * len(criteria))
    left = [0] * len(criteria)
    names = criteria[::-1]  # barh draws bottom-up; reverse so I1 sits on top
    for label in LABEL_ORDER:
        values = [counts[c][label] for c in names]
        ax.barh(names, values, left=left, color=LABEL_COLOURS[label], label=label)
        left = [a + b for a, b in zip(left, values)]
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts of records: no half ticks
    ax.set_xlabel("records")
    ax.set_title("Screening labels per criterion")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside, so no bar is hidden
    return _png(fig)


def _recall_curve(screened: list[dict]) -> str | None:
    by_review: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for s in screened:
        if s.get("label_included") is not None:  # only records with a gold decision can be counted
            score = s.get("score")
            by_review[s.get("review_id")].append((float("-inf") if score is None else score, bool(s["label_included"])))
    fig, ax = _figure(6.5, 4)
    drawn = 0
    for review, items in sorted(by_review.items(), key=lambda kv: str(kv[0])):
        positives = sum(g for _, g in items)
        if not positives:
            continue
        ranked = [gold for _, gold in sorted(items, key=lambda i: -i[0])]  # stable sort: ties keep file order
        ax.plot([i / len(ranked) for i in range(len(ranked) + 1)],
                [0.0] + [found / positives for found in accumulate(ranked)], label=str(review))
        drawn += 1
    if not drawn:
        return None
    ax.plot([0, 1], [0, 1], linestyle="--", color="#999", label="random order")
    ax.set_xlabel("share of records screened (by score)")
    ax.set_ylabel("share of included studies found")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Ranking recall curve")
    ax.legend(fontsize=7)
    return _png(fig)


def _section_screening(run: _Run) -> str:
    screened = run.rows("leads/screening", ["review_id", "record_id", "label_included", "labels",
                                            "score", "predicted_include"])
    if screened is None:
        return _NOT_RUN
    included = sum(bool(s.get("predicted_include")) for s in screened)
    parts = [_tag("p", f"{len(screened):,} records screened, {included:,} predicted to be included.")]
    counts: dict[str, Counter] = defaultdict(Counter)
    for s in screened:
        for lab in s.get("labels") or []:
            counts[str(lab.get("criterion"))][str(lab.get("label"))] += 1
    parts.append(_tag("h3", "Label distribution per criterion"))
    if counts:
        others = sorted({lab for c in counts.values() for lab in c} - set(LABEL_ORDER))
        header = ["criterion", *LABEL_ORDER, *others]
        parts.append(_label_chart(counts))
        parts.append(_table(header, [[c, *(counts[c][lab] for lab in header[1:])]
                                     for c in sorted(counts, key=_criterion_key)]))
    else:
        parts.append(_tag("p", "no criterion labels"))
    parts.append(_tag("h3", "Ranking recall curve"))
    curve = _recall_curve(screened)
    parts.append(curve or _tag("p", "no review has gold decisions with at least one included record"))
    metrics = [r for r in run.eval_rows("screening") if not str(r.get("metric")).startswith("labels.")]
    parts += [_tag("h3", "Screening metrics"), _metrics_table(metrics) if metrics else _NOT_RUN]
    return "\n".join(parts + _rejects_part(run, "leads/screen_rejects", "Screening rejects by reason"))


def _accuracy_chart(rows: list[dict]) -> str:
    fig, ax = _figure(7.5, 0.8 + 0.35 * len(rows))
    rows = rows[::-1]  # barh draws bottom-up; reverse so the table's first row sits on top
    values = [r["value"] for r in rows]
    low = [100 * max(0.0, v - (r["ci_low"] if r.get("ci_low") is not None else v)) for v, r in zip(values, rows)]
    high = [100 * max(0.0, (r["ci_high"] if r.get("ci_high") is not None else v) - v) for v, r in zip(values, rows)]
    names = [str(r["metric"]) if r.get("review_id") == "all" else f"{r.get('review_id')}: {r['metric']}" for r in rows]
    ax.barh(names, [100 * v for v in values], xerr=[low, high], capsize=3,
            color="#3b7dd8")
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy (%) with 95% interval")
    ax.set_title("Extraction accuracy per field")
    return _png(fig)


def _section_extraction(run: _Run) -> str:
    extracted = run.rows("leads/extraction", ["review_id", "record_id", "chunks", "chunks_failed", "conflicts",
                                              "unsupported"])
    if extracted is None:
        return _NOT_RUN
    total = lambda col: sum(int(r.get(col) or 0) for r in extracted)
    parts = [_tag("p", f"{len(extracted):,} full texts extracted from {total('chunks'):,} chunks "
                f"({total('chunks_failed'):,} failed); {total('conflicts'):,} conflicting and "
                f"{total('unsupported'):,} unsupported values.")]
    accuracy = [r for r in run.eval_rows("extraction") if str(r.get("metric")).startswith("accuracy")]
    accuracy = sorted(accuracy, key=lambda r: (r.get("review_id") != "all", str(r.get("metric"))))
    parts.append(_tag("h3", "Accuracy per field"))
    if accuracy:
        parts += [_metrics_table(accuracy), _accuracy_chart([r for r in accuracy if r.get("value") is not None])]
    else:
        parts.append(_NOT_RUN)
    items = run.rows("leads/eval_items", ["review_id", "pmid", "kind", "field", "gold", "predicted", "correct",
                                          "method"])
    if items is not None:
        wrong = [i for i in items if i.get("correct") is False]
        parts.append(_tag("h3", f"Wrong extractions ({len(wrong):,} of {len(items):,} compared)"))
        parts.append(_table(["review", "pmid", "kind", "field", "gold", "predicted", "method"],
                            [[i.get(c) for c in ("review_id", "pmid", "kind", "field", "gold", "predicted", "method")]
                             for i in wrong[:MAX_MISSES]]) if wrong else _tag("p", "none"))
        if len(wrong) > MAX_MISSES:
            parts.append(_tag("p", f"first {MAX_MISSES} shown; all are in leads/eval_items.", "note"))
    return "\n".join(parts + _rejects_part(run, "leads/extract_rejects", "Extraction rejects by reason"))


def _section_tokens(run: _Run, prices: Prices) -> str:
    rows, startups = [], []
    for label, name in LLM_STAGES:
        m = run.manifest(name)
        if m is None:
            continue
        inp, out = _split_tokens(m.tokens or {})
        extra, cost = m.extra or {}, (inp * prices.input_usd_per_mtok + out * prices.output_usd_per_mtok) / 1e6
        wall = extra.get("wall_s")
        rows.append([label, name, inp, out, cost, f"{wall:,.1f}" if isinstance(wall, (int, float)) else "-"])
        startups += [[label, f"{float(s.get('seconds') or 0):,.1f}", "ok" if s.get("ok", True) else "failed"]
                     for s in extra.get("engine_startups") or [] if isinstance(s, dict)]
    if not rows:
        return _NOT_RUN
    rows.append(["total", "", sum(r[2] for r in rows), sum(r[3] for r in rows), sum(r[4] for r in rows), ""])
    parts = [_table(["stage", "dataset", "input tokens", "output tokens", "est. cost", "wall s"],
                    [[*r[:4], f"${r[4]:,.4f}", r[5]] for r in rows]),
             _tag("p", f"Estimated at ${prices.input_usd_per_mtok}/M input and ${prices.output_usd_per_mtok}/M output "
                   f"tokens ({prices.note}).", "note"),
             _tag("h3", "Engine start-ups"),
             _table(["stage", "seconds", "result"], startups) if startups else _tag("p", "none recorded")]
    return "\n".join(parts)


def _section_instructions(run: _Run) -> str:
    m = run.manifest("leads/instructions")
    if m is None:
        return _NOT_RUN
    counts = (m.extra or {}).get("counts", {})
    inputs = counts.get("inputs", {})
    parts = [_tag("p", f"{m.rows:,} instruction rows from {inputs.get('reviews', 0):,} reviews, "
                       f"{inputs.get('publications', 0):,} publications and {inputs.get('registry', 0):,} registry "
                       f"records in {counts.get('seconds', 0):,.0f} s (Spark). Splits are by review: no study of a "
                       "test review is in a train row.")]
    stats = run.rows("leads/curate_stats", [f.name for f in _STATS_FIELDS]) or []
    tokens = lambda r: "-" if not r.get("token_sample") else \
        f"{r['total_tokens_p50']} / {r['total_tokens_p95']} / {r['total_tokens_max']} (n={r['token_sample']:,})"
    parts.append(_table(["task", "split", "rows", "instruction words p50 / p95 / max", "response words p50 / p95 / max",
                         "tokens, instruction + response: p50 / p95 / max (sample)"],
                        [[r["task"], r["split"], r["rows"],
                          f"{r['instruction_words_p50']} / {r['instruction_words_p95']} / {r['instruction_words_max']}",
                          f"{r['response_words_p50']} / {r['response_words_p95']} / {r['response_words_max']}",
                          tokens(r)] for r in stats]))
    parts += [_tag("h3", "Removed by hygiene"), _counts_table(counts.get("removed_by_reason") or {}),
              _tag("h3", "Corpus rows quarantined"), _counts_table(counts.get("quarantine_by_reason") or {})]
    sources = counts.get("decontaminated_against") or []
    if sources:
        parts.append(_tag("p", "Decontaminated against: " + "; ".join(
            f"{s.get('source')} ({s.get('reviews')} reviews{', ' + s['note'] if s.get('note') else ''})"
            for s in sources), "note"))
    return "\n".join(parts)


def _section_student(run: _Run) -> str:
    parts = []
    train = run.manifest("leads/train/loss")
    if train is None and not run.has("leads/model_eval"):
        return _NOT_RUN
    if train is None:
        parts.append(_tag("p", "Training: not run.", "not-run"))
    else:
        extra = train.extra or {}
        mixture = (extra.get("mixture") or {}).get("tasks") or {}
        summary = extra.get("summary") or {}
        parts.append(_tag("p", f"Fine-tuned on {sum(int(v.get('taken') or 0) for v in mixture.values()):,} rows of the "
                               f"train split, {len(extra.get('loss_history') or [])} steps, "
                               f"{int((train.tokens or {}).get('train', 0)):,} tokens, "
                               f"{float(summary.get('wall_s') or 0):,.0f} s."))
        parts.append(_table(["task", "weight", "available", "trained on"],
                            [[t, v.get("weight"), v.get("available"), v.get("taken")] for t, v in mixture.items()]))
        history = extra.get("loss_history") or []
        if history:
            fig, ax = _figure(6.5, 2.6)
            ax.plot([h[0] for h in history], [h[1] for h in history], color="#3b7dd8")
            ax.set_xlabel("step")
            ax.set_ylabel("training loss")
            parts.append(_png(fig))
    results = run.rows("leads/model_eval", ["model", "task", "metric", "hits", "total", "value", "low", "high"])
    if results is None:
        parts.append(_tag("p", "Evaluation: not run.", "not-run"))
        return "\n".join(parts)
    models = sorted({r["model"] for r in results}, key=lambda m: (m != "base", m))
    by = {(r["model"], r["task"], r["metric"]): r for r in results}
    cell = lambda r: "-" if r is None else f"{100 * r['value']:.1f}% [{100 * r['low']:.1f}, {100 * r['high']:.1f}] " \
                                          f"({r['hits']}/{r['total']})"
    tasks = list(dict.fromkeys(r["task"] for r in results))
    parts.append(_tag("h3", "Held-out rows: base vs fine-tuned (95% Wilson intervals)"))
    for metric, label in (("exact", "every target item right"), ("item_recall", "target items found"),
                          ("parsed", "answer is JSON of the task's shape")):
        parts.append(_tag("p", f"{metric}: {label}", "note"))
        parts.append(_table(["task"] + models, [[t] + [cell(by.get((m, t, metric))) for m in models] for t in tasks]))
    losses = run.rows("leads/task_loss", ["model", "task", "examples", "tokens", "loss"]) or []
    if losses:
        lmodels = sorted({r["model"] for r in losses}, key=lambda m: (m != "base", m))
        lby = {(r["model"], r["task"]): r for r in losses}
        parts.append(_tag("h3", "Held-out loss per task (mean NLL per response token)"))
        parts.append(_table(["task", "rows"] + lmodels,
                            [[t, (lby.get((lmodels[0], t)) or {}).get("examples")]
                             + ["-" if (lby.get((m, t)) or {}).get("loss") is None else f"{lby[(m, t)]['loss']:.3f}"
                                for m in lmodels] for t in dict.fromkeys(r["task"] for r in losses)]))
    return "\n".join(parts)


def _render_page(run: _Run, *, prices: Prices | None = None, run_name: str = "") -> str:
    sections = [("inputs", "Inputs", _section_inputs), ("search", "Search", _section_search),
                ("screening", "Screening", _section_screening), ("extraction", "Extraction", _section_extraction),
                ("instructions", "Instruction data", _section_instructions),
                ("student", "Literature student", _section_student),
                ("tokens", "Tokens and cost", lambda r: _section_tokens(r, prices or Prices()))]
    body = []
    for anchor, title, render in sections:
        try:
            content = render(run)
        except Exception as err:  # one broken section must not lose the rest of the report
            log.exception("leads report section %s failed", anchor)
            content = _tag("p", f"could not render: {type(err).__name__}: {err}", "not-run")
        body.append(f'<section id="{anchor}"><h2>{html.escape(title)}</h2>\n{content}\n</section>')
    title = f"LEADS literature report: {run_name}" if run_name else "LEADS literature report"
    generated = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            f"<h1>{html.escape(title)}</h1><p class=\"meta\">generated {html.escape(generated)}</p>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_leads_report(uris: dict[str, str], report_uri: str, *, options=None, run_name: str = "",
                       prices: Prices | None = None) -> str:
    """Render one self-contained HTML file from the datasets in ``uris`` (name -> URI; any may be
    missing) and write it to ``report_uri``; return ``report_uri``."""
    page = _render_page(_Run(dict(uris), options), prices=prices, run_name=run_name)
    storage.write_bytes(report_uri, page.encode("utf-8"), options)
    return report_uri
