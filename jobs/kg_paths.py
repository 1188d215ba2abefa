"""spark-submit entrypoint: all shortest KG paths for a pairs dataset.

    spark-submit --master local[2] jobs/kg_paths.py \\
        --nodes file:///data/kg/nodes --edges file:///data/kg/edges \\
        --pairs file:///data/run/pairs --out file:///data/run/paths

On a cluster, ship the package with ``--py-files`` (a wheel or zip of medreason_dist) or install
it on the executors; from a repository checkout this script finds the package next to itself.
Runs the `paths` stage through the same runner as `medreason-dist paths` (fingerprint, resume,
exit codes 0/1/2/3). Any Parquet folder works as --nodes/--edges/--pairs. Writes ``--out`` (paths)
and ``<out>_pair_status``; prints one JSON summary line on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _ensure_package_importable() -> None:
    # spark-submit runs this file as a script: the repository root is not on sys.path.
    try:
        import medreason_dist  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="kg_paths", description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", required=True, help="nodes dataset URI (node_id int64, ...)")
    p.add_argument("--edges", required=True, help="edges dataset URI (src, dst, relation, display_relation)")
    p.add_argument("--pairs", required=True, help="pairs dataset URI (pair_id, src, dst)")
    p.add_argument("--out", required=True, help="output paths dataset URI; statuses go to <out>_pair_status")
    p.add_argument("--max-hops", type=int, default=3)
    p.add_argument("--max-paths", type=int, default=50, help="paths kept per pair (a seeded sample above it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine", choices=("dataframe", "graphframes"), default="dataframe")
    p.add_argument("--relation-column", choices=("relation", "display_relation"), default="relation")
    p.add_argument("--master", default=None, help="Spark master; default: whatever spark-submit was given")
    p.add_argument("--s3-endpoint", default=None, help="S3-protocol endpoint override (MinIO, moto)")
    p.add_argument("--s3-region", default=None)
    p.add_argument("--config", default=None, help="YAML config (default: the built-in defaults)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="any other config override, as for medreason-dist")
    p.add_argument("--force", action="store_true", help="rerun even if the output matches its fingerprint")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    _ensure_package_importable()
    from medreason_dist import storage
    from medreason_dist.cli import paths_overrides, run_selected
    from medreason_dist.config import ConfigError, load_config
    from medreason_dist.runner.execute import EXIT_USAGE

    args = parse_args(argv)
    # spark-submit merges the driver's stderr into stdout: keep third-party chatter (py4j) out,
    # and print the summary as the last line.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("medreason_dist").setLevel(logging.INFO)
    overrides = list(args.overrides)
    overrides += paths_overrides(args.nodes, args.edges, args.pairs, args.out, args.max_hops, args.max_paths,
                                 args.seed, args.engine)
    overrides.append(f"paths.relation_column={args.relation_column}")
    overrides.append(f"spark.master={args.master}" if args.master else "spark.master=null")  # null: spark-submit's
    if args.s3_endpoint:
        overrides.append(f"storage.s3_endpoint_url={args.s3_endpoint}")
    if args.s3_region:
        overrides.append(f"storage.s3_region={args.s3_region}")
    try:
        cfg = load_config(args.config, overrides, builtin_defaults=True)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    code = run_selected(cfg, ["paths"], force=args.force)
    if code == 0:
        out = cfg.dataset_uri("reason/paths")
        manifest = storage.read_manifest(out, cfg.storage)
        print(json.dumps({"paths": out, "rows": manifest.rows, "pair_status": cfg.dataset_uri("reason/paths_pair_status"),
                          "status_counts": manifest.extra.get("status_counts", {})}, sort_keys=True), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
