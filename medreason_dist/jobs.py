"""Shared body of the `ray job submit` entrypoints in jobs/: run a list of stages through the
same runner, with the same exit codes, as `medreason-dist run --stages ...`."""

from __future__ import annotations

import argparse
import sys


def run_stages_main(stages: list[str], description: str, argv: list[str] | None = None) -> int:
    from medreason_dist.cli import main

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML config (default conf/local.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--force", action="store_true", help="rerun stages even if up to date")
    parser.add_argument("--plan", action="store_true", help="say what would run and why; run nothing")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    forwarded = ["run", "--stages", ",".join(stages)]
    if args.config:
        forwarded += ["--config", args.config]
    for item in args.overrides:
        forwarded += ["--set", item]
    forwarded += [flag for flag, on in (("--force", args.force), ("--plan", args.plan), ("-v", args.verbose)) if on]
    return main(forwarded)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_stages_main(sys.argv[1:2], "run stages"))
