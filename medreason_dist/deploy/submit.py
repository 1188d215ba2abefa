"""The `submit` command: build the request, print it (--dry-run) or send it and follow the job."""

from __future__ import annotations

import argparse
import json
import sys

from medreason_dist.config import Config, ConfigError
from medreason_dist.deploy import dataproc, emr, kuberay, ray_jobs, spec
from medreason_dist.deploy.settings import RAY_JOBS
from medreason_dist.deploy.wait import wait
from medreason_dist.logs import redact

TARGETS = ("emr", "dataproc", "ray", "kuberay")
EXIT_OK, EXIT_FAILED = 0, 1  # usage errors (ConfigError) exit 2 through cli.main
EXIT_INTERRUPTED = 130


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", choices=TARGETS, help="emr | dataproc: the Spark path job; ray | kuberay: a Ray job")
    p.add_argument("--job", choices=RAY_JOBS, help="Ray job to submit (ray, kuberay; default generate)")
    p.add_argument("--dry-run", action="store_true", help="print the exact request as JSON; send nothing")
    p.add_argument("--no-wait", action="store_true", help="print the job id once submitted and return")


def build(cfg: Config, args: argparse.Namespace) -> dict:
    """``{"target", "endpoint", "request"}``: what --dry-run prints and what submit sends."""
    if args.target in ("emr", "dataproc"):
        if args.job:
            raise ConfigError(f"--job applies to ray and kuberay only; {args.target} runs the Spark path job")
        module = emr if args.target == "emr" else dataproc
        return {"target": args.target, "endpoint": module.endpoint(cfg), "request": module.build(cfg)}
    job = args.job or "generate"
    config_path = spec.job_config_path(cfg, job, args.config)
    if args.target == "ray":
        return {"target": "ray", "job": job, "request": ray_jobs.build(cfg, job, config_path)}
    return {"target": "kuberay", "job": job, "request": kuberay.build(cfg, job, config_path)}


def run(cfg: Config, args: argparse.Namespace, *, out=None, err=None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    plan = build(cfg, args)  # ConfigError -> exit 2 in cli.main
    if args.dry_run:
        # Not passed through redact(): it masks any "...Token": value, e.g. a pod's
        # automountServiceAccountToken: false. The requests hold no secrets by construction
        # (credentials stay with the SDKs; the Ray token is only named).
        print(json.dumps(plan, indent=2, sort_keys=True), file=out)
        return EXIT_OK
    request = plan["request"]
    try:
        if args.target == "emr":
            job = emr.submit(cfg, request)
        elif args.target == "dataproc":
            job = dataproc.submit(cfg, request)
        elif args.target == "ray":
            job = ray_jobs.submit(cfg, request)
        else:
            job = kuberay.submit(cfg, request)
    except spec.SubmitError as e:
        print(f"error: {redact(str(e))}", file=err)
        return EXIT_FAILED
    if args.no_wait:
        print(job.job_id, file=out)
        return EXIT_OK
    print(f"submitted {job.label} {job.job_id}", file=err, flush=True)
    try:
        final, seconds = wait(job, interval_s=cfg.deploy.poll_interval_s, out=err)
    except spec.SubmitError as e:
        print(f"error: {redact(str(e))}", file=err)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"\nstopped waiting; {job.label} {job.job_id} keeps running", file=err)
        return EXIT_INTERRUPTED
    if final.ok:
        print(f"{job.label} {job.job_id} ended {final.state}", file=out)
        return EXIT_OK
    reason = f": {final.message}" if final.message else ""
    print(f"error: {job.label} {job.job_id} ended {final.state}{reason}", file=err)
    return EXIT_FAILED
