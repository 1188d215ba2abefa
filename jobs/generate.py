"""`ray job submit` entrypoint: QA sources -> verified, KG-grounded reasoning (the SFT dataset).

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/generate.py --config conf/aws.yaml --set reason.limit=1000

Runs the stages sources, kg, extract, link, reformat, paths, prune, generate, verify in order
(each skipped when its output is already committed for the same inputs and config) and prints
the stage summary. Inside a Ray job, ``ray.address`` should be ``auto`` (the job's cluster).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the job's working dir

GENERATION_STAGES = ["sources", "kg", "extract", "link", "reformat", "paths", "prune", "generate", "verify"]


def main(argv: list[str] | None = None) -> int:
    from medreason_dist import pipeline
    from medreason_dist.cli import _print_outcomes
    from medreason_dist.config import ConfigError, load_config
    from medreason_dist.logs import setup_logging

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    outcomes = pipeline.run_pipeline(cfg, force=args.force, only=GENERATION_STAGES)
    _print_outcomes(outcomes)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps([o.__dict__ for o in outcomes], indent=2, default=str))
    failed = [o for o in outcomes if o.status in ("failed", "pending")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
