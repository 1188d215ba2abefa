"""Offline checks of the cluster material in cluster/: Kubernetes manifests against the API and the
KubeRay CRD schemas (typos fail), Ray launcher configs against Ray's schema, checkov over
everything, the Dockerfiles' required settings, and the Spark job bundle's dependency list."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CLUSTER = REPO / "cluster"
KUBERAY = CLUSTER / "kuberay"
CRD_DIR = REPO.parent / "shared" / "schemas" / "kuberay"
RAY_SCHEMA = Path(jsonschema.__file__).parent.parent / "ray" / "autoscaler" / "ray-schema.json"
CHECKOV = REPO / ".tools" / "checkov" / "bin" / "checkov"
IMAGE = "medreason-dist/ray-gpu:0.1.0"

ENTRYPOINTS = {  # the contract's RayJob entrypoints, word for word
    "generate": "python jobs/generate.py --config conf/aws.yaml --set ray.address=auto",
    "sft": "python jobs/sft.py --config conf/aws.yaml --set ray.address=auto",
    "eval": "python jobs/eval.py --config conf/aws.yaml --set ray.address=auto",
    "leads": "python jobs/leads.py run --config conf/leads_aws.yaml --set ray.address=auto",
}


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _all_docs() -> list[tuple[Path, dict]]:
    return [(p, d) for p in sorted(KUBERAY.glob("*.yaml")) for d in _docs(p)]


def _ray_docs() -> list[tuple[Path, dict]]:
    return [(p, d) for p, d in _all_docs() if d["apiVersion"].startswith("ray.io/")]


def _cluster_spec(doc: dict) -> dict:
    return doc["spec"]["rayClusterSpec"] if doc["kind"] == "RayJob" else doc["spec"]


def _pod_templates(doc: dict) -> list[tuple[str, dict]]:
    spec = _cluster_spec(doc)
    out = [("head", spec["headGroupSpec"]["template"])]
    out += [(g["groupName"], g["template"]) for g in spec.get("workerGroupSpecs", [])]
    if "submitterPodTemplate" in doc["spec"]:
        out.append(("submitter", doc["spec"]["submitterPodTemplate"]))
    return out


# --- built-in kinds ------------------------------------------------------------------------------

def test_builtin_kinds_pass_strict_kubernetes_validation():
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is in the dev extra")
    builtin = [(p, d) for p, d in _all_docs() if not d["apiVersion"].startswith("ray.io/")]
    assert {d["kind"] for _, d in builtin} >= {"Namespace", "ServiceAccount", "NetworkPolicy"}
    for path, doc in builtin:
        kv.validate(doc, kv.latest_version(), strict=True)  # raises on any unknown or mistyped field
    broken = copy.deepcopy(next(d for _, d in builtin if d["kind"] == "ServiceAccount"))
    broken["metadata"]["anotations"] = broken["metadata"].pop("annotations")
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, kv.latest_version(), strict=True)


# --- KubeRay custom resources ---------------------------------------------------------------------

def _closed(schema):
    """The CRD schema with additionalProperties: false wherever Kubernetes would prune unknown
    fields (objects with `properties` and no x-kubernetes-preserve-unknown-fields)."""
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields") \
                and "additionalProperties" not in schema:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


def _crd_validator(kind: str) -> jsonschema.Draft7Validator:
    if not CRD_DIR.is_dir():
        pytest.skip(f"KubeRay CRD schemas not found at {CRD_DIR} (shared data, not part of the repo)")
    crd = yaml.safe_load((CRD_DIR / f"ray.io_{kind.lower()}s.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = _closed(version["schema"]["openAPIV3Schema"])
    # apiVersion/kind/metadata are checked by the API server, not the CRD: describe them here.
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("name", sorted(p.name for p, _ in _ray_docs()))
def test_ray_resources_match_the_kuberay_crd_with_unknown_fields_forbidden(name):
    doc = _docs(KUBERAY / name)[0]
    errors = sorted(_crd_validator(doc["kind"]).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


@pytest.mark.parametrize("where", ["spec", "container"])
def test_a_misspelled_field_is_rejected_by_the_closed_crd_schema(where):
    doc = _docs(KUBERAY / "rayjob-generate.yaml")[0]
    validator = _crd_validator("RayJob")
    assert validator.is_valid(doc)
    if where == "spec":
        doc["spec"]["shutdownAfterJobFinished"] = doc["spec"].pop("shutdownAfterJobFinishes")
    else:
        container = doc["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
        container["imagePulPolicy"] = container.pop("imagePullPolicy")
    assert not validator.is_valid(doc)


def test_rayjobs_follow_the_contract():
    jobs = {d["metadata"]["name"].removeprefix("medreason-"): d for _, d in _ray_docs() if d["kind"] == "RayJob"}
    assert set(jobs) == set(ENTRYPOINTS)
    specs = []
    for job, doc in jobs.items():
        spec = doc["spec"]
        assert spec["entrypoint"] == ENTRYPOINTS[job]
        # Only settings that also hold locally: the multi-node test submits this runtime env.
        assert yaml.safe_load(spec["runtimeEnvYAML"]) == {
            "working_dir": "/app", "env_vars": {"TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}}
        assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
        assert spec["activeDeadlineSeconds"] > 0
        specs.append(spec["rayClusterSpec"])
    assert all(s == specs[0] for s in specs), "the RayJobs' cluster specs drifted apart"


def test_pods_run_non_root_with_the_namespace_service_account_and_gpus_only_on_workers():
    sa = next(d for _, d in _all_docs() if d["kind"] == "ServiceAccount")
    ns = next(d for _, d in _all_docs() if d["kind"] == "Namespace")["metadata"]["name"]
    assert sa["metadata"]["namespace"] == ns
    assert {"eks.amazonaws.com/role-arn", "iam.gke.io/gcp-service-account"} <= set(sa["metadata"]["annotations"])
    for path, doc in _ray_docs():
        assert doc["metadata"]["namespace"] == ns, path.name
        assert _cluster_spec(doc)["rayVersion"] == metadata.version("ray"), path.name
        for group, template in _pod_templates(doc):
            pod = template["spec"]
            assert pod["serviceAccountName"] == sa["metadata"]["name"], (path.name, group)
            assert pod["securityContext"]["runAsNonRoot"] is True
            for c in pod["containers"]:
                assert c["image"] == IMAGE
                assert c["securityContext"]["allowPrivilegeEscalation"] is False
                assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
                res = c["resources"]
                assert res["requests"]["cpu"] and res["limits"]["memory"], (path.name, group)
                gpus = int(res["limits"].get("nvidia.com/gpu", 0))
                if group == "gpu":
                    assert gpus >= 1 and res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"]
                    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
                else:
                    assert gpus == 0, f"{path.name}: {group} asks for a GPU"
        assert _cluster_spec(doc)["headGroupSpec"]["rayStartParams"]["num-gpus"] == "0"


# --- Ray cluster launcher -------------------------------------------------------------------------

def _launcher_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(RAY_SCHEMA.read_text()))


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_launcher_configs_match_rays_schema(cloud):
    cfg = yaml.safe_load((CLUSTER / "ray" / f"{cloud}.yaml").read_text())
    errors = list(_launcher_validator().iter_errors(cfg))
    assert not errors, [e.message for e in errors]
    assert cfg["provider"]["type"] == cloud and cfg["docker"]["image"] == IMAGE
    types = cfg["available_node_types"]
    assert types[cfg["head_node_type"]]["resources"]["GPU"] == 0
    workers = [t for n, t in types.items() if n != cfg["head_node_type"]]
    assert workers and all(t["resources"]["GPU"] >= 1 for t in workers)
    # conf/<cloud>.yaml asks ray.data.llm for this accelerator: the autoscaler must know who has it.
    accel = yaml.safe_load((REPO / "conf" / f"{cloud}.yaml").read_text())["llm"]["gpu"]["accelerator_type"]
    assert any(f"accelerator_type:{accel}" in t["resources"] for t in workers)
    assert not cfg["setup_commands"] and not cfg["file_mounts"]  # everything is in the image


def test_launcher_schema_rejects_a_misspelled_key():
    cfg = yaml.safe_load((CLUSTER / "ray" / "aws.yaml").read_text())
    cfg["idle_timeout_minute"] = cfg.pop("idle_timeout_minutes")
    assert not _launcher_validator().is_valid(cfg)


# --- checkov ----------------------------------------------------------------------------------------

def test_checkov_finds_no_failed_check(tmp_path):
    if not CHECKOV.is_file():
        pytest.skip(f"checkov not installed at {CHECKOV} (`make test` builds it)")
    scan = tmp_path / "scan"
    shutil.copytree(CLUSTER, scan)
    # checkov does not look inside Ray custom resources: scan each pod template as a Pod that
    # carries its resource's checkov.io/skip annotations (each with its reason, in the manifest).
    for path, doc in _ray_docs():
        skips = {k: v for k, v in doc["metadata"].get("annotations", {}).items() if k.startswith("checkov.io/")}
        for group, template in _pod_templates(doc):
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"{doc['metadata']['name']}-{group}", "namespace": doc["metadata"]["namespace"],
                                "labels": template["metadata"]["labels"], "annotations": skips},
                   "spec": template["spec"]}
            (scan / "pods").mkdir(exist_ok=True)
            (scan / "pods" / f"{path.stem}-{group}.yaml").write_text(yaml.safe_dump(pod))
    proc = subprocess.run([str(CHECKOV), "-d", str(scan), "--framework", "kubernetes", "dockerfile",
                           "--skip-download", "-o", "json", "--quiet"], capture_output=True, text=True, timeout=600)
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [(c["check_id"], c["resource"]) for r in reports for c in r["results"].get("failed_checks", [])]
    assert not failed, failed
    summary = {r["check_type"]: r["summary"] for r in reports}
    assert set(summary) == {"kubernetes", "dockerfile"}
    assert summary["kubernetes"]["passed"] > 100  # the pod templates really were checked
    assert all(s["parsing_errors"] == 0 for s in summary.values())


# --- Dockerfiles ----------------------------------------------------------------------------------

def _instructions(name: str) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (CLUSTER / "docker" / name).read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_ray_image_pins_ray_python_and_the_gpu_extra_and_ends_non_root():
    ins = _instructions("ray-gpu.Dockerfile")
    assert re.fullmatch(r"rayproject/ray:2\.60\.0-py311-(gpu|cu\d+)", dict(ins)["FROM"].strip())
    extras = __import__("tomllib").loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["gpu"] == ["ray[llm]==2.60.0"]
    runs = " ".join(arg for op, arg in ins if op == "RUN")
    assert '"/app[gpu]"' in runs and "--no-deps /app" in runs
    assert [arg for op, arg in ins if op == "USER"][-1].strip() == "ray"
    assert any(op == "HEALTHCHECK" for op, _ in ins)
    assert "COPY" in {op for op, _ in ins} and "ADD" not in {op for op, _ in ins}


def test_dataproc_image_meets_the_serverless_container_rules():
    ins = _instructions("dataproc.Dockerfile")
    runs = " ".join(arg for op, arg in ins if op == "RUN")
    env = " ".join(arg for op, arg in ins if op == "ENV")
    assert "groupadd -g 1099 spark" in runs and "useradd -u 1099 -g 1099" in runs
    assert [arg for op, arg in ins if op == "USER"][-1].strip() == "spark"
    assert "PYSPARK_PYTHON=/opt/medreason-venv/bin/python" in env
    assert "tini" in runs and "procps" in runs
    # The service mounts Spark (and its Java): neither may come from the image.
    assert not re.search(r"pyspark|openjdk|default-jre", runs, re.I)


# --- the Spark job bundle -------------------------------------------------------------------------

def _bundle_requirements() -> set[str]:
    lines = (CLUSTER / "bundle" / "requirements.txt").read_text().splitlines()
    return {re.split(r"[<>=!\[ ;]", ln.strip())[0].lower() for ln in lines if ln.strip() and not ln.startswith("#")}


def _closure(names: set[str]) -> set[str]:
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for req in metadata.requires(name) or []:
            if "extra ==" not in req:
                todo.append(re.split(r"[<>=!\[ ;(]", req)[0])
    return seen


def test_bundle_requirements_cover_what_the_path_job_imports_and_leave_out_pyspark():
    reqs = _bundle_requirements()
    assert "pyspark" not in reqs  # EMR/Dataproc provide it
    probe = ("import sys; before = set(sys.modules)\n"
             "import medreason_dist.cli, medreason_dist.config, medreason_dist.storage, medreason_dist.runner.execute\n"
             "import medreason_dist.spark.paths, medreason_dist.spark.graphframes_engine, graphframes\n"
             "print('\\n'.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
    dists = metadata.packages_distributions()
    imported = {d.lower().replace("_", "-") for m in out.stdout.split() for d in dists.get(m, [])}
    imported -= {"medreason-dist", "medreason_dist", "pyspark", "py4j"}  # py4j ships inside Spark
    # pyarrow picks up cloudpickle when present and works without it.
    missing = imported - _closure(reqs) - {"cloudpickle"}
    assert not missing, f"add to cluster/bundle/requirements.txt: {sorted(missing)}"


@pytest.mark.slow
def test_package_zip_imports_outside_the_repository(tmp_path):
    sys.path.insert(0, str(CLUSTER / "bundle"))
    try:
        import build_zip
    finally:
        sys.path.remove(str(CLUSTER / "bundle"))
    zip_path = build_zip.build(tmp_path / "medreason_dist.zip")
    first = zip_path.read_bytes()
    assert build_zip.build(tmp_path / "again.zip").read_bytes() == first  # reproducible bytes
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    shutil.copy(REPO / "jobs" / "kg_paths.py", jobs / "kg_paths.py")  # the bucket's code/ layout
    env = {"PYTHONPATH": str(zip_path), "PATH": "/usr/bin:/bin"}
    check = ("import medreason_dist, medreason_dist.jobs, medreason_dist.cli, sys; "
             f"assert medreason_dist.__file__.startswith({str(zip_path)!r}), medreason_dist.__file__")
    subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, check=True, timeout=300)
    # kg_paths.py imports the package before parsing: --help proves the zip is enough to start.
    proc = subprocess.run([sys.executable, "jobs/kg_paths.py", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "--max-hops" in proc.stdout, proc.stderr
