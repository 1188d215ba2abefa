"""The Spark path job as a Dataproc Serverless batch (google-cloud-dataproc, REST transport)."""

from __future__ import annotations

from typing import Any

from medreason_dist.deploy import spec
from medreason_dist.deploy.wait import JobState, Submitted

FINAL_OK = {"SUCCEEDED"}
FINAL_BAD = {"FAILED", "CANCELLED"}


def build(cfg) -> dict[str, Any]:
    """The ``CreateBatchRequest`` as a dict (snake_case, as Terraform's google_dataproc_batch spells it)."""
    dp = cfg.deploy.dataproc
    project = spec.require(dp.project, "deploy.dataproc.project")
    region = spec.require(dp.region, "deploy.dataproc.region")
    code = spec.code_uris(cfg, "gs")
    runtime: dict[str, Any] = {"version": dp.runtime_version,
                               "properties": {"spark.jars.packages": cfg.deploy.graphframes_package}}
    if dp.container_image:
        runtime["container_image"] = dp.container_image
    batch: dict[str, Any] = {
        "pyspark_batch": {"main_python_file_uri": code.entry_point, "args": spec.paths_args(cfg, "gs"),
                          "python_file_uris": [code.package_zip]},
        "runtime_config": runtime,
    }
    if dp.service_account:
        batch["environment_config"] = {"execution_config": {"service_account": dp.service_account}}
    return {"parent": f"projects/{project}/locations/{region}", "batch_id": spec.job_name(cfg), "batch": batch}


def endpoint(cfg) -> dict[str, Any]:
    dp = cfg.deploy.dataproc
    # Batches are served by the regional endpoint; an override (tests) may be plain http://.
    return {"api_endpoint": dp.endpoint or f"{dp.region}-dataproc.googleapis.com"}


def client(cfg):
    from google.cloud import dataproc_v1

    credentials = None
    if cfg.deploy.dataproc.endpoint:
        # Only a stand-in endpoint (loopback) goes without credentials; real ones use ADC.
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()
    return dataproc_v1.BatchControllerClient(transport="rest", credentials=credentials,
                                             client_options={"api_endpoint": endpoint(cfg)["api_endpoint"]})


def submit(cfg, request: dict[str, Any], batch_client=None) -> Submitted:
    from google.api_core.exceptions import GoogleAPICallError
    from google.auth.exceptions import GoogleAuthError

    name = f"{request['parent']}/batches/{request['batch_id']}"
    try:
        c = batch_client or client(cfg)  # no application default credentials: GoogleAuthError
        c.create_batch(request=request)  # a long-running operation; the batch itself is followed below
    except (GoogleAPICallError, GoogleAuthError) as err:
        raise spec.SubmitError(f"Dataproc create_batch failed: {err}") from err

    def poll() -> JobState:
        try:
            b = c.get_batch(name=name)
        except (GoogleAPICallError, GoogleAuthError) as err:
            raise spec.SubmitError(f"Dataproc get_batch {name} failed: {err}") from err
        state = b.state.name
        return JobState(state, state in FINAL_OK | FINAL_BAD, state in FINAL_OK, b.state_message)

    return Submitted("dataproc batch", name, poll)
