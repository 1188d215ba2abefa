"""spark-submit entrypoint: all shortest KG paths for a pairs dataset.

    spark-submit --master local[2] jobs/kg_paths.py \\
        --nodes file:///data/kg/nodes --edges file:///data/kg/edges \\
        --pairs file:///data/run/pairs --out file:///data/run/paths

On a cluster, ship the package with ``--py-files`` (a wheel or zip of medreason_dist) or install
it on the executors; from a repository checkout this script finds the package next to itself.
Writes ``--out`` (paths) and ``<out>_pair_status``; prints one JSON summary line on stdout.
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
    p.add_argument("--config-hash", default="", help="recorded in the output manifests")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    _ensure_package_importable()
    from medreason_dist import storage
    from medreason_dist.spark.paths import run_paths
    from medreason_dist.spark.session import spark_session

    args = parse_args(argv)
    # spark-submit merges the driver's stderr into stdout: keep third-party chatter (py4j) out,
    # and print the summary as the last line.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("medreason_dist").setLevel(logging.INFO)
    options = None
    if args.s3_endpoint or args.s3_region:
        options = storage.StorageOptions(s3_endpoint_url=args.s3_endpoint, s3_region=args.s3_region)
    spark = spark_session(master=args.master, app_name="medreason_dist-kg_paths")
    try:
        summary = run_paths(
            spark,
            args.nodes,
            args.edges,
            args.pairs,
            args.out,
            max_hops=args.max_hops,
            max_paths=args.max_paths,
            seed=args.seed,
            engine=args.engine,
            options=options,
            config_hash=args.config_hash,
            engine_options={"relation_column": args.relation_column},
        )
    finally:
        spark.stop()
    print(json.dumps(summary, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
