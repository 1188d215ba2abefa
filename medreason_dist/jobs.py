"""Shared body of the `ray job submit` entrypoints in jobs/: run a list of pipeline stages."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def run_stages_main(stages: list[str], description: str, argv: list[str] | None = None) -> int:
    from medreason_dist import pipeline
    from medreason_dist.cli import _print_outcomes
    from medreason_dist.config import ConfigError, load_config
    from medreason_dist.logs import setup_logging

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML config (default conf/local.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--force", action="store_true", help="rerun stages even if up to date")
    parser.add_argument("--summary-json", help="also write the stage outcomes as JSON to this local path")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    outcomes = pipeline.run_pipeline(cfg, force=args.force, only=stages)
    _print_outcomes(outcomes)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps([o.__dict__ for o in outcomes], indent=2, default=str))
    return 1 if any(o.status in ("failed", "pending") for o in outcomes) else 0
