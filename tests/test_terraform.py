"""Offline checks of terraform/: formatting, HCL, variable validation, the job definition the
cloud stacks use, and checkov over terraform/ and cluster/. Nothing here reaches a cloud."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from terraform_helpers import JOB_SPEC_DIR, REPO, TERRAFORM, TERRAFORM_DIR, job_spec_outputs, run_terraform, terraform_env

CHECKOV = REPO / ".tools" / "checkov" / "bin" / "checkov"
AWS_PROVIDER_MIRROR = Path("/opt/tf-plugins/registry.terraform.io/hashicorp/aws")

needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not on PATH")

BUCKET, RUN = "medreason-test", "r1"
GF = "io.graphframes:graphframes-spark4_2.13:0.10.0"


def _kg_paths():
    spec = importlib.util.spec_from_file_location("kg_paths_job", REPO / "jobs" / "kg_paths.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _expected_arguments(scheme: str, max_hops: int = 3, engine: str = "graphframes") -> list[str]:
    root = f"{scheme}://{BUCKET}"
    return ["--nodes", f"{root}/kg/primekg/nodes", "--edges", f"{root}/kg/primekg/edges",
            "--pairs", f"{root}/runs/{RUN}/reason/pairs", "--out", f"{root}/runs/{RUN}/reason/paths",
            "--max-hops", str(max_hops), "--max-paths", "50", "--seed", "0", "--engine", engine]


def _tf_files() -> list[Path]:
    return sorted(p for p in TERRAFORM_DIR.rglob("*.tf") if ".terraform" not in p.parts)


# --- static checks -------------------------------------------------------------------------------

@needs_terraform
def test_fmt_is_clean(tmp_path):
    proc = subprocess.run([TERRAFORM, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM_DIR)],
                          capture_output=True, text=True, env=terraform_env(tmp_path))
    assert proc.returncode == 0, f"terraform fmt would change:\n{proc.stdout}{proc.stderr}"


def test_every_tf_file_parses_and_no_credentials():
    hcl2 = pytest.importorskip("hcl2")
    files = _tf_files()
    assert len(files) >= 30
    for path in files:
        with path.open() as f:
            doc = hcl2.load(f)
        for provider in doc.get("provider", []):
            for name, body in provider.items():
                forbidden = {"access_key", "secret_key", "token", "credentials", "access_token", "profile"} & set(body)
                assert not forbidden, f"{path}: provider {name} sets {forbidden}"


def _variables(module: str) -> dict[str, dict]:
    import hcl2
    with (TERRAFORM_DIR / module / "variables.tf").open() as f:
        doc = hcl2.load(f)
    return {name.strip("\""): body for block in doc["variable"] for name, body in block.items()}


@pytest.mark.parametrize(("module", "names"), [
    ("modules/job_spec", ["cloud", "bucket", "run_name", "prefix", "max_hops", "max_paths", "seed", "engine",
                          "graphframes_package", "dataproc_runtime_version", "container_image", "service_account"]),
    ("modules/aws_storage", ["bucket", "attempt_prefixes", "attempt_expiry_days", "noncurrent_expiry_days"]),
    ("modules/aws_iam", ["prefix", "bucket_arn", "kms_key_arn", "oidc_provider_arn", "ray_namespace"]),
    ("modules/aws_emr", ["name", "release_label", "initial_capacity", "maximum_capacity", "subnet_ids", "request_key"]),
    ("modules/aws_eks", ["name", "region", "kubernetes_version", "subnet_ids", "public_access_cidrs",
                         "system_node_group", "gpu_node_group"]),
    ("modules/gcp_storage", ["bucket", "location", "attempt_prefixes"]),
    ("modules/gcp_iam", ["project", "prefix", "ray_namespace"]),
    ("modules/gcp_dataproc", ["region", "kms_key", "ttl"]),
    ("modules/gcp_gke", ["name", "master_ipv4_cidr_block", "master_authorized_cidrs", "system_pool", "gpu_pool"]),
    ("modules/kuberay_operator", ["chart_version", "namespace"]),
    ("stacks/aws", ["region", "subnet_ids"]),
    ("stacks/gcp", ["project", "region"]),
])
def test_variables_are_validated(module, names):
    pytest.importorskip("hcl2")
    variables = _variables(module)
    missing = [n for n in names if not variables.get(n, {}).get("validation")]
    assert not missing, f"{module}: no validation block on {missing}"


# --- job_spec: terraform test and apply ------------------------------------------------------------

@needs_terraform
def test_job_spec_terraform_test(tmp_path):
    work = tmp_path / "job_spec"
    shutil.copytree(JOB_SPEC_DIR, work, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    env = terraform_env(tmp_path)
    run_terraform(["init", "-backend=false", "-input=false"], work, env)
    proc = run_terraform(["test"], work, env)
    assert "0 failed" in proc.stdout and "passed" in proc.stdout, proc.stdout


@needs_terraform
def test_job_spec_aws_matches_contract():
    out = job_spec_outputs("aws", bucket=BUCKET, run_name=RUN)
    job = out["paths_job"]
    assert set(job) == {"entry_point", "arguments", "spark_conf", "spark_submit_parameters"}
    assert job["entry_point"] == f"s3://{BUCKET}/code/jobs/kg_paths.py"
    assert job["arguments"] == _expected_arguments("s3")
    conf = {
        "spark.archives": f"s3://{BUCKET}/code/medreason_venv.tar.gz#environment",
        "spark.submit.pyFiles": f"s3://{BUCKET}/code/medreason_dist.zip",
        "spark.jars.packages": GF,
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": "./environment/bin/python",
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": "./environment/bin/python",
        "spark.executorEnv.PYSPARK_PYTHON": "./environment/bin/python",
    }
    assert job["spark_conf"] == conf
    assert job["spark_submit_parameters"] == " ".join(f"--conf {k}={v}" for k, v in sorted(conf.items()))
    assert out["ray_entrypoints"] == {
        "generate": "python jobs/generate.py --config conf/aws.yaml --set ray.address=auto",
        "sft": "python jobs/sft.py --config conf/aws.yaml --set ray.address=auto",
        "eval": "python jobs/eval.py --config conf/aws.yaml --set ray.address=auto",
        "leads": "python jobs/leads.py run --config conf/leads_aws.yaml --set ray.address=auto",
    }
    assert out["batch_id"] == f"medreason-paths-{RUN}"
    # What the EMR job run gets, the job's own parser accepts with the intended values.
    args = _kg_paths().parse_args(job["arguments"])
    assert (args.nodes, args.max_hops, args.max_paths, args.seed, args.engine) == (
        f"s3://{BUCKET}/kg/primekg/nodes", 3, 50, 0, "graphframes")


@needs_terraform
def test_job_spec_gcp_matches_contract():
    sa = "mr-paths-job@proj-1.iam.gserviceaccount.com"
    image = "us-central1-docker.pkg.dev/proj-1/medreason/spark:1"
    out = job_spec_outputs("gcp", bucket=BUCKET, run_name=RUN, prefix="mr", max_hops=2, engine="dataframe",
                           container_image=image, service_account=sa)
    assert out["paths_job"] == {
        "main_python_file_uri": f"gs://{BUCKET}/code/jobs/kg_paths.py",
        "args": _expected_arguments("gs", max_hops=2, engine="dataframe"),
        "python_file_uris": [f"gs://{BUCKET}/code/medreason_dist.zip"],
        "properties": {"spark.jars.packages": GF},
        "runtime_version": "3.0",
        "container_image": image,
        "service_account": sa,
        "batch_id": f"mr-paths-{RUN}",
    }
    assert out["ray_entrypoints"]["leads"] == "python jobs/leads.py run --config conf/leads_gcp.yaml --set ray.address=auto"
    args = _kg_paths().parse_args(out["paths_job"]["args"])
    assert (args.out, args.max_hops, args.engine) == (f"gs://{BUCKET}/runs/{RUN}/reason/paths", 2, "dataframe")
    assert f"runs/{RUN}/reason/paths/.attempts/" in out["attempt_prefixes"]


@needs_terraform
def test_job_spec_refuses_bad_bucket():
    with pytest.raises(RuntimeError, match="bucket must be"):
        job_spec_outputs("aws", bucket="Bad_Bucket", run_name=RUN)


# --- AWS modules against a local provider mirror (when the machine has one) -------------------------

@needs_terraform
@pytest.mark.skipif(not AWS_PROVIDER_MIRROR.is_dir(), reason=f"no AWS provider mirror at {AWS_PROVIDER_MIRROR}")
def test_aws_modules_validate(tmp_path):
    """terraform validate of every AWS module, wired as the stack wires them (helm left out: no
    provider for it offline)."""
    m = TERRAFORM_DIR / "modules"
    (tmp_path / "main.tf").write_text(f'''
provider "aws" {{
  region = "us-east-1"
}}
module "spec" {{
  source   = "{m}/job_spec"
  cloud    = "aws"
  bucket   = "medreason-x"
  run_name = "r1"
}}
module "storage" {{
  source           = "{m}/aws_storage"
  bucket           = "medreason-x"
  attempt_prefixes = module.spec.attempt_prefixes
}}
module "eks" {{
  source     = "{m}/aws_eks"
  name       = "mr-ray"
  region     = "us-east-1"
  subnet_ids = ["subnet-0a", "subnet-0b"]
}}
module "iam" {{
  source            = "{m}/aws_iam"
  prefix            = "medreason"
  bucket_arn        = module.storage.bucket_arn
  kms_key_arn       = module.storage.kms_key_arn
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_issuer       = module.eks.oidc_issuer
}}
module "emr" {{
  source       = "{m}/aws_emr"
  name         = "mr-spark"
  bucket       = module.storage.bucket
  kms_key_arn  = module.storage.kms_key_arn
  job_role_arn = module.iam.job_role_arn
  paths_job    = module.spec.paths_job
  job_run_name = module.spec.names.job_run_name
  request_key  = module.spec.names.job_request_key
}}
''')
    env = terraform_env(tmp_path)
    run_terraform(["init", "-backend=false", "-input=false", f"-plugin-dir={AWS_PROVIDER_MIRROR.parent.parent.parent}"],
                  tmp_path, env)
    proc = run_terraform(["validate"], tmp_path, env)
    assert "The configuration is valid" in proc.stdout


# --- checkov -------------------------------------------------------------------------------------

@pytest.mark.skipif(not CHECKOV.exists(), reason=f"checkov venv missing at {CHECKOV} (make test builds it)")
@pytest.mark.parametrize("folder", ["terraform"])  # cluster/: tests/test_cluster_specs.py, pods included
def test_checkov_has_no_failed_checks(folder):
    if not (REPO / folder).is_dir():
        pytest.skip(f"{folder}/ does not exist")
    proc = subprocess.run([str(CHECKOV), "-d", str(REPO / folder), "--quiet", "-o", "json",
                           "--skip-download"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.stdout.strip(), f"checkov printed nothing: {proc.stderr[-2000:]}"
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = []
    for report in reports:
        if "summary" not in report:  # an empty scan prints only the counters
            assert report.get("failed", 0) == 0, report
            continue
        failed += [f"{c['check_id']} {c['resource']} {c['file_path']}" for c in report["results"]["failed_checks"]]
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
