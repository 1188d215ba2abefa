"""spark-submit entrypoint: a literature corpus -> LEADS instruction rows for six tasks.

    spark-submit --master local[2] jobs/leads_curate.py --corpus /data/corpus --out /data/run
    spark-submit jobs/leads_curate.py --corpus s3://bucket/corpus --out s3://bucket/run \\
        --set leads.curate.negatives_per_positive=2

``--corpus`` holds ``reviews``, ``publications`` and ``registry`` (committed datasets, Parquet
folders or ``<name>.parquet`` files; ``python -m medreason_dist.literature.synthetic_corpus``
writes one). Runs the ``leads_curate`` stage through the same runner as
``medreason-dist leads curate`` (fingerprint: an unchanged corpus and config is not redone; exit
codes 0 ok, 1 runtime, 2 usage/config, 3 missing inputs). Writes under ``<out>/leads/``:
``instructions``, ``curate_quarantine``, ``curate_removed``, ``curate_stats``; prints one JSON
summary line on stdout. On a cluster ship the package with ``--py-files`` or install it on the
executors; from a checkout this script finds the package next to itself.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _ensure_package_importable() -> None:
    try:
        import medreason_dist  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="leads_curate", description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", required=True, help="folder (path or URI) with reviews, publications, registry")
    p.add_argument("--out", required=True, help="run output root (path or URI); datasets go under <out>/leads/")
    p.add_argument("--master", default=None, help="Spark master; default: whatever spark-submit was given")
    p.add_argument("--s3-endpoint", default=None, help="S3-protocol endpoint override (MinIO, moto)")
    p.add_argument("--config", default=None, help="YAML config (default: conf/leads_local.yaml's built-in defaults)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="any other config override, as for medreason-dist")
    p.add_argument("--force", action="store_true", help="rerun even if the output matches its fingerprint")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    _ensure_package_importable()
    from medreason_dist import datasets as D
    from medreason_dist import storage
    from medreason_dist.config import ConfigError, load_config
    from medreason_dist.leads_pipeline import LEADS_PIPELINE
    from medreason_dist.run_command import run_selected
    from medreason_dist.runner.execute import EXIT_USAGE

    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("medreason_dist").setLevel(logging.INFO)
    overrides = [f"leads.curate.corpus={json.dumps(args.corpus)}", f"run.out={json.dumps(args.out)}",
                 f"spark.master={args.master}" if args.master else "spark.master=null"]
    if args.s3_endpoint:
        overrides.append(f"storage.s3_endpoint_url={args.s3_endpoint}")
    try:
        cfg = load_config(args.config, overrides + list(args.overrides), builtin_defaults=args.config is None)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    code = run_selected(cfg, ["leads_curate"], force=args.force, stages=LEADS_PIPELINE)
    if code == 0:
        uri = cfg.dataset_uri(D.LEADS_INSTRUCTIONS.name)
        counts = storage.read_manifest(uri, cfg.storage).extra.get("counts", {})
        print(json.dumps({"instructions": uri, **{k: counts.get(k) for k in
                          ("rows", "rows_by_task", "rows_by_split", "removed_by_reason", "quarantine_by_reason",
                           "seconds")}}, sort_keys=True), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
