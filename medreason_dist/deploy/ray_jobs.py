"""A Ray job through the Ray job API (``ray job submit`` from Python)."""

from __future__ import annotations

import copy
import os
from typing import Any

import yaml

from medreason_dist.config import REPO_DIR
from medreason_dist.deploy import kuberay, spec
from medreason_dist.deploy.wait import JobState, Submitted

TOKEN_ENV = "RAY_AUTH_TOKEN"
FINAL_OK = {"SUCCEEDED"}
FINAL_BAD = {"FAILED", "STOPPED"}


def build(cfg, job: str, config_path: str) -> dict[str, Any]:
    """Entrypoint and runtime env; both follow the RayJob manifest when there is one, so a job
    behaves the same submitted here or through KubeRay. The working_dir is this checkout
    (uploaded by Ray) instead of the image's /app."""
    address = spec.require(cfg.deploy.ray.address, "deploy.ray.address")
    manifest = kuberay.load_manifest(cfg, job, required=False)
    manifest_spec = (manifest or {}).get("spec", {})
    runtime_env = copy.deepcopy(spec.RAY_ENV_DEFAULT)
    if manifest_spec.get("runtimeEnvYAML"):
        runtime_env = yaml.safe_load(manifest_spec["runtimeEnvYAML"]) or {}
    runtime_env["working_dir"] = cfg.deploy.ray.working_dir or str(REPO_DIR)
    if cfg.deploy.ray.excludes:
        runtime_env["excludes"] = sorted(set(runtime_env.get("excludes", [])) | set(cfg.deploy.ray.excludes))
    return {
        "address": address,
        "entrypoint": spec.ray_entrypoint(job, config_path, manifest_spec.get("entrypoint")),
        "runtime_env": runtime_env,
        # only whether a token is sent, never the token
        "auth": {"header": "Authorization", "from_env": TOKEN_ENV} if os.environ.get(TOKEN_ENV) else None,
    }


def client(request: dict[str, Any]):
    from ray.job_submission import JobSubmissionClient

    token = os.environ.get(TOKEN_ENV)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return JobSubmissionClient(request["address"], headers=headers)


def submit(cfg, request: dict[str, Any], job_client=None) -> Submitted:
    try:
        c = job_client or client(request)
        job_id = c.submit_job(entrypoint=request["entrypoint"], runtime_env=request["runtime_env"])
    except (RuntimeError, OSError, ValueError) as err:  # OSError: requests and builtin connection errors
        raise spec.SubmitError(f"Ray job submission to {request['address']} failed: {err}") from err

    def poll() -> JobState:
        try:
            status = c.get_job_status(job_id)
            state = str(getattr(status, "value", status))  # JobStatus enum, or a plain string from stubs
            message = (c.get_job_info(job_id).message or "") if state in FINAL_BAD else ""
        except (RuntimeError, OSError) as err:
            raise spec.SubmitError(f"Ray job status of {job_id} failed: {err}") from err
        return JobState(state, state in FINAL_OK | FINAL_BAD, state in FINAL_OK, message)

    return Submitted("ray job", job_id, poll)
