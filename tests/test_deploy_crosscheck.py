"""Every job command the deployment material names (KubeRay RayJobs, Ray launcher configs, READMEs
and Terraform's job definition) parses with the project's own entry points and names config files
that exist -- checked by running the real argument parsing and config loading with the stage
runner replaced, so nothing runs and nothing is contacted."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest
import yaml

import medreason_dist.cli as cli
import medreason_dist.run_command as run_command
from medreason_dist import pipeline
from medreason_dist.jobs import run_stages_main

REPO = Path(__file__).resolve().parent.parent
SCANNED = [REPO / "cluster", REPO / "terraform"]
JOB_COMMAND = re.compile(r"\bpython (jobs/\w+\.py(?: [^\\#\n`'\"]*)?)")


def _load_job(script: str):
    path = REPO / script
    assert path.is_file(), f"{script} does not exist"
    spec = importlib.util.spec_from_file_location(f"job_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the scripts act only under __main__
    return module


class _Captured(Exception):
    pass


def _capture_runs(monkeypatch) -> list:
    """Replace the stage runner: the CLI parses and loads the config, then hands over here."""
    seen = []

    def fake_run_selected(cfg, names, **kwargs):
        seen.append((cfg, names, kwargs))
        raise _Captured

    monkeypatch.setattr(cli, "run_selected", fake_run_selected)
    monkeypatch.setattr(run_command, "run_selected", fake_run_selected)  # the LEADS commands call it there
    return seen


def check_ray_command(command: str, monkeypatch) -> tuple:
    """Run a `python jobs/X.py ...` command's parsing and config loading, from the checkout
    (the image's /app is the checkout, and it is the RayJob's working_dir)."""
    words = shlex.split(command)
    assert words[0] == "python" and words[1].startswith("jobs/"), command
    module = _load_job(words[1])
    monkeypatch.chdir(REPO)
    seen = _capture_runs(monkeypatch)
    config = words[words.index("--config") + 1] if "--config" in words else None
    if config:
        assert (REPO / config).is_file(), f"{command}: config {config} does not exist"
    try:
        if hasattr(module, "STAGES"):
            assert set(module.STAGES) <= {s.name for s in pipeline.PIPELINE}
            code = run_stages_main(module.STAGES, module.__doc__, words[2:])
        else:  # jobs/leads.py hands its arguments to `medreason-dist leads`
            code = cli.main(["leads"] + words[2:])
    except _Captured:
        pass
    else:  # a usage/config error returns before the runner is reached
        raise AssertionError(f"{command}: exited {code} before running anything")
    cfg, names, _ = seen[0]
    return cfg, names


def _documented_commands() -> list[tuple[str, str]]:
    found = []
    for root in SCANNED:
        for path in sorted(root.rglob("*")):
            if path.suffix not in (".yaml", ".yml", ".md", ".tf", ".hcl", ".py", "") or not path.is_file() \
                    or ".terraform" in path.parts or path.name.endswith(".dockerignore"):
                continue
            for match in JOB_COMMAND.finditer(path.read_text(errors="replace")):
                if "${" not in match.group(0) and "<" not in match.group(0):  # templates: checked evaluated
                    found.append((str(path.relative_to(REPO)), "python " + match.group(1).strip()))
    return found


def _rayjob_entrypoints() -> list[tuple[str, str]]:
    out = []
    for path in sorted((REPO / "cluster" / "kuberay").glob("rayjob-*.yaml")):
        doc = yaml.safe_load(path.read_text())
        out.append((path.name, doc["spec"]["entrypoint"]))
    return out


def test_every_rayjob_manifest_is_found_and_names_a_job():
    entries = _rayjob_entrypoints()
    assert {Path(n).stem.removeprefix("rayjob-") for n, _ in entries} == {"generate", "sft", "eval", "leads"}


@pytest.mark.parametrize("where,command", _rayjob_entrypoints() + _documented_commands())
def test_job_command_parses_and_loads_its_config(where, command, monkeypatch):
    cfg, names = check_ray_command(command, monkeypatch)
    words = shlex.split(command)
    if "ray.address=auto" in words:
        assert cfg.ray.address == "auto", where
    assert names, where  # some stage was asked for


def test_a_broken_command_is_caught(monkeypatch):
    with pytest.raises(AssertionError, match="exited 2"):  # unknown config key
        check_ray_command("python jobs/generate.py --config conf/aws.yaml --set ray.adress=auto", monkeypatch)
    with pytest.raises(AssertionError, match="exited 2"):
        check_ray_command("python jobs/leads.py run --config conf/leads_aws.yaml --set leads.batch_row=1", monkeypatch)
    with pytest.raises(AssertionError, match="does not exist"):
        check_ray_command("python jobs/sft.py --config conf/no_such.yaml", monkeypatch)
    with pytest.raises(SystemExit):  # argparse: unknown flag
        check_ray_command("python jobs/eval.py --config conf/aws.yaml --sett ray.address=auto", monkeypatch)


# --- Terraform's job definition ------------------------------------------------------------------

def _job_spec(cloud: str) -> dict:
    helpers = pytest.importorskip("terraform_helpers", reason="tests/terraform_helpers.py not present")
    if helpers.TERRAFORM is None:
        pytest.skip("terraform is not on PATH")
    if not helpers.JOB_SPEC_DIR.is_dir():
        pytest.skip("terraform/modules/job_spec not written yet")
    extra = {"container_image": "us-central1-docker.pkg.dev/p/medreason-dist/dataproc:0.1.0",
             "service_account": "medreason-paths@my-project.iam.gserviceaccount.com"} if cloud == "gcp" else {}
    return helpers.job_spec_outputs(cloud, bucket="medreason-xcheck", run_name="r1", **extra)


@pytest.fixture(scope="module", params=["aws", "gcp"])
def job_spec(request):
    return request.param, _job_spec(request.param)


def test_terraform_ray_entrypoints_parse(job_spec, monkeypatch):
    cloud, outputs = job_spec
    entries = outputs["ray_entrypoints"]
    assert set(entries) == {"generate", "sft", "eval", "leads"}
    for job, command in entries.items():
        assert f"conf/{'leads_' if job == 'leads' else ''}{cloud}.yaml" in command
        check_ray_command(command, monkeypatch)


def test_terraform_paths_job_parses_with_kg_paths(job_spec, monkeypatch):
    cloud, outputs = job_spec
    job = outputs["paths_job"]
    scheme = "s3" if cloud == "aws" else "gs"
    code = f"{scheme}://medreason-xcheck/code"
    entry = job["entry_point"] if cloud == "aws" else job["main_python_file_uri"]
    args = job["arguments"] if cloud == "aws" else job["args"]
    assert entry == f"{code}/jobs/kg_paths.py"
    if cloud == "aws":
        conf = job["spark_conf"]
        assert conf["spark.submit.pyFiles"] == f"{code}/medreason_dist.zip"
        # venv-pack's archive unpacks as ./environment, whose python the driver and executors use.
        assert conf["spark.archives"] == f"{code}/medreason_venv.tar.gz#environment"
        assert {v for k, v in conf.items() if "PYSPARK" in k} == {"./environment/bin/python"}
    else:
        assert job["python_file_uris"] == [f"{code}/medreason_dist.zip"]
    kg_paths = _load_job("jobs/kg_paths.py")
    seen = _capture_runs(monkeypatch)
    with pytest.raises(_Captured):
        kg_paths.main(args)
    cfg, names, _ = seen[0]
    assert names == ["paths"]
    assert (cfg.paths.max_hops, cfg.paths.max_paths, cfg.paths.seed, cfg.paths.engine) == (3, 50, 0, "graphframes")
    assert cfg.dataset_uri("reason/paths") == f"{scheme}://medreason-xcheck/runs/r1/reason/paths"


def test_make_bundle_writes_the_files_terraform_points_at():
    """The bucket's code/ folder is build/bundle/ uploaded as is: same three names."""
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile[makefile.index("\nbundle:"):]
    for name in ("medreason_venv.tar.gz", "medreason_dist.zip", "jobs/kg_paths.py"):
        assert f"$(BUNDLE)/{name}" in recipe, name


def test_terraform_files_parse_and_only_job_spec_names_the_entry_points():
    hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is in the dev extra")
    tf_files = [p for p in sorted((REPO / "terraform").rglob("*.tf")) if ".terraform" not in p.parts]
    if not tf_files:
        pytest.skip("no Terraform files yet")
    naming = []
    for path in tf_files:
        with path.open() as fh:
            body = hcl2.load(fh)  # every file parses
        text = repr(body)
        if re.search(r"kg_paths\.py|python jobs/", text):
            naming.append(path.relative_to(REPO).as_posix())
    # One definition: the stacks take entry points and arguments from module.job_spec's outputs.
    assert naming and all(p.startswith("terraform/modules/job_spec/") for p in naming), naming


# --- Ray launcher configs --------------------------------------------------------------------------

@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_launcher_ray_start_commands_parse_with_rays_cli(cloud):
    from ray.scripts.scripts import start

    cfg = yaml.safe_load((REPO / "cluster" / "ray" / f"{cloud}.yaml").read_text())
    commands = cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"]
    starts = [c.split(";")[-1].strip() for c in commands if "ray start" in c]
    assert len(starts) == 2
    for command in starts:
        words = shlex.split(command.replace("$RAY_HEAD_IP", "10.0.0.1").replace("~", "/home/ray"))
        assert words[:2] == ["ray", "start"]
        start.make_context("start", words[2:])  # click raises on an unknown option
