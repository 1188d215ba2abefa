"""The ``deploy:`` config section: where `medreason-dist submit` sends jobs.

None of it changes what a job writes (it is EXECUTION_ONLY in runner/fingerprint.py): it names
cloud resources (EMR Serverless application, Dataproc project, Ray dashboard, Kubernetes
namespace) and where the shipped code lies. Resource ids come from `terraform output`; a value a
target needs but the config leaves empty fails at submit time with the dotted key named.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

RAY_JOBS = ("generate", "sft", "eval", "leads")
RayJobName = Literal["generate", "sft", "eval", "leads"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EmrSettings(_Section):
    application_id: str | None = Field(None, description="EMR Serverless application id (terraform output).")
    execution_role_arn: str | None = Field(None, description="IAM role the job run assumes (terraform output).")
    release_label: str = Field("emr-spark-8.0.0", description="Release of the application (Terraform creates it).")
    region: str | None = Field(None, description="AWS region; default storage.s3_region, then the provider chain.")
    endpoint_url: str | None = Field(None, description="EMR Serverless API endpoint override (tests: moto).")
    log_uri: str | None = Field(None, description="S3 monitoring log folder; default <bucket>/logs/emr/.")


class DataprocSettings(_Section):
    project: str | None = Field(None, description="Google Cloud project id.")
    region: str | None = Field(None, description="Dataproc region, e.g. us-central1.")
    service_account: str | None = Field(None, description="Job service account email (terraform output).")
    container_image: str | None = Field(None, description="Custom Spark container image (omitted when null).")
    runtime_version: str = "3.0"
    endpoint: str | None = Field(None, description="API endpoint override, e.g. http://127.0.0.1:PORT (tests).")


class RaySubmitSettings(_Section):
    address: str | None = Field(None, description="Ray dashboard / job API address, e.g. http://head:8265.")
    working_dir: str | None = Field(
        None, description="Local folder Ray uploads as the job's working_dir; default: the repository checkout.")
    excludes: list[str] = Field(
        default_factory=lambda: [".venv", ".tools", ".cache", ".git", "out", "logs", "bench_out", "**/__pycache__"],
        description="Paths left out of the uploaded working_dir.")


class KubeRaySettings(_Section):
    namespace: str | None = Field(None, description="Kubernetes namespace; default: the manifest's (else 'default').")
    image: str | None = Field(None, description="Replaces the image of every Ray container in the manifest.")
    manifest_dir: str = Field("cluster/kuberay", description="Folder of rayjob-<job>.yaml (repo-relative).")
    host: str | None = Field(None, description="API server URL override (tests); default: kubeconfig/in-cluster.")


class DeploySettings(_Section):
    prefix: str = Field("medreason", description="Name prefix of submitted jobs (batch ids, job run names).")
    code_uri: str | None = Field(None, description="Where `make bundle` put the code, e.g. s3://bucket/code.")
    graphframes_package: str = "io.graphframes:graphframes-spark4_2.13:0.10.0"
    job_configs: dict[str, str] = Field(
        default_factory=dict,
        description="Config file each Ray job reads on the cluster, e.g. {leads: conf/leads_aws.yaml}; "
                    "a job not listed gets the --config given to `submit`.")
    poll_interval_s: float = Field(10.0, gt=0)
    emr: EmrSettings = Field(default_factory=EmrSettings)
    dataproc: DataprocSettings = Field(default_factory=DataprocSettings)
    ray: RaySubmitSettings = Field(default_factory=RaySubmitSettings)
    kuberay: KubeRaySettings = Field(default_factory=KubeRaySettings)

    @field_validator("job_configs")
    @classmethod
    def _known_jobs(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(RAY_JOBS))
        if unknown:
            raise ValueError(f"unknown job(s) {unknown}; jobs: {', '.join(RAY_JOBS)}")
        return v
