"""Run Terraform's provider-free job_spec module and return its outputs (no cloud, no network).

Used by tests/test_terraform.py and by the submit tests, which compare `medreason-dist submit
--dry-run` with the definition the cloud stacks get from this module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TERRAFORM_DIR = REPO / "terraform"
JOB_SPEC_DIR = TERRAFORM_DIR / "modules" / "job_spec"
TERRAFORM = shutil.which("terraform")


def terraform_env(workdir: Path) -> dict[str, str]:
    """Environment that keeps Terraform's files in ``workdir`` and stops its network calls."""
    cli_config = workdir / "terraformrc"
    cli_config.touch()
    env = dict(os.environ)
    env.update({
        "TF_CLI_CONFIG_FILE": str(cli_config),  # no user config, no registry mirrors
        "TF_DATA_DIR": str(workdir / ".terraform"),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",  # no version check against the internet
        "NO_COLOR": "1",
    })
    return env


def run_terraform(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    if TERRAFORM is None:
        raise RuntimeError("terraform is not on PATH")
    proc = subprocess.run([TERRAFORM, *args, "-no-color"] if args[0] not in ("fmt", "output") else [TERRAFORM, *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"terraform {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def job_spec_outputs(cloud: str, **variables) -> dict:
    """Apply terraform/modules/job_spec in a temporary copy and return ``{output name: value}``.

    ``variables`` are the module's variables (bucket, run_name, prefix, max_hops, ...); the module
    has no provider, so this takes a few seconds and touches nothing outside a temp folder.
    """
    with tempfile.TemporaryDirectory(prefix="job_spec_") as tmp:
        work = Path(tmp) / "job_spec"
        shutil.copytree(JOB_SPEC_DIR, work, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "tests"))
        env = terraform_env(Path(tmp))
        (work / "inputs.auto.tfvars.json").write_text(json.dumps({"cloud": cloud, **variables}))
        run_terraform(["init", "-backend=false", "-input=false"], work, env)
        run_terraform(["apply", "-auto-approve", "-input=false"], work, env)
        out = run_terraform(["output", "-json"], work, env)
        return {name: item["value"] for name, item in json.loads(out.stdout).items()}
