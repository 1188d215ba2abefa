"""The Spark path job as an EMR Serverless job run (boto3 ``emr-serverless``)."""

from __future__ import annotations

from typing import Any

from medreason_dist import storage
from medreason_dist.deploy import spec
from medreason_dist.deploy.wait import JobState, Submitted

FINAL_OK = {"SUCCESS"}
FINAL_BAD = {"FAILED", "CANCELLED"}


def build(cfg) -> dict[str, Any]:
    """Keyword arguments of ``start_job_run`` (the client token is left to botocore)."""
    emr = cfg.deploy.emr
    application_id = spec.require(emr.application_id, "deploy.emr.application_id")
    role = spec.require(emr.execution_role_arn, "deploy.emr.execution_role_arn")
    code = spec.code_uris(cfg, "s3")
    # <bucket>/logs/emr/ is the prefix Terraform's job role may write (names.emr_log_prefix)
    log_uri = emr.log_uri or storage.join(spec.bucket_root(code.entry_point), "logs/emr") + "/"
    return {
        "applicationId": application_id,
        "executionRoleArn": role,
        "name": spec.job_name(cfg),
        "jobDriver": {"sparkSubmit": {
            "entryPoint": code.entry_point,
            "entryPointArguments": spec.paths_args(cfg, "s3"),
            "sparkSubmitParameters": spec.spark_submit_parameters(spec.emr_spark_conf(cfg, code)),
        }},
        "configurationOverrides": {"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": log_uri}}},
    }


def endpoint(cfg) -> dict[str, Any]:
    """Where the API calls go (shown by --dry-run; None means the SDK's default)."""
    return {"region": cfg.deploy.emr.region or cfg.storage.s3_region, "endpoint_url": cfg.deploy.emr.endpoint_url}


def client(cfg):
    import boto3

    where = endpoint(cfg)
    return boto3.client("emr-serverless", region_name=where["region"], endpoint_url=where["endpoint_url"])


def submit(cfg, request: dict[str, Any], emr_client=None) -> Submitted:
    from botocore.exceptions import BotoCoreError, ClientError

    app = request["applicationId"]
    try:
        c = emr_client or client(cfg)  # NoRegionError and friends are BotoCoreErrors
        job_id = c.start_job_run(**request)["jobRunId"]
    except (BotoCoreError, ClientError) as err:
        raise spec.SubmitError(f"EMR Serverless start_job_run failed: {err}") from err

    def poll() -> JobState:
        try:
            run = c.get_job_run(applicationId=app, jobRunId=job_id)["jobRun"]
        except (BotoCoreError, ClientError) as err:
            raise spec.SubmitError(f"EMR Serverless get_job_run {job_id} failed: {err}") from err
        state = run["state"]
        return JobState(state, state in FINAL_OK | FINAL_BAD, state in FINAL_OK, run.get("stateDetails") or "")

    return Submitted("emr job run", job_id, poll)
