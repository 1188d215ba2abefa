"""One self-contained HTML report per run.

:func:`collect_run_summary` reads whatever committed manifests (and a few small columns) exist
under a run root into a :class:`RunSummary`; :func:`build_report` renders it. Plots are drawn
with matplotlib's object API (no pyplot global state) and embedded as base64 PNG, styles are
inline: the file opens anywhere with no network. A section whose data is missing says
"not run" instead of failing.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

def pipeline_datasets() -> list[tuple[str, str]]:
    """(main dataset, stage name) in pipeline order, from the dataset declarations."""
    from medreason_dist.datasets import KG_EDGES, MAIN_OUTPUTS

    out = []
    for ref in MAIN_OUTPUTS:
        if ref.owner == "report":
            continue
        out.append((ref.name, ref.owner if ref.owner != "kg" else "kg (nodes)"))
        if ref.owner == "kg":
            out.append((KG_EDGES.name, "kg (edges)"))
    return out


# Side datasets whose reject counts belong to a stage above.
SIDE_DATASETS: list[tuple[str, str]] = [
    ("sources/quarantine", "sources"),
    ("eval_sets/quarantine", "eval_sets"),
    ("reason/rejects", "reason"),
    ("train/decontam_rejects", "decontaminate"),
    ("eval/items", "eval"),
]
# Funnel rows: the QA-row path through the pipeline (KG and eval datasets count other things).
FUNNEL_LABELS = ["sources", "extract", "link", "reformat", "prune", "generate", "verify", "decontaminate"]

CITE_LIST_COLUMNS = ("paths_used", "kg_paths", "used_paths", "paths", "cited_paths")
CITE_FLAG_COLUMNS = ("cites_kg_path", "has_path", "grounded")
PATHLESS_FLAG_COLUMNS = ("pathless",)
LOSS_DATASETS = ("train/loss",)


class Prices(BaseModel):
    """USD per million tokens used when a manifest carries no cost of its own."""

    model_config = ConfigDict(extra="forbid")
    input_usd_per_mtok: float = Field(0.15, ge=0)
    output_usd_per_mtok: float = Field(0.60, ge=0)
    note: str = "illustrative hosted-API prices; set real ones per model"


class StageStats(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str
    label: str
    stage: str = ""
    rows: int
    rejects: dict[str, int] = Field(default_factory=dict)
    tokens: dict[str, int] = Field(default_factory=dict)
    cost_usd: float | None = None  # from the manifest when the stage computed it
    seconds: float | None = None
    created_at: str = ""


class CitationStats(BaseModel):
    model_config = ConfigDict(extra="forbid")
    with_path: int
    total: int


class GroundingStats(BaseModel):
    """What the link stage found and how well (reason.grounding; gold links when configured)."""

    model_config = ConfigDict(extra="forbid")
    mode: str | None = None
    questions: int
    links_by_method: dict[str, int] = Field(default_factory=dict)
    generic_skipped: int = 0
    questions_with_path: int | None = None  # rows with >= 1 question->answer KG path (after prune)
    questions_checked_for_paths: int | None = None
    gold: dict[str, Any] | None = None  # gold.* counts of the link manifest


class RunSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_name: str = ""
    out_uri: str = ""
    generated_at: str = Field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    stages: list[StageStats] = Field(default_factory=list)
    side: list[StageStats] = Field(default_factory=list)
    path_hops: dict[int, int] | None = None  # hops -> number of paths
    citations: CitationStats | None = None
    grounding: GroundingStats | None = None
    sft_loss: list[tuple[int, float]] | None = None  # (step, loss)
    eval_summary: list[dict[str, Any]] | None = None  # rows of eval.metrics.SUMMARY_SCHEMA
    decontamination: dict[str, Any] | None = None
    prices: Prices = Field(default_factory=Prices)


# --------------------------------------------------------------------------------------------
# Collecting


def _manifest(uri: str, options) -> Any | None:
    from medreason_dist import storage

    try:
        return storage.read_manifest(uri, options)
    except storage.IncompleteDatasetError:
        return None
    except (storage.StorageError, OSError) as err:
        log.warning("report: cannot read manifest %s: %s", uri, err)
        return None


def _stats(rel: str, label: str, m) -> StageStats:
    extra = m.extra or {}
    cost = extra.get("cost_usd", extra.get("estimated_cost_usd"))
    seconds = extra.get("seconds", extra.get("wall_seconds"))
    return StageStats(dataset=rel, label=label, stage=m.stage, rows=m.rows, rejects=dict(m.rejects),
                      tokens={k: int(v) for k, v in (m.tokens or {}).items()},
                      cost_usd=float(cost) if isinstance(cost, (int, float)) else None,
                      seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
                      created_at=m.created_at)


def _hops(uri: str, options) -> dict[int, int] | None:
    from medreason_dist import storage
    import pyarrow.compute as pc

    try:
        table = storage.read_table(uri, columns=["hops"], options=options)
    except Exception as err:  # a paths table without hops is reported as missing, not fatal
        log.warning("report: no path lengths from %s: %s", uri, err)
        return None
    counts = pc.value_counts(table.column("hops").combine_chunks().drop_null())
    return {int(c["values"].as_py()): int(c["counts"].as_py()) for c in counts}


def _citations(uri: str, m, options) -> CitationStats | None:
    from medreason_dist import storage
    import pyarrow.compute as pc

    extra = m.extra or {}
    if isinstance(extra.get("citing_path_rows"), int):
        return CitationStats(with_path=extra["citing_path_rows"], total=m.rows)
    # The manifest's schema is pyarrow's text form: top-level fields are the unindented lines.
    columns = {line.split(":", 1)[0] for line in (m.schema_ or "").splitlines()
               if line and not line[0].isspace() and ":" in line}
    try:
        for col in CITE_LIST_COLUMNS:
            if col in columns:
                t = storage.read_table(uri, columns=[col], options=options).column(col)
                lengths = pc.fill_null(pc.list_value_length(t), 0)
                return CitationStats(with_path=int(pc.sum(pc.greater(lengths, 0)).as_py() or 0), total=len(t))
        for col in CITE_FLAG_COLUMNS + PATHLESS_FLAG_COLUMNS:
            if col in columns:
                t = pc.fill_null(storage.read_table(uri, columns=[col], options=options).column(col), False)
                n_true = int(pc.sum(t).as_py() or 0)
                with_path = len(t) - n_true if col in PATHLESS_FLAG_COLUMNS else n_true
                return CitationStats(with_path=with_path, total=len(t))
    except Exception as err:
        log.warning("report: cannot compute path citations from %s: %s", uri, err)
    return None


def _grounding(root: str, manifests: dict, options) -> GroundingStats:
    from medreason_dist import storage
    import pyarrow.compute as pc

    extra = manifests["reason/link"].extra or {}
    stats = GroundingStats(
        mode=extra.get("grounding"), questions=manifests["reason/link"].rows,
        links_by_method={k[len("methods."):]: int(v) for k, v in extra.items() if k.startswith("methods.")},
        generic_skipped=int(extra.get("dictionary_generic_skipped", 0)),
        gold={k[len("gold."):]: int(v) for k, v in extra.items() if k.startswith("gold.")} or None)
    if "reason/prune" in manifests:
        try:
            kept = storage.read_table(storage.join(root, "reason/prune"), columns=["n_kept_paths"],
                                      options=options).column("n_kept_paths")
            stats.questions_with_path = int(pc.sum(pc.greater(pc.fill_null(kept, 0), 0)).as_py() or 0)
            stats.questions_checked_for_paths = len(kept)
        except Exception as err:
            log.warning("report: cannot count questions with paths: %s", err)
    return stats


def _loss_from(value: Any) -> list[tuple[int, float]] | None:
    if not isinstance(value, list) or not value:
        return None
    out = []
    for i, item in enumerate(value):
        if isinstance(item, (int, float)):
            out.append((i + 1, float(item)))
        elif isinstance(item, dict) and "loss" in item:
            out.append((int(item.get("step", i + 1)), float(item["loss"])))
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            out.append((int(item[0]), float(item[1])))
    return out or None


def collect_run_summary(out_uri: str, options=None, *, prices: Prices | None = None,
                        run_name: str = "") -> RunSummary:
    """Gather everything the report shows from the manifests (and small columns) under ``out_uri``."""
    from medreason_dist import storage

    root = storage.check_uri(out_uri)
    summary = RunSummary(run_name=run_name or root.rstrip("/").rsplit("/", 1)[-1], out_uri=root,
                         prices=prices or Prices())
    manifests = {}
    for rel, label in pipeline_datasets():
        m = _manifest(storage.join(root, rel), options)
        if m is not None:
            manifests[rel] = m
            summary.stages.append(_stats(rel, label, m))
    for rel, label in SIDE_DATASETS:
        m = _manifest(storage.join(root, rel), options)
        if m is not None:
            manifests[rel] = m
            summary.side.append(_stats(rel, label, m))

    if "reason/paths" in manifests:
        summary.path_hops = _hops(storage.join(root, "reason/paths"), options)
    if "reason/sft" in manifests:
        summary.citations = _citations(storage.join(root, "reason/sft"), manifests["reason/sft"], options)
    if "reason/link" in manifests:
        summary.grounding = _grounding(root, manifests, options)
    if "train/model" in manifests:
        extra = manifests["train/model"].extra or {}
        summary.sft_loss = _loss_from(extra.get("loss_history") or extra.get("losses"))
    if summary.sft_loss is None:
        for rel in LOSS_DATASETS:
            m = _manifest(storage.join(root, rel), options)
            if m is None:
                continue
            try:
                t = storage.read_table(storage.join(root, rel), columns=["step", "loss"], options=options)
                summary.sft_loss = _loss_from([{"step": s, "loss": l} for s, l in
                                               zip(t["step"].to_pylist(), t["loss"].to_pylist()) if l is not None])
                break
            except Exception as err:
                log.warning("report: cannot read loss history %s: %s", rel, err)
    if "eval/results" in manifests:
        try:
            summary.eval_summary = storage.read_table(storage.join(root, "eval/results"), options=options).to_pylist()
        except Exception as err:
            log.warning("report: cannot read eval results: %s", err)
    if "train/sft_clean" in manifests:
        dec = (manifests["train/sft_clean"].extra or {}).get("decontamination")
        summary.decontamination = dec if isinstance(dec, dict) else None
    return summary


# --------------------------------------------------------------------------------------------
# Rendering helpers

_NOT_RUN = '<p class="not-run">not run</p>'


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _figure(width: float = 7.5, height: float = 3.4):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot(1, 1, 1)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    esc = lambda v: html.escape("" if v is None else (f"{v:,}" if isinstance(v, int) else str(v)))
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _split_tokens(tokens: dict[str, int]) -> tuple[int, int]:
    inp = sum(v for k, v in tokens.items() if any(s in k.lower() for s in ("input", "prompt")))
    out = sum(v for k, v in tokens.items() if any(s in k.lower() for s in ("output", "completion", "generated")))
    return inp, out


# --------------------------------------------------------------------------------------------
# Sections


def _section_funnel(s: RunSummary) -> str:
    if not s.stages:
        return _NOT_RUN
    rejects_by_label: dict[str, dict[str, int]] = {}
    for st in s.stages + s.side:
        if st.dataset == "eval/items":
            continue  # unparsed answers are reported with the evaluation, not as row rejects
        bucket = rejects_by_label.setdefault(st.label, {})
        for reason, n in st.rejects.items():
            bucket[reason] = max(bucket.get(reason, 0), n)  # main and side manifests repeat counts
    rows, funnel = [], []
    previous = None
    for st in s.stages:
        rej = rejects_by_label.get(st.label, {})
        rows_in = previous if st.label in FUNNEL_LABELS and previous is not None else None
        rows.append([st.label, st.dataset, rows_in, st.rows, sum(rej.values()),
                     ", ".join(f"{k}: {v:,}" for k, v in sorted(rej.items(), key=lambda kv: -kv[1])) or "-"])
        if st.label in FUNNEL_LABELS:
            funnel.append((st.label, st.rows, rej))
            previous = st.rows
    parts = [_table(["stage", "dataset", "rows in", "rows out", "rejected", "rejects by reason"], rows)]
    if funnel:
        fig, ax = _figure(7.5, 0.5 + 0.45 * len(funnel))
        labels = [f[0] for f in funnel][::-1]
        kept = [f[1] for f in funnel][::-1]
        rej = [sum(f[2].values()) for f in funnel][::-1]
        ax.barh(labels, kept, color="#3b7dd8", label="rows out")
        ax.barh(labels, rej, left=kept, color="#e07b39", label="rejected")
        ax.set_xlabel("rows")
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title("Stage funnel (QA rows)")
        parts.append(_png(fig))
    reasons = sorted({r for _, _, rej in funnel for r in rej})
    if reasons:
        fig, ax = _figure(7.5, 3.2)
        labels = [f[0] for f in funnel]
        bottom = [0] * len(labels)
        for reason in reasons:
            vals = [f[2].get(reason, 0) for f in funnel]
            ax.bar(labels, vals, bottom=bottom, label=reason)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_ylabel("rejected rows")
        ax.set_title("Rejects by reason")
        ax.tick_params(axis="x", rotation=30)
        ax.legend(fontsize=7, ncol=2)
        parts.append(_png(fig))
    return "\n".join(parts)


def _section_paths(s: RunSummary) -> str:
    if not s.path_hops:
        return _NOT_RUN
    hops = sorted(s.path_hops)
    fig, ax = _figure(6, 3)
    ax.bar([str(h) for h in hops], [s.path_hops[h] for h in hops], color="#4a9c5d")
    ax.set_xlabel("hops")
    ax.set_ylabel("paths")
    ax.set_title("KG path length")
    total = sum(s.path_hops.values())
    return _png(fig) + _table(["hops", "paths", "share"],
                              [[h, s.path_hops[h], f"{100 * s.path_hops[h] / total:.1f}%"] for h in hops])


def _section_citations(s: RunSummary) -> str:
    c = s.citations
    if c is None:
        return _NOT_RUN
    share = c.with_path / c.total if c.total else 0.0
    return (f'<p class="big">{100 * share:.1f}%</p><p>{c.with_path:,} of {c.total:,} kept reasonings cite '
            f"at least one KG path.</p>")


def _share(part: int, total: int) -> str:
    from medreason_dist.eval.metrics import wilson_interval

    if not total:
        return "n/a"
    lo, hi = wilson_interval(part, total)
    return f"{100 * part / total:.1f}% [{100 * lo:.0f}, {100 * hi:.0f}]"


def _section_grounding(s: RunSummary) -> str:
    g = s.grounding
    if g is None:
        return _NOT_RUN
    parts = [f"<p>Grounding <b>{html.escape(g.mode or 'llm')}</b> over {g.questions:,} questions; "
             f"{g.generic_skipped:,} generic-only dictionary spans were not linked.</p>"]
    parts.append(_table(["method", "links"], [[m, n] for m, n in sorted(g.links_by_method.items())]))
    rows = []
    if g.questions_checked_for_paths is not None:
        rows.append(["questions with >= 1 question->answer KG path", f"{g.questions_with_path:,} of "
                     f"{g.questions_checked_for_paths:,}", _share(g.questions_with_path or 0,
                                                                  g.questions_checked_for_paths)])
    if s.citations is not None:
        rows.append(["kept reasonings citing a KG path", f"{s.citations.with_path:,} of {s.citations.total:,}",
                     _share(s.citations.with_path, s.citations.total)])
    if g.gold:
        tp, fp, fn = g.gold.get("tp", 0), g.gold.get("fp", 0), g.gold.get("fn", 0)
        rows.append([f"link precision vs gold ({g.gold.get('questions', 0)} questions)", f"{tp} of {tp + fp}",
                     _share(tp, tp + fp)])
        rows.append(["link recall vs gold", f"{tp} of {tp + fn}", _share(tp, tp + fn)])
        for family in ("dictionary", "llm"):
            ftp, ffp = g.gold.get(f"tp.{family}", 0), g.gold.get(f"fp.{family}", 0)
            if ftp + ffp:
                rows.append([f"precision of {family} links", f"{ftp} of {ftp + ffp}", _share(ftp, ftp + ffp)])
    if rows:
        parts.append(_table(["measure", "count", "share [95% CI]"], rows))
    return "".join(parts)


def _section_tokens(s: RunSummary) -> str:
    with_tokens = [st for st in s.stages + s.side if st.tokens or st.cost_usd is not None]
    if not with_tokens:
        return _NOT_RUN
    p = s.prices
    rows, labels, costs = [], [], []
    for st in with_tokens:
        inp, out = _split_tokens(st.tokens)
        est = st.cost_usd if st.cost_usd is not None else (inp * p.input_usd_per_mtok + out * p.output_usd_per_mtok) / 1e6
        rows.append([st.label, st.dataset, inp, out, f"${est:,.4f}",
                     "manifest" if st.cost_usd is not None else "price table"])
        labels.append(st.label)
        costs.append(est)
    rows.append(["total", "", sum(r[2] for r in rows), sum(r[3] for r in rows), f"${sum(costs):,.4f}", ""])
    fig, ax = _figure(7, 3)
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], [r[2] for r in rows[:-1]], width=0.4, label="input tokens", color="#3b7dd8")
    ax.bar([i + 0.2 for i in x], [r[3] for r in rows[:-1]], width=0.4, label="output tokens", color="#e07b39")
    ax.set_xticks(list(x), labels, rotation=30)
    ax.set_ylabel("tokens")
    ax.legend(fontsize=8)
    ax.set_title("Tokens per stage")
    note = (f"<p class=\"note\">Estimated at ${p.input_usd_per_mtok}/M input and ${p.output_usd_per_mtok}/M output "
            f"tokens ({html.escape(p.note)}) unless the stage recorded its own cost.</p>")
    return _table(["stage", "dataset", "input tokens", "output tokens", "est. cost", "cost from"], rows) + _png(fig) + note


def _section_sft(s: RunSummary) -> str:
    if not s.sft_loss:
        return _NOT_RUN
    steps = [a for a, _ in s.sft_loss]
    losses = [b for _, b in s.sft_loss]
    fig, ax = _figure(6.5, 3)
    ax.plot(steps, losses, color="#7a4fc0", marker="." if len(steps) < 60 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("SFT loss")
    return _png(fig) + f"<p>{len(steps)} logged steps; first loss {losses[0]:.4f}, last {losses[-1]:.4f}.</p>"


def _section_eval(s: RunSummary) -> str:
    if not s.eval_summary:
        return _NOT_RUN
    rows = sorted(s.eval_summary, key=lambda r: (str(r.get("benchmark")) == "all", str(r.get("benchmark")), str(r.get("model"))))
    table = _table(
        ["benchmark", "model", "n", "correct", "accuracy", "95% CI", "unparsed"],
        [[r.get("benchmark"), r.get("model"), r.get("n"), r.get("correct"), f"{100 * r['accuracy']:.1f}%",
          f"[{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]", r.get("unparsed")] for r in rows],
    )
    models = sorted({str(r["model"]) for r in rows})
    benches = sorted({str(r["benchmark"]) for r in rows}, key=lambda b: (b == "all", b))
    fig, ax = _figure(7.5, 3.4)
    width = 0.8 / max(1, len(models))
    for j, model in enumerate(models):
        xs, ys, lo, hi = [], [], [], []
        for i, b in enumerate(benches):
            r = next((r for r in rows if str(r["model"]) == model and str(r["benchmark"]) == b), None)
            if r is None:
                continue
            xs.append(i - 0.4 + width * (j + 0.5))
            ys.append(100 * r["accuracy"])
            lo.append(100 * (r["accuracy"] - r["ci_low"]))
            hi.append(100 * (r["ci_high"] - r["accuracy"]))
        ax.bar(xs, ys, width=width, yerr=[lo, hi], capsize=3, label=model)
    ax.set_xticks(range(len(benches)), benches, rotation=20)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    ax.set_title("Accuracy with 95% intervals")
    return table + _png(fig)


def _section_decontam(s: RunSummary) -> str:
    d = s.decontamination
    if not d:
        return _NOT_RUN
    per = d.get("per_eval_source", {})
    rows = [[src, v.get("eval_rows"), v.get("train_rows_overlapping_before"), v.get("eval_items_hit_before"),
             v.get("train_rows_overlapping_after")] for src, v in sorted(per.items())]
    head = (f"<p>{d.get('train_rows', 0):,} training rows, {d.get('rejected_rows', 0):,} removed "
            f"(n={d.get('n')}, min shared={d.get('min_shared')}); by kind: "
            f"{html.escape(json.dumps(d.get('rejects_by_kind', {})))}.</p>")
    return head + _table(["benchmark", "eval rows", "overlapping train rows (before)", "eval items hit",
                          "overlapping train rows (after)"], rows)


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:980px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em} th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f5f8} img{max-width:100%;display:block;margin:.6em 0}
.not-run{color:#999;font-style:italic} .note,.meta{color:#666;font-size:.85em} .big{font-size:2em;margin:.2em 0}
"""

SECTIONS = [
    ("funnel", "Stage funnel", _section_funnel),
    ("paths", "KG path lengths", _section_paths),
    ("grounding", "Grounding in the KG", _section_grounding),
    ("citations", "Reasonings citing a KG path", _section_citations),
    ("tokens", "Tokens and estimated cost", _section_tokens),
    ("decontamination", "Decontamination", _section_decontam),
    ("sft", "SFT loss", _section_sft),
    ("eval", "Evaluation", _section_eval),
]


def render_html(summary: RunSummary) -> str:
    body = []
    for anchor, title, render in SECTIONS:
        try:
            content = render(summary)
        except Exception as err:  # one broken section must not lose the rest of the report
            log.exception("report section %s failed", anchor)
            content = f'<p class="not-run">could not render: {html.escape(type(err).__name__)}: {html.escape(str(err))}</p>'
        body.append(f'<section id="{anchor}"><h2>{html.escape(title)}</h2>\n{content}\n</section>')
    title = f"medreason_dist run report: {summary.run_name}" if summary.run_name else "medreason_dist run report"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1><p class=\"meta\">run root {html.escape(summary.out_uri or '-')} · "
        f"generated {html.escape(summary.generated_at)}</p>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def build_report(summary: RunSummary | dict, out_path: str | Path) -> Path:
    """Write the report to a local path (a ``file://`` URI is accepted) and return it."""
    if isinstance(summary, dict):
        summary = RunSummary.model_validate(summary)
    out = Path(str(out_path).removeprefix("file://"))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render_html(summary), encoding="utf-8")
    tmp.replace(out)  # readers never see a half-written report
    return out


def write_report(out_uri: str, report_uri: str | None = None, options=None, *, prices: Prices | None = None,
                 run_name: str = "") -> str:
    """Collect, render and store the report at ``report_uri`` (default ``<out>/report/index.html``).

    Works for any storage URI (the HTML is written as one object), so a cluster run's report
    lands next to its data on S3/GCS. Returns the report's URI.
    """
    from medreason_dist import storage

    target = report_uri or storage.join(out_uri, "report/index.html")
    summary = collect_run_summary(out_uri, options, prices=prices, run_name=run_name)
    storage.write_bytes(target, render_html(summary).encode("utf-8"), options)
    return storage.check_uri(target)
