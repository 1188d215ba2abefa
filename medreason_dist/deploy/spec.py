"""Values every target derives from the config: the path job's arguments, code locations, names.

Kept in one place because the Terraform job definitions (terraform/modules/job_spec) and the
KubeRay manifests spell out the same values, and tests compare them field by field.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from medreason_dist import storage
from medreason_dist.config import REPO_DIR, ConfigError

# Ray jobs: script and the arguments before --config (leads takes an action).
RAY_SCRIPTS = {"generate": ["jobs/generate.py"], "sft": ["jobs/sft.py"], "eval": ["jobs/eval.py"],
               "leads": ["jobs/leads.py", "run"]}
RAY_ENV_DEFAULT = {"env_vars": {"TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}}
VENV_PYTHON = "./environment/bin/python"  # inside the unpacked spark.archives venv (#environment)


class SubmitError(RuntimeError):
    """The cloud refused the submission or could not be asked (exit 1)."""


def require(value: Any, key: str) -> Any:
    if value is None or value == "":
        raise ConfigError(f"deploy: '{key}' is not set; put it under deploy: in the config file "
                          f"or pass --set {key}=VALUE")
    return value


@dataclass(frozen=True)
class CodeUris:
    entry_point: str   # jobs/kg_paths.py
    package_zip: str   # medreason_dist.zip
    venv_archive: str  # medreason_venv.tar.gz (EMR only)


def code_uris(cfg, scheme: str) -> CodeUris:
    base = require(cfg.deploy.code_uri, "deploy.code_uri")
    if urlparse(base).scheme != scheme:
        raise ConfigError(f"deploy: 'deploy.code_uri' must be a {scheme}:// URI for this target (got {base!r})")
    return CodeUris(storage.join(base, "jobs/kg_paths.py"), storage.join(base, "medreason_dist.zip"),
                    storage.join(base, "medreason_venv.tar.gz"))


def bucket_root(uri: str) -> str:
    parsed = urlparse(storage.check_uri(uri))
    return f"{parsed.scheme}://{parsed.netloc}"


def run_id(cfg) -> str:
    """R of the bucket layout: the last folder of run.out (runs/R)."""
    return storage.check_uri(cfg.run.out).rstrip("/").rsplit("/", 1)[-1]


def job_name(cfg) -> str:
    """``<prefix>-paths-<R>``, shaped for a Dataproc batch id: [a-z0-9-], 4..63 characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", f"{cfg.deploy.prefix}-paths-{run_id(cfg)}".lower()).strip("-")[:63]
    name = name.rstrip("-")
    if len(name) < 4 or not name[0].isalpha():
        raise ConfigError(f"deploy: job name {name!r} from deploy.prefix and run.out is not a valid batch id "
                          "(a letter first, then [a-z0-9-], 4..63 characters)")
    return name


def paths_args(cfg, scheme: str) -> list[str]:
    """kg_paths.py arguments, in the contract's order; every dataset must live in the cloud's store."""
    uris = {flag: cfg.dataset_uri(rel) for flag, rel in (("--nodes", "kg/nodes"), ("--edges", "kg/edges"),
                                                          ("--pairs", "reason/pairs"), ("--out", "reason/paths"))}
    for flag, uri in uris.items():
        if urlparse(uri).scheme != scheme:
            raise ConfigError(f"deploy: {flag} {uri} is not a {scheme}:// URI; the cluster cannot read it "
                              "(set run.out / kg.dir to the bucket)")
    args: list[str] = []
    for flag, uri in uris.items():
        args += [flag, uri]
    p = cfg.paths
    return args + ["--max-hops", str(p.max_hops), "--max-paths", str(p.max_paths), "--seed", str(p.seed),
                   "--engine", p.engine]


def emr_spark_conf(cfg, code: CodeUris) -> dict[str, str]:
    return {
        "spark.archives": f"{code.venv_archive}#environment",
        "spark.submit.pyFiles": code.package_zip,
        "spark.jars.packages": cfg.deploy.graphframes_package,
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": VENV_PYTHON,
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": VENV_PYTHON,
        "spark.executorEnv.PYSPARK_PYTHON": VENV_PYTHON,
    }


def spark_submit_parameters(conf: dict[str, str]) -> str:
    return " ".join(f"--conf {k}={v}" for k, v in sorted(conf.items()))


def job_config_path(cfg, job: str, given: str | None) -> str:
    """The config file a Ray job reads on the cluster, relative to the job's working_dir."""
    if job in cfg.deploy.job_configs:
        return cfg.deploy.job_configs[job]
    path = Path(given or "conf/local.yaml")
    try:
        return path.resolve().relative_to(REPO_DIR).as_posix()
    except ValueError:
        return path.as_posix()  # outside the checkout: the cluster must have it at the same path


def ray_entrypoint(job: str, config_path: str, manifest_entrypoint: str | None = None) -> str:
    """The contract's entrypoint, or the manifest's with its --config swapped for ``config_path``."""
    if manifest_entrypoint:
        words = shlex.split(manifest_entrypoint)
        if "--config" in words:
            words[words.index("--config") + 1] = config_path
            return shlex.join(words)
        return manifest_entrypoint
    return shlex.join(["python", *RAY_SCRIPTS[job], "--config", config_path, "--set", "ray.address=auto"])
