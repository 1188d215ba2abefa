"""A Ray job as a KubeRay ``RayJob`` (kubernetes CustomObjectsApi, ray.io/v1)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from medreason_dist.config import REPO_DIR, ConfigError
from medreason_dist.deploy import spec
from medreason_dist.deploy.wait import JobState, Submitted

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"


def manifest_path(cfg, job: str) -> Path:
    folder = Path(cfg.deploy.kuberay.manifest_dir)
    if not folder.is_absolute() and not folder.is_dir():
        folder = REPO_DIR / folder  # run from outside the checkout
    return folder / f"rayjob-{job}.yaml"


def load_manifest(cfg, job: str, *, required: bool = True) -> dict[str, Any] | None:
    path = manifest_path(cfg, job)
    if not path.is_file():
        if required:
            raise ConfigError(f"deploy: no RayJob manifest {path} (deploy.kuberay.manifest_dir)")
        return None
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict) or doc.get("kind") != "RayJob":
        raise ConfigError(f"deploy: {path} is not a RayJob manifest")
    return doc


def _pod_specs(body: dict[str, Any]):
    cluster = body.get("spec", {}).get("rayClusterSpec", {})
    groups = [cluster.get("headGroupSpec", {})] + list(cluster.get("workerGroupSpecs", []) or [])
    # The submitter pod runs `ray job submit` from the same image: a stale image there never pulls.
    groups.append({"template": body.get("spec", {}).get("submitterPodTemplate", {})})
    for group in groups:
        pod = group.get("template", {}).get("spec")
        if pod:
            yield pod


def build(cfg, job: str, config_path: str) -> dict[str, Any]:
    """The manifest with the config's namespace, image and config file swapped in."""
    kr = cfg.deploy.kuberay
    body = copy.deepcopy(load_manifest(cfg, job))
    meta = body.setdefault("metadata", {})
    meta["namespace"] = namespace = kr.namespace or meta.get("namespace") or "default"
    if kr.image:
        for pod in _pod_specs(body):
            for container in pod.get("containers", []):
                container["image"] = kr.image
    spec_ = body.setdefault("spec", {})
    spec_["entrypoint"] = spec.ray_entrypoint(job, config_path, spec_.get("entrypoint"))
    return {"namespace": namespace, "host": kr.host, "body": body}


def api(cfg):
    from kubernetes import client, config

    host = cfg.deploy.kuberay.host
    if host:
        conf = client.Configuration()
        conf.host = host
        return client.CustomObjectsApi(client.ApiClient(conf))
    try:
        config.load_kube_config()
    except config.ConfigException:
        try:
            config.load_incluster_config()
        except config.ConfigException as err:
            raise spec.SubmitError(f"no Kubernetes credentials: no usable kubeconfig and not inside a cluster "
                                   f"({err})") from err
    return client.CustomObjectsApi()


def state_of(obj: dict[str, Any]) -> JobState:
    """``jobDeploymentStatus/jobStatus``; final once the deployment is Complete/Failed or the job ended."""
    status = obj.get("status") or {}
    job_status = status.get("jobStatus") or ""
    deployment = status.get("jobDeploymentStatus") or ""
    done = deployment in ("Complete", "Failed") or job_status in ("SUCCEEDED", "FAILED", "STOPPED")
    ok = job_status == "SUCCEEDED" and deployment != "Failed"
    message = status.get("message") or status.get("reason") or ""
    return JobState(f"{deployment or '-'}/{job_status or '-'}", done, ok, message)


def submit(cfg, request: dict[str, Any], custom_api=None) -> Submitted:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    c = custom_api or api(cfg)
    ns = request["namespace"]
    try:
        created = c.create_namespaced_custom_object(group=GROUP, version=VERSION, namespace=ns, plural=PLURAL,
                                                    body=request["body"])
    except (ApiException, HTTPError) as err:
        raise spec.SubmitError(f"creating RayJob in namespace {ns} failed: {_reason(err)}") from err
    name = created["metadata"]["name"]

    def poll() -> JobState:
        try:
            obj = c.get_namespaced_custom_object(group=GROUP, version=VERSION, namespace=ns, plural=PLURAL,
                                                 name=name)
        except (ApiException, HTTPError) as err:
            raise spec.SubmitError(f"reading RayJob {ns}/{name} failed: {_reason(err)}") from err
        return state_of(obj)

    return Submitted("rayjob", f"{ns}/{name}", poll)


def _reason(err: Exception) -> str:
    # ApiException's str() carries response headers; the status and the API's message suffice.
    status, body = getattr(err, "status", None), getattr(err, "body", None)
    if status is None:
        return str(err)
    try:
        import json

        body = json.loads(body).get("message", body)
    except (TypeError, ValueError, AttributeError):
        pass
    return f"HTTP {status}: {body}"
