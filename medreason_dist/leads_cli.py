"""`medreason-dist leads ACTION`: the literature-mining commands (see leads_pipeline.py).

    medreason-dist leads search [--execute]      queries from the PICO (+ run them: PubMed, CT.gov)
    medreason-dist leads screen                  labels per criterion, scores, ranking, CSV + RIS
    medreason-dist leads extract                 study characteristics, arms, participants, results
    medreason-dist leads eval [--reviews DIR]    everything above against gold, with intervals
    medreason-dist leads curate                  Spark: a corpus -> instruction rows for the six tasks
    medreason-dist leads train                   curate, then fine-tune the student on a task mixture
    medreason-dist leads instruct                curate, train, base vs fine-tuned on held-out rows, report
    medreason-dist leads run                     all of it, then the HTML report
    medreason-dist leads graph                   what each stage reads and writes

The default config is conf/leads_local.yaml (the packaged fixture review, the packaged small
model, loopback fixture services for --execute). ``--reviews DIR`` evaluates a folder of
published reviews in the TrialMind-SLR layout instead of ``leads.review``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from medreason_dist import storage
from medreason_dist.config import REPO_DIR, Config, ConfigError, load_config

ACTIONS = ("search", "screen", "extract", "eval", "curate", "train", "instruct", "run", "graph")


def default_config_path() -> Path:
    for candidate in (Path.cwd() / "conf" / "leads_local.yaml", REPO_DIR / "conf" / "leads_local.yaml"):
        if candidate.is_file():
            return candidate
    raise ConfigError("no conf/leads_local.yaml found; pass --config PATH")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=ACTIONS, help="what to run (see the description)")
    p.add_argument("--execute", action="store_true",
                   help="search: also run the accepted queries through the PubMed and ClinicalTrials.gov clients")
    p.add_argument("--reviews", metavar="DIR",
                   help="a folder of published reviews (TrialMind-SLR layout) instead of leads.review")
    p.add_argument("--force", action="store_true", help="rerun stages even if up to date")
    p.add_argument("--plan", action="store_true", help="say what would run and why; run nothing")


def load(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if args.reviews:
        if not Path(args.reviews).is_dir():
            raise ConfigError(f"--reviews {args.reviews}: not a folder")
        overrides.append(f"leads.reviews_dir={json.dumps(str(Path(args.reviews).resolve()))}")
    cfg = load_config(args.config or default_config_path(), overrides)
    if args.reviews and not any(o.startswith("run.out=") for o in args.overrides):
        # A folder of reviews gets its own outputs beside the configured review's.
        cfg.run.out = storage.join(cfg.run.out, f"reviews-{Path(args.reviews).resolve().name}")
    return cfg


def stages_for(cfg: Config, action: str, execute: bool) -> list[str]:
    from medreason_dist.leads_pipeline import COMMAND_STAGES

    names = list(COMMAND_STAGES[action])
    if (execute or cfg.leads.execute) and action in ("search", "run"):
        names.insert(names.index("leads_search") + 1, "leads_retrieve")
    if cfg.leads.reviews_dir and "leads_extract" in names:
        names.remove("leads_extract")  # published reviews come without full texts
    return names


def _summary(cfg: Config, names: list[str]) -> list[str]:
    from medreason_dist import datasets as D

    lines = []
    for ref, label in ((D.LEADS_SEARCH, "queries"), (D.LEADS_RETRIEVED, "retrieved records"),
                       (D.LEADS_SCREENING, "screened records"), (D.LEADS_EXTRACTION, "extracted studies"),
                       (D.LEADS_EVAL, "evaluation"), (D.LEADS_INSTRUCTIONS, "instruction rows"),
                       (D.LEADS_TRAIN_LOSS, "training steps"), (D.LEADS_MODEL_EVAL, "student evaluation"),
                       (D.LEADS_REPORT_HTML, "report")):
        if ref.owner not in names:
            continue
        uri = cfg.dataset_uri(ref.name)
        if ref.kind == "dataset" and storage.is_readable(uri, cfg.storage):
            m = storage.read_manifest(uri, cfg.storage)
            rejected = f", {sum(m.rejects.values())} rejected" if m.rejects else ""
            lines.append(f"{label}: {m.rows} rows{rejected} -> {uri}")
            if ref is D.LEADS_SCREENING:
                lines.append(f"  for reviewers: {cfg.dataset_uri(D.LEADS_SCREENING_CSV.name)}, "
                             f"{cfg.dataset_uri(D.LEADS_SCREENING_RIS.name)}")
            if ref is D.LEADS_INSTRUCTIONS:
                counts = m.extra.get("counts", {})
                lines.append(f"  by task {counts.get('rows_by_task')}, by split {counts.get('rows_by_split')}")
                lines.append(f"  removed {counts.get('removed_by_reason')}, quarantined "
                             f"{counts.get('quarantine_by_reason')}")
            if ref is D.LEADS_MODEL_EVAL:
                table = storage.read_table(uri, options=cfg.storage).to_pylist()
                for r in table:
                    if r["task"] == "all":
                        lines.append(f"  {r['model']:10s} {r['metric']:12s} {r['value']:.3f} "
                                     f"[{r['low']:.3f}, {r['high']:.3f}]")
            if ref is D.LEADS_EVAL:
                for key, value in sorted(m.extra.get("headline", {}).items()):
                    lines.append(f"  {key:34s} {'-' if value is None else f'{value:.3f}'}")
        elif ref.kind == "file" and storage.exists(uri, cfg.storage):
            lines.append(f"{label}: {uri}")
    return lines


def run(cfg: Config, args: argparse.Namespace) -> int:
    from medreason_dist.run_command import run_selected
    from medreason_dist.leads_pipeline import LEADS_PIPELINE, describe_graph

    if args.action == "graph":
        print(describe_graph())
        return 0
    names = stages_for(cfg, args.action, args.execute)
    code = run_selected(cfg, names, force=args.force, plan_only=args.plan, verbose=args.verbose,
                        stages=LEADS_PIPELINE)
    if not args.plan:
        print()
        for line in _summary(cfg, names):
            print(line)
    return code
