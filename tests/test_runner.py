"""The stage contract and derived fingerprints, over the real pipeline declarations.

Stage bodies are replaced by stubs that write one row per declared dataset (no engines start):
what is under test is the runner — declarations, fingerprints, the plan and the refusal of
undeclared datasets — not the stages' work, which other tests cover.
"""

from __future__ import annotations

import dataclasses
import json

import pyarrow as pa
import pytest

from medreason_dist import datasets as D
from medreason_dist import pipeline, storage
from medreason_dist.config import Config, ConfigError, default_config_path, load_config
from medreason_dist.leads_pipeline import LEADS_PIPELINE
from medreason_dist.runner import execute
from medreason_dist.runner.contract import StageResult
from medreason_dist.runner.fingerprint import EXECUTION_ONLY, flatten, is_execution_only

# Both pipelines: MedReason's and literature mining's share one config, runner and dataset registry.
ALL_STAGES = pipeline.PIPELINE + LEADS_PIPELINE

# Where a dataset lives is not what it holds: moving these changes which outputs exist, not a
# fingerprint, so the schema walk checks them separately.
LOCATION_FIELDS = ("run.out", "run.locations", "kg.dir", "run.log_dir")


def _stub_body(stage):
    def body(ctx) -> StageResult:
        manifest = None
        for ref in stage.writes:
            uri = ctx.uri(ref)
            if ref.kind == "dataset":
                m = storage.write_table(uri, pa.table({"stage": [stage.name]}), stage=stage.name,
                                        config_hash=ctx.fingerprint, options=ctx.options)
                manifest = manifest or m
            elif ref.kind == "model":
                storage.write_bytes(storage.join(uri, "config.json"), b"{}", ctx.options)
            elif ref.kind == "file":
                storage.write_bytes(uri if "." in ref.name.rsplit("/", 1)[-1] else storage.join(uri, "x"), b"x",
                                    ctx.options)
        return StageResult(manifest)

    return body


def stub_pipeline():
    return [dataclasses.replace(s, run=_stub_body(s)) for s in ALL_STAGES]


@pytest.fixture
def completed(tmp_path):
    """A config whose every stage output is committed and current (stub bodies)."""
    overrides = [f"run.out={tmp_path / 'out'}"]
    cfg = load_config(None, overrides)
    stages = stub_pipeline()
    outcomes = execute.run_stages(cfg, stages, execute.select_stages(stages, None))
    assert [o.status for o in outcomes] == ["ran"] * len(stages), outcomes
    return overrides, stages


def _will_run(overrides, stages, extra=()) -> set[str]:
    cfg = load_config(None, list(overrides) + list(extra))
    entries = execute.plan(cfg, stages, [s.name for s in stages])
    assert not [e for e in entries if e.action == "blocked"]
    return {e.stage for e in entries if e.action == "run"}


def _dependents(stages, names: set[str]) -> set[str]:
    """The stages whose inputs the given stages rewrite, transitively (computed here, not by the runner)."""
    out = set(names)
    for stage in stages:  # pipeline order: upstream first
        if stage.name in out:
            continue
        if any(r.owner in out for r in stage.reads + stage.optional_reads):
            out.add(stage.name)
    return out


def _leaves(cfg: Config) -> dict[str, object]:
    leaves = {}
    for path, value in flatten(cfg.model_dump(mode="json")).items():
        parts = path.split(".")
        # dicts of free keys (engine_kwargs, spark.conf, eval.models, ...) are one field each
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            node = _get(cfg.model_dump(mode="json"), prefix)
            if isinstance(node, dict) and _is_free_dict(cfg, prefix):
                path, value = prefix, node
                break
        if parts[-1].isdigit() and not isinstance(_get(cfg.model_dump(mode="json"), path), (dict, list)):
            path = ".".join(parts[:-1])  # a list of plain values (fields, module names) is one field
            value = _get(cfg.model_dump(mode="json"), path)
        leaves[path] = value
    for empty in ("spark.conf", "llm.engine_kwargs", "run.locations"):
        leaves.setdefault(empty, {})
    return leaves


def _get(tree, dotted):
    for part in dotted.split("."):
        tree = tree[int(part)] if isinstance(tree, list) else tree.get(part)
    return tree


def _is_free_dict(cfg: Config, dotted: str) -> bool:
    """A dict-typed field (free keys), not a nested config model."""
    node = cfg
    for part in dotted.split("."):
        node = node[int(part)] if isinstance(node, list) else getattr(node, part, None) if not isinstance(
            node, dict) else node.get(part)
    return isinstance(node, dict)


LITERALS = ["cpu", "gpu", "http", "full", "lora", "float32", "bfloat16", "float16", "sdpa", "eager", "auto",
            "constant", "cosine", "graphframes", "dataframe", "display_relation", "relation", "jsonl", "json",
            "parquet", "medqa", "mmlu", "on", "off", "full_text", "title_abstract", "dictionary", "llm", "hybrid",
            "in_text", "any", "schema", "free"]


def _candidates(value):
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    if isinstance(value, float):
        return [round(value + 0.01, 6), round(value - 0.01, 6), value * 0.5]
    if isinstance(value, str):
        return [v for v in LITERALS if v != value] + [value + "x", "packaged:all-minilm-l6-v2"]
    if value is None:
        return [2, 1, 0.5, "x", "http://127.0.0.1:9/v1", True, {"path": "x"}]
    if isinstance(value, list):
        return [value + value[:1] if value else ["x"], [0.8, 0.9]]
    if isinstance(value, dict):
        return [dict(value, zz_test="1"), dict(value, zz_test={"input_usd_per_mtok": 1, "output_usd_per_mtok": 1}),
                dict(value, generate="conf/local.yaml")]  # maps keyed by job name (deploy.job_configs)
    raise AssertionError(f"no candidate for {value!r}")


def _perturb(path: str, value) -> str | None:
    """A --set item that changes ``path`` to a valid different value (None if none validates)."""
    base = load_config(None).model_dump(mode="json")
    for cand in _candidates(value):
        item = f"{path}={json.dumps(cand)}"
        try:
            changed = load_config(None, [item]).model_dump(mode="json")
        except ConfigError:
            continue
        if _get(changed, path) != _get(base, path):
            return item
    return None


def test_every_config_field_belongs_to_a_stage_or_is_execution_only():
    cfg = load_config(None)
    orphans = []
    for path in _leaves(cfg):
        if is_execution_only(path) or path.startswith(LOCATION_FIELDS):
            continue
        if not any(path == p or path.startswith(p + ".") for s in ALL_STAGES for p in s.config):
            orphans.append(path)
    assert not orphans, f"config fields no stage declares (declare them or mark them EXECUTION_ONLY): {orphans}"
    # every execution-only pattern names something that exists
    names = set(_leaves(cfg)) | {".".join(p.split(".")[:i]) for p in _leaves(cfg) for i in range(1, 4)}
    stale = [p for p in EXECUTION_ONLY if not any(n == p.rstrip(".*") or n.startswith(p.rstrip("*")) for n in names)]
    assert not stale, stale


@pytest.mark.slow
def test_changing_any_field_reruns_exactly_its_stages_and_their_dependents(completed):
    overrides, stages = completed
    assert _will_run(overrides, stages) == set()
    cfg = load_config(None, overrides)
    unperturbable = []
    for path, value in _leaves(cfg).items():
        if path.startswith(LOCATION_FIELDS) or path in ("llm.cache_dir", "sft.model_cache_dir"):
            continue  # locations below; the two cache dirs are pinned to models.cache_dir by the config
        item = _perturb(path, value)
        if item is None:
            unperturbable.append(path)
            continue
        direct = set() if is_execution_only(path) else {
            s.name for s in stages if any(path == p or path.startswith(p + ".") for p in s.config)}
        assert _will_run(overrides, stages, [item]) == _dependents(stages, direct), item
    assert not unperturbable, f"no valid different value found for {unperturbable}"
    # moving the output root leaves nothing in place: everything runs
    assert _will_run(overrides, stages, ["run.out=" + overrides[0].split("=", 1)[1] + "-moved"]) == {
        s.name for s in stages}


def test_plan_names_the_changed_field_input_and_code_version(completed, tmp_path):
    overrides, stages = completed
    cfg = load_config(None, overrides + ["reason.generate.temperature=0.9"])
    entries = {e.stage: e for e in execute.plan(cfg, stages, [s.name for s in stages])}
    assert entries["extract"].action == "up to date"
    assert entries["generate"].reasons == ["config reason.generate.temperature: 0.3 -> 0.9"]
    assert entries["verify"].reasons == ["input reason/generate is rewritten by an earlier stage",
                                         "input reason/generate_rejects is rewritten by an earlier stage"]
    # a changed input (another tool rewrote the pairs) and a new code version
    cfg = load_config(None, overrides)
    storage.write_table(cfg.dataset_uri("reason/pairs"), pa.table({"x": [1, 2]}), stage="other")
    entries = {e.stage: e for e in execute.plan(cfg, stages, [s.name for s in stages])}
    assert entries["paths"].reasons == ["input reason/pairs changed"]
    assert entries["reformat"].action == "up to date"
    bumped = [dataclasses.replace(s, version=2) if s.name == "extract" else s for s in stages]
    entries = {e.stage: e for e in execute.plan(cfg, bumped, [s.name for s in bumped])}
    assert entries["extract"].reasons == ["code version 1 -> 2"]
    assert entries["sources"].action == "up to date"


def test_llm_engine_settings_the_old_key_list_missed_now_rerun_llm_stages(completed):
    overrides, stages = completed
    llm_stages = {"extract", "link", "reformat", "prune", "generate", "verify", "eval"}
    for item in ("llm.seed=7", "llm.dtype=float32", "llm.engine_kwargs.kv_cache_dtype=fp8",
                 "llm.http.base_url=http://127.0.0.1:9/v1"):
        runs = _will_run(overrides, stages, [item])
        # paths is planned too: reformat rewrites its pairs (a run skips it if they come out the same)
        assert llm_stages <= runs and not {"sources", "eval_sets", "kg"} & runs, item
    assert _will_run(overrides, stages, ["llm.concurrency=4", "spark.master=local[1]"]) == set()


def test_undeclared_dataset_is_refused(tmp_path):
    cfg = load_config(None, [f"run.out={tmp_path}"])
    sources = pipeline.get_stage("sources")

    def sneaky(ctx):
        storage.write_table(ctx.config.dataset_uri("reason/sft"), pa.table({"x": [1]}), stage="sneaky")

    def asks_for_undeclared(ctx):
        ctx.uri(D.SFT)

    def reads_undeclared(ctx):
        storage.read_table(ctx.config.dataset_uri("reason/extract"))

    for body in (sneaky, asks_for_undeclared, reads_undeclared):
        outcome = execute.run_stage(cfg, dataclasses.replace(sources, run=body))
        assert outcome.status == "failed" and "UndeclaredDatasetError" in outcome.detail, outcome
        assert "reason/" in outcome.detail
    assert not (tmp_path / "reason").exists()


def test_declarations_are_consistent():
    names = [s.name for s in ALL_STAGES]
    assert len(names) == len(set(names))
    for stage in ALL_STAGES:
        assert stage.output.main and stage.output.owner == stage.name, stage.name
        for ref in stage.writes:
            assert ref.owner == stage.name, (stage.name, ref.name)
        assert not [w for w in stage.writes[1:] if w.main], stage.name
    produced = {ref.name for s in ALL_STAGES for ref in s.writes}
    assert produced == set(D.BY_NAME), set(D.BY_NAME) ^ produced
    # every read is written by an earlier stage
    seen: set[str] = set()
    for stage in ALL_STAGES:
        for ref in stage.reads:
            assert ref.name in seen, (stage.name, ref.name)
        seen.update(ref.name for ref in stage.writes)


def test_stage_selection_accepts_commas_and_spaces_and_rejects_unknown():
    stages = pipeline.PIPELINE
    assert execute.select_stages(stages, ["kg,sources", "paths"]) == ["sources", "kg", "paths"]
    with pytest.raises(execute.UsageError, match="nosuch.*stages: sources, eval_sets"):
        execute.select_stages(stages, ["nosuch"])


def test_locations_name_declared_datasets(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset 'reason/nope'"):
        load_config(None, ["run.locations.reason/nope=/tmp/x"])
    cfg = load_config(None, [f"run.locations.reason/pairs={tmp_path / 'p'}"])
    assert cfg.dataset_uri("reason/pairs") == f"file://{tmp_path / 'p'}"
    assert default_config_path().is_file()


def test_runner_shares_llm_engines_and_frees_them_for_training(tmp_path, monkeypatch):
    """One sharing scope per run; training stops the engine first; start-ups land in manifests.

    The stage bodies are stubs and the engine start-up is simulated by appending to the engine
    layer's record (what serve.start_engine does), so this checks the runner's side only; the
    real engine path is tests/test_shared_engine.py and the e2e tests.
    """
    from medreason_dist.llm import serve as llm_serve

    events: list[str] = []
    monkeypatch.setattr(llm_serve, "release_engines", lambda: events.append("release"))
    stages = stub_pipeline()

    def with_engine_start(stage):
        inner = stage.run

        def body(ctx):
            assert llm_serve._depth == 1, "stages run inside the run's sharing scope"
            events.append(stage.name)
            llm_serve._startups.append(llm_serve.EngineStartup("m", "app", 42.0, True))
            return inner(ctx)

        return dataclasses.replace(stage, run=body)

    stages = [with_engine_start(s) if s.name in ("extract", "sft") else s for s in stages]
    cfg = load_config(None, [f"run.out={tmp_path / 'out'}"])
    outcomes = execute.run_stages(cfg, stages, execute.select_stages(stages, None))
    assert llm_serve._depth == 0
    # released right before each training stage (sft, then the literature student's leads_train), not before
    assert events == ["extract", "release", "sft", "release"]
    by_name = {o.stage: o for o in outcomes}
    assert [s["seconds"] for s in by_name["extract"].engine_startups] == [42.0]
    assert by_name["link"].engine_startups == []
    recorded = storage.read_manifest(cfg.dataset_uri(D.EXTRACT.name)).extra["engine_startups"]
    assert recorded[0]["seconds"] == 42.0 and recorded[0]["ok"]
