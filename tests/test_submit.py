"""`medreason-dist submit`: the exact requests per target, and the real client code paths against
stand-ins (moto's EMR Serverless, loopback HTTP servers for the Dataproc REST API and the
Kubernetes API server, a stub Ray job client)."""

from __future__ import annotations

import copy
import io
import json
import shlex
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from medreason_dist import cli
from medreason_dist.config import load_config
from medreason_dist.deploy import ray_jobs
from medreason_dist.deploy.spec import SubmitError
from medreason_dist.deploy.wait import JobState, Submitted, wait
from medreason_dist.runner.fingerprint import is_execution_only

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "jobs"))
import kg_paths  # noqa: E402

PKG = "io.graphframes:graphframes-spark4_2.13:0.10.0"
ROLE = "arn:aws:iam::123456789012:role/medreason-paths-job"  # moto's default account
SA = "medreason-paths@proj-x.iam.gserviceaccount.com"
IMAGE = "us-docker.pkg.dev/proj-x/medreason/spark:1"
GCP_SETS = ["deploy.dataproc.project=proj-x", f"deploy.dataproc.service_account={SA}",
            f"deploy.dataproc.container_image={IMAGE}"]
FAST = ["deploy.poll_interval_s=0.01"]


def contract_args(scheme: str) -> list[str]:
    """The path job's arguments exactly as the issue contract spells them (bucket and run of conf/*.yaml)."""
    b = f"{scheme}://medreason-dist-data"
    return ["--nodes", f"{b}/kg/primekg/nodes", "--edges", f"{b}/kg/primekg/edges",
            "--pairs", f"{b}/runs/default/reason/pairs", "--out", f"{b}/runs/default/reason/paths",
            "--max-hops", "3", "--max-paths", "50", "--seed", "0", "--engine", "graphframes"]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sets(*items: str) -> list[str]:
    return [w for item in items for w in ("--set", item)]


def dry_run(capsys, target: str, config: str, *extra: str) -> dict:
    code, out, err = run_cli(capsys, "submit", target, "--config", config, "--dry-run", *extra)
    assert code == 0, err
    return json.loads(out)


# -- dry runs --------------------------------------------------------------------------------


def test_emr_dry_run_is_the_contract_request(capsys):
    plan = dry_run(capsys, "emr", "conf/aws.yaml",
                   *sets("deploy.emr.application_id=00app", f"deploy.emr.execution_role_arn={ROLE}"))
    req = plan["request"]
    assert plan["endpoint"] == {"region": "us-east-1", "endpoint_url": None}
    assert req["applicationId"] == "00app" and req["executionRoleArn"] == ROLE
    assert req["name"] == "medreason-paths-default"
    driver = req["jobDriver"]["sparkSubmit"]
    assert driver["entryPoint"] == "s3://medreason-dist-data/code/jobs/kg_paths.py"
    assert driver["entryPointArguments"] == contract_args("s3")
    parsed = kg_paths.parse_args(driver["entryPointArguments"])
    assert (parsed.max_hops, parsed.max_paths, parsed.seed, parsed.engine) == (3, 50, 0, "graphframes")
    conf = {
        "spark.archives": "s3://medreason-dist-data/code/medreason_venv.tar.gz#environment",
        "spark.submit.pyFiles": "s3://medreason-dist-data/code/medreason_dist.zip",
        "spark.jars.packages": PKG,
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": "./environment/bin/python",
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": "./environment/bin/python",
        "spark.executorEnv.PYSPARK_PYTHON": "./environment/bin/python",
    }
    assert driver["sparkSubmitParameters"] == " ".join(f"--conf {k}={v}" for k, v in sorted(conf.items()))
    assert req["configurationOverrides"] == {"monitoringConfiguration": {"s3MonitoringConfiguration": {
        "logUri": "s3://medreason-dist-data/logs/emr/"}}}


def test_emr_release_label_is_spark_8():
    # moto only accepts emr-N.N.0 labels, so the application in the moto test uses another one.
    assert load_config("conf/aws.yaml").deploy.emr.release_label == "emr-spark-8.0.0"


def test_path_job_parameters_follow_the_config(capsys):
    plan = dry_run(capsys, "emr", "conf/aws.yaml",
                   *sets("deploy.emr.application_id=a", f"deploy.emr.execution_role_arn={ROLE}",
                         "paths.max_hops=2", "paths.seed=7", "paths.engine=dataframe",
                         "run.out=s3://other-bucket/runs/Trial_1"))
    req = plan["request"]
    args = kg_paths.parse_args(req["jobDriver"]["sparkSubmit"]["entryPointArguments"])
    assert (args.max_hops, args.seed, args.engine) == (2, 7, "dataframe")
    assert args.pairs == "s3://other-bucket/runs/Trial_1/reason/pairs"
    assert req["name"] == "medreason-paths-trial-1"  # batch-id shape: lowercase [a-z0-9-]


def test_dataproc_dry_run_is_the_contract_request(capsys):
    plan = dry_run(capsys, "dataproc", "conf/gcp.yaml", *sets(*GCP_SETS))
    req = plan["request"]
    assert plan["endpoint"] == {"api_endpoint": "us-central1-dataproc.googleapis.com"}
    assert req["parent"] == "projects/proj-x/locations/us-central1"
    assert req["batch_id"] == "medreason-paths-default"
    assert req["batch"] == {
        "pyspark_batch": {"main_python_file_uri": "gs://medreason-dist-data/code/jobs/kg_paths.py",
                          "args": contract_args("gs"),
                          "python_file_uris": ["gs://medreason-dist-data/code/medreason_dist.zip"]},
        "runtime_config": {"version": "3.0", "container_image": IMAGE, "properties": {"spark.jars.packages": PKG}},
        "environment_config": {"execution_config": {"service_account": SA}},
    }
    kg_paths.parse_args(req["batch"]["pyspark_batch"]["args"])


@pytest.mark.parametrize("job,script", [("generate", "jobs/generate.py"), ("sft", "jobs/sft.py"),
                                        ("eval", "jobs/eval.py"), ("leads", "jobs/leads.py run")])
@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_ray_dry_run_entrypoints_and_no_token(capsys, monkeypatch, job, script, cloud):
    monkeypatch.setenv("RAY_AUTH_TOKEN", "tok-very-secret-123")
    code, out, err = run_cli(capsys, "submit", "ray", "--job", job, "--config", f"conf/{cloud}.yaml", "--dry-run")
    assert code == 0, err
    assert "tok-very-secret-123" not in out + err
    req = json.loads(out)["request"]
    conf = f"conf/leads_{cloud}.yaml" if job == "leads" else f"conf/{cloud}.yaml"
    assert req["entrypoint"] == f"python {script} --config {conf} --set ray.address=auto"
    assert req["address"] == "http://127.0.0.1:8265"
    assert req["auth"] == {"header": "Authorization", "from_env": "RAY_AUTH_TOKEN"}
    env = req["runtime_env"]
    assert env["env_vars"]["TOKENIZERS_PARALLELISM"] == "false" and "HF_HUB_OFFLINE" not in env["env_vars"]
    assert Path(env["working_dir"]) == REPO and ".venv" in env["excludes"]


def test_dry_run_needs_no_token(capsys, monkeypatch):
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    assert json.loads(run_cli(capsys, "submit", "ray", "--config", "conf/leads_aws.yaml", "--dry-run")[1])[
        "request"]["auth"] is None


MANIFEST = {
    "apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "medreason-generate"},
    "spec": {
        "entrypoint": "python jobs/generate.py --config conf/aws.yaml --set ray.address=auto",
        "runtimeEnvYAML": "working_dir: /app\nenv_vars:\n  PYTHONUNBUFFERED: '1'\n",
        "shutdownAfterJobFinishes": True,
        "rayClusterSpec": {
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
                {"name": "ray-head", "image": "ghcr.io/x/medreason:old"}]}}},
            "workerGroupSpecs": [{"groupName": "gpu", "replicas": 1, "rayStartParams": {}, "template": {"spec": {
                "containers": [{"name": "ray-worker", "image": "ghcr.io/x/medreason:old"}]}}}],
        },
        "submitterPodTemplate": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "ray-job-submitter", "image": "ghcr.io/x/medreason:old"}]}},
    },
}


@pytest.fixture
def manifest_dir(tmp_path) -> Path:
    for job in ("generate", "leads"):
        doc = copy.deepcopy(MANIFEST)
        doc["metadata"]["name"] = f"medreason-{job}"
        if job == "leads":
            doc["spec"]["entrypoint"] = "python jobs/leads.py run --config conf/leads_aws.yaml --set ray.address=auto"
        (tmp_path / f"rayjob-{job}.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


def expected_rayjob(job: str, conf: str, namespace: str, image: str) -> dict:
    body = copy.deepcopy(MANIFEST)
    body["metadata"] = {"name": f"medreason-{job}", "namespace": namespace}
    script = "jobs/leads.py run" if job == "leads" else "jobs/generate.py"
    body["spec"]["entrypoint"] = f"python {script} --config {conf} --set ray.address=auto"
    for group in [body["spec"]["rayClusterSpec"]["headGroupSpec"], *body["spec"]["rayClusterSpec"]["workerGroupSpecs"]]:
        group["template"]["spec"]["containers"][0]["image"] = image
    body["spec"]["submitterPodTemplate"]["spec"]["containers"][0]["image"] = image  # it runs `ray job submit`
    return body


def test_kuberay_dry_run_swaps_namespace_image_and_config(capsys, manifest_dir):
    plan = dry_run(capsys, "kuberay", "conf/gcp.yaml", "--job", "leads",
                   *sets(f"deploy.kuberay.manifest_dir={manifest_dir}", "deploy.kuberay.namespace=research",
                         "deploy.kuberay.image=ghcr.io/x/medreason:2"))
    assert plan["request"]["body"] == expected_rayjob("leads", "conf/leads_gcp.yaml", "research",
                                                      "ghcr.io/x/medreason:2")


def test_ray_submit_uses_the_manifest_runtime_env(capsys, manifest_dir):
    req = dry_run(capsys, "ray", "conf/aws.yaml", *sets(f"deploy.kuberay.manifest_dir={manifest_dir}"))["request"]
    assert req["runtime_env"]["env_vars"] == {"PYTHONUNBUFFERED": "1"}  # from runtimeEnvYAML, not the default
    assert Path(req["runtime_env"]["working_dir"]) == REPO  # /app exists in the image only


@pytest.mark.parametrize("job", ["generate", "sft", "eval", "leads"])
def test_kuberay_dry_run_of_the_repository_manifests(capsys, job):
    path = REPO / "cluster" / "kuberay" / f"rayjob-{job}.yaml"
    if not path.is_file():
        pytest.skip(f"{path.relative_to(REPO)} not written yet (cluster helper)")
    manifest = yaml.safe_load(path.read_text())
    body = dry_run(capsys, "kuberay", "conf/gcp.yaml", "--job", job)["request"]["body"]
    conf = "conf/leads_gcp.yaml" if job == "leads" else "conf/gcp.yaml"
    words = shlex.split(body["spec"]["entrypoint"])
    assert words[words.index("--config") + 1] == conf
    assert body["spec"]["runtimeEnvYAML"] == manifest["spec"].get("runtimeEnvYAML")
    assert body["spec"]["rayClusterSpec"] == manifest["spec"]["rayClusterSpec"]  # no image override in conf
    assert body["metadata"] == manifest["metadata"]  # namespace: null keeps the manifest's


# -- bad input -------------------------------------------------------------------------------


def test_missing_application_id_names_the_key(capsys):
    code, out, err = run_cli(capsys, "submit", "emr", "--config", "conf/aws.yaml", "--dry-run",
                             *sets(f"deploy.emr.execution_role_arn={ROLE}"))
    assert code == 2 and out == ""
    assert "deploy.emr.application_id" in err


def test_local_datasets_are_refused_for_a_cloud_job(capsys):
    code, _, err = run_cli(capsys, "submit", "dataproc", "--config", "conf/gcp.yaml", "--dry-run",
                           *sets(*GCP_SETS, "run.out=./out"))
    assert code == 2 and "--pairs" in err and "gs://" in err


def test_wrong_code_scheme_and_job_flag_are_usage_errors(capsys):
    code, _, err = run_cli(capsys, "submit", "dataproc", "--config", "conf/aws.yaml", "--dry-run",
                           *sets(*GCP_SETS, "deploy.dataproc.region=europe-west4", "run.out=gs://b/runs/r",
                                 "kg.dir=gs://b/kg/primekg"))
    assert code == 2 and "deploy.code_uri" in err
    code, _, err = run_cli(capsys, "submit", "emr", "--job", "sft", "--config", "conf/aws.yaml", "--dry-run")
    assert code == 2 and "--job" in err


def test_unknown_deploy_key_fails_at_load(capsys):
    code, _, err = run_cli(capsys, "submit", "emr", "--config", "conf/aws.yaml", "--dry-run",
                           *sets("deploy.emr.aplication_id=x"))
    assert code == 2 and "deploy.emr.aplication_id" in err


def test_deploy_settings_never_change_fingerprints():
    for key in ("deploy.code_uri", "deploy.emr.application_id", "deploy.kuberay.image", "deploy.job_configs"):
        assert is_execution_only(key)


# -- EMR Serverless against moto ---------------------------------------------------------------


def test_emr_submit_and_wait_against_moto(capsys, s3_server):
    import boto3

    emr = boto3.client("emr-serverless", endpoint_url=s3_server, region_name="us-east-1")
    app = emr.create_application(name="medreason-spark", releaseLabel="emr-7.0.0", type="SPARK")["applicationId"]
    common = sets(f"deploy.emr.application_id={app}", f"deploy.emr.execution_role_arn={ROLE}",
                  f"deploy.emr.endpoint_url={s3_server}", *FAST)
    code, out, err = run_cli(capsys, "submit", "emr", "--config", "conf/aws.yaml", *common)
    assert code == 0, err
    assert "SUCCESS" in out and "emr job run" in err
    runs = emr.list_job_runs(applicationId=app)["jobRuns"]
    assert len(runs) == 1
    run = emr.get_job_run(applicationId=app, jobRunId=runs[0]["id"])["jobRun"]
    expected = json.loads(run_cli(capsys, "submit", "emr", "--config", "conf/aws.yaml", "--dry-run", *common)[1])[
        "request"]
    driver = run["jobDriver"]["sparkSubmit"]
    assert driver["entryPoint"] == "s3://medreason-dist-data/code/jobs/kg_paths.py"
    assert driver["entryPointArguments"] == contract_args("s3")
    assert driver == expected["jobDriver"]["sparkSubmit"]
    assert run["executionRole"] == ROLE and run["name"] == "medreason-paths-default"
    assert run["configurationOverrides"] == expected["configurationOverrides"]

    # --no-wait: only the id, which the service knows
    code, out, err = run_cli(capsys, "submit", "emr", "--config", "conf/aws.yaml", "--no-wait", *common)
    assert code == 0, err
    job_id = out.strip()
    assert emr.get_job_run(applicationId=app, jobRunId=job_id)["jobRun"]["state"] == "SUCCESS"


def test_emr_unknown_application_is_a_runtime_error(capsys, s3_server):
    code, _, err = run_cli(capsys, "submit", "emr", "--config", "conf/aws.yaml",
                           *sets("deploy.emr.application_id=00doesnotexist", f"deploy.emr.execution_role_arn={ROLE}",
                                 f"deploy.emr.endpoint_url={s3_server}", *FAST))
    assert code == 1 and "start_job_run" in err


# -- loopback HTTP stand-ins -------------------------------------------------------------------


class Recorder:
    """A threaded HTTP server on 127.0.0.1: records requests, answers via ``route(method, path, query, body)``."""

    def __init__(self, route):
        self.requests: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                body = json.loads(raw) if raw else None
                item = {"method": self.command, "path": url.path, "query": parse_qs(url.query), "body": body,
                        "headers": dict(self.headers)}
                recorder.requests.append(item)
                status, reply = route(self.command, url.path, item["query"], body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    servers = []

    def start(route):
        servers.append(Recorder(route))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def dataproc_route(final_state: str, message: str = ""):
    polls = {"n": 0}

    def route(method, path, query, body):
        if method == "POST" and path.endswith("/batches"):
            return 200, {"name": f"{path.rsplit('/batches', 1)[0]}/operations/op-1", "done": False}
        if method == "GET" and "/batches/" in path:
            polls["n"] += 1
            state = "RUNNING" if polls["n"] == 1 else final_state
            return 200, {"name": path[len("/v1/"):], "state": state, "stateMessage": message if polls["n"] > 1 else ""}
        return 404, {"error": {"code": 404, "message": f"no route {method} {path}", "status": "NOT_FOUND"}}

    return route


def job_spec(cloud: str, tmp_path_factory) -> dict:
    """Outputs of terraform/modules/job_spec (provider-free) for the conf/*.yaml bucket and run:
    through the terraform helper's ``job_spec_outputs`` when it exists, else applied here."""
    if not shutil.which("terraform"):
        pytest.skip("terraform is not on PATH")
    tf_vars = {"bucket": "medreason-dist-data", "run_name": "default"}
    if cloud == "gcp":
        tf_vars |= {"container_image": IMAGE, "service_account": SA}
    try:
        from terraform_helpers import job_spec_outputs
    except ImportError:
        job_spec_outputs = None
    if job_spec_outputs is not None:
        outputs = job_spec_outputs(cloud, **tf_vars)
    else:
        import subprocess

        work = tmp_path_factory.mktemp(f"job_spec_{cloud}")
        for tf in (REPO / "terraform" / "modules" / "job_spec").glob("*.tf"):
            shutil.copy(tf, work)
        var_args = [f"-var={k}={v}" for k, v in {"cloud": cloud, **tf_vars}.items()]
        for cmd in (["init", "-backend=false", "-input=false"], ["apply", "-auto-approve", "-input=false", *var_args]):
            subprocess.run(["terraform", *cmd], cwd=work, check=True, capture_output=True, timeout=120)
        outputs = json.loads(subprocess.run(["terraform", "output", "-json"], cwd=work, check=True,
                                            capture_output=True, text=True, timeout=60).stdout)
    return {k: v["value"] if isinstance(v, dict) and "value" in v and "type" in v else v for k, v in outputs.items()}


def test_emr_request_matches_the_terraform_definition(capsys, tmp_path_factory):
    tf = job_spec("aws", tmp_path_factory)
    req = dry_run(capsys, "emr", "conf/aws.yaml",
                  *sets("deploy.emr.application_id=a", f"deploy.emr.execution_role_arn={ROLE}"))["request"]
    driver = req["jobDriver"]["sparkSubmit"]
    assert driver["entryPoint"] == tf["paths_job"]["entry_point"]
    assert driver["entryPointArguments"] == tf["paths_job"]["arguments"]
    assert driver["sparkSubmitParameters"] == tf["paths_job"]["spark_submit_parameters"]
    assert req["name"] == tf["names"]["job_run_name"]
    log_uri = req["configurationOverrides"]["monitoringConfiguration"]["s3MonitoringConfiguration"]["logUri"]
    assert log_uri == f"s3://{tf['names']['bucket']}/{tf['names']['emr_log_prefix']}"


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_ray_entrypoints_match_the_terraform_definition(capsys, tmp_path_factory, cloud):
    tf = job_spec(cloud, tmp_path_factory)
    for job, entrypoint in tf["ray_entrypoints"].items():
        config = f"conf/leads_{cloud}.yaml" if job == "leads" else f"conf/{cloud}.yaml"
        req = dry_run(capsys, "ray", config, "--job", job)["request"]
        assert req["entrypoint"] == entrypoint


def test_dataproc_submit_over_rest_matches_the_definition(capsys, recorder, tmp_path_factory):
    server = recorder(dataproc_route("SUCCEEDED"))
    code, out, err = run_cli(capsys, "submit", "dataproc", "--config", "conf/gcp.yaml",
                             *sets(*GCP_SETS, f"deploy.dataproc.endpoint={server.url}", *FAST))
    assert code == 0, err
    assert "SUCCEEDED" in out and "RUNNING" in err
    post = [r for r in server.requests if r["method"] == "POST"]
    assert len(post) == 1
    assert post[0]["path"] == "/v1/projects/proj-x/locations/us-central1/batches"
    assert post[0]["query"]["batchId"] == ["medreason-paths-default"]
    assert "authorization" not in {k.lower() for k in post[0]["headers"]}  # anonymous only for the stand-in
    sent = post[0]["body"]
    contract = {"main_python_file_uri": "gs://medreason-dist-data/code/jobs/kg_paths.py", "args": contract_args("gs"),
                "python_file_uris": ["gs://medreason-dist-data/code/medreason_dist.zip"],
                "properties": {"spark.jars.packages": PKG}, "runtime_version": "3.0", "container_image": IMAGE,
                "service_account": SA, "batch_id": "medreason-paths-default"}
    # the contract's values here; the Terraform definition as well where terraform exists
    tf = job_spec("gcp", tmp_path_factory)["paths_job"] if shutil.which("terraform") else contract
    assert tf == contract
    assert sent["pysparkBatch"]["mainPythonFileUri"] == tf["main_python_file_uri"]
    assert sent["pysparkBatch"]["args"] == tf["args"]
    assert sent["pysparkBatch"]["pythonFileUris"] == tf["python_file_uris"]
    assert sent["runtimeConfig"]["properties"] == tf["properties"]
    assert sent["runtimeConfig"]["version"] == tf["runtime_version"]
    assert sent["runtimeConfig"]["containerImage"] == tf["container_image"]
    assert sent["environmentConfig"]["executionConfig"]["serviceAccount"] == tf["service_account"]
    assert post[0]["query"]["batchId"] == [tf["batch_id"]]
    gets = [r for r in server.requests if r["method"] == "GET"]
    assert gets and all(r["path"] == "/v1/projects/proj-x/locations/us-central1/batches/medreason-paths-default"
                        for r in gets)


def test_dataproc_failed_batch_exits_nonzero_with_state_and_message(capsys, recorder):
    server = recorder(dataproc_route("FAILED", "Job failed with message [ModuleNotFoundError: graphframes]"))
    code, out, err = run_cli(capsys, "submit", "dataproc", "--config", "conf/gcp.yaml",
                             *sets(*GCP_SETS, f"deploy.dataproc.endpoint={server.url}", *FAST))
    assert code == 1
    assert "FAILED" in err and "ModuleNotFoundError: graphframes" in err


def test_dataproc_no_wait_prints_the_batch_name(capsys, recorder):
    server = recorder(dataproc_route("SUCCEEDED"))
    code, out, _ = run_cli(capsys, "submit", "dataproc", "--config", "conf/gcp.yaml", "--no-wait",
                           *sets(*GCP_SETS, f"deploy.dataproc.endpoint={server.url}"))
    assert code == 0
    assert out.strip() == "projects/proj-x/locations/us-central1/batches/medreason-paths-default"
    assert [r["method"] for r in server.requests] == ["POST"]


def kube_route(statuses: list[dict]):
    """An API server for RayJobs: create echoes the object, each read returns the next status."""
    created: dict = {}

    def route(method, path, query, body):
        if method == "POST" and path.endswith("/rayjobs"):
            created.update(copy.deepcopy(body))
            created["metadata"]["uid"] = "u-1"
            return 201, created
        if method == "GET" and created and path.endswith("/rayjobs/" + created["metadata"]["name"]):
            status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            return 200, {**created, "status": status}
        return 404, {"kind": "Status", "status": "Failure", "message": f"no route {method} {path}", "code": 404}

    return route


def test_kuberay_submit_posts_the_manifest(capsys, recorder, manifest_dir):
    server = recorder(kube_route([{"jobDeploymentStatus": "Initializing"},
                                  {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"},
                                  {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}]))
    code, out, err = run_cli(capsys, "submit", "kuberay", "--config", "conf/aws.yaml",
                             *sets(f"deploy.kuberay.manifest_dir={manifest_dir}", f"deploy.kuberay.host={server.url}",
                                   "deploy.kuberay.namespace=research", "deploy.kuberay.image=ghcr.io/x/medreason:2",
                                   *FAST))
    assert code == 0, err
    assert "Complete/SUCCEEDED" in out and "Running/RUNNING" in err
    post = [r for r in server.requests if r["method"] == "POST"]
    assert post[0]["path"] == "/apis/ray.io/v1/namespaces/research/rayjobs"
    assert post[0]["body"] == expected_rayjob("generate", "conf/aws.yaml", "research", "ghcr.io/x/medreason:2")


def test_kuberay_failed_job_and_refused_create(capsys, recorder, manifest_dir):
    server = recorder(kube_route([{"jobDeploymentStatus": "Failed", "jobStatus": "FAILED",
                                   "reason": "AppFailed", "message": "job exited with code 1"}]))
    base = sets(f"deploy.kuberay.manifest_dir={manifest_dir}", f"deploy.kuberay.host={server.url}", *FAST)
    code, _, err = run_cli(capsys, "submit", "kuberay", "--config", "conf/aws.yaml", *base)
    assert code == 1 and "Failed/FAILED" in err and "job exited with code 1" in err

    refused = recorder(lambda *a: (409, {"kind": "Status", "message": 'rayjobs "medreason-generate" already exists',
                                         "code": 409}))
    code, _, err = run_cli(capsys, "submit", "kuberay", "--config", "conf/aws.yaml",
                           *sets(f"deploy.kuberay.manifest_dir={manifest_dir}", f"deploy.kuberay.host={refused.url}"))
    assert code == 1 and "HTTP 409" in err and "already exists" in err


def test_kuberay_without_manifest_is_a_usage_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "submit", "kuberay", "--config", "conf/aws.yaml", "--dry-run",
                           *sets(f"deploy.kuberay.manifest_dir={tmp_path}"))
    assert code == 2 and "rayjob-generate.yaml" in err


# -- Ray job API: polling and progress with a stub client -------------------------------------


class StubJobClient:
    def __init__(self, statuses, message=""):
        self.statuses, self.message, self.submitted = list(statuses), message, []

    def submit_job(self, *, entrypoint, runtime_env):
        self.submitted.append((entrypoint, runtime_env))
        return "raysubmit_abc"

    def get_job_status(self, job_id):
        assert job_id == "raysubmit_abc"
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def get_job_info(self, job_id):
        return type("Info", (), {"message": self.message})()


def ray_request():
    cfg = load_config("conf/aws.yaml")
    return cfg, ray_jobs.build(cfg, "sft", "conf/aws.yaml")


def test_ray_job_polls_to_success_with_one_line_per_state():
    cfg, request = ray_request()
    stub = StubJobClient(["PENDING", "PENDING", "RUNNING", "SUCCEEDED"])
    job = ray_jobs.submit(cfg, request, job_client=stub)
    assert stub.submitted == [(request["entrypoint"], request["runtime_env"])]
    buf, clock = io.StringIO(), iter(range(0, 1000, 30))
    final, seconds = wait(job, interval_s=0, out=buf, tty=False, clock=lambda: next(clock), sleep=lambda s: None)
    assert final.ok and final.state == "SUCCEEDED" and seconds == 120  # four polls, 30 s apart
    lines = buf.getvalue().splitlines()
    assert [ln.split()[3] for ln in lines] == ["PENDING", "RUNNING", "SUCCEEDED"]  # repeats are not reprinted
    assert lines[-1] == "ray job raysubmit_abc  SUCCEEDED  2:00"


def test_ray_job_failure_carries_the_message():
    cfg, request = ray_request()
    job = ray_jobs.submit(cfg, request, job_client=StubJobClient(["RUNNING", "FAILED"], "exit code 3"))
    final, _ = wait(job, interval_s=0, out=io.StringIO(), tty=False, sleep=lambda s: None)
    assert (final.done, final.ok, final.state, final.message) == (True, False, "FAILED", "exit code 3")


def test_ray_submit_refused_is_a_submit_error():
    class Refusing(StubJobClient):
        def submit_job(self, **kw):
            raise RuntimeError("Request failed with status code 401: Authentication required")

    cfg, request = ray_request()
    with pytest.raises(SubmitError, match="401"):
        ray_jobs.submit(cfg, request, job_client=Refusing([]))


def test_tty_progress_redraws_one_line():
    states = iter([JobState("RUNNING", False), JobState("RUNNING", False), JobState("SUCCESS", True, True)])
    buf = io.StringIO()
    final, _ = wait(Submitted("emr job run", "j1", lambda: next(states)), interval_s=0, out=buf, tty=True,
                    sleep=lambda s: None)
    text = buf.getvalue()
    assert final.ok and text.count("\n") == 1 and text.count("\r") == 3 and text.endswith("SUCCESS  0:00\x1b[K\n")
