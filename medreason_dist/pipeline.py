"""The whole flow, in order. Read this file to see what a run does.

    QA sources ──► sources ──► extract ──► link ──► reformat ──► paths ──► prune ──► generate
                                             ▲                     ▲                    │
                 PrimeKG kg.csv ──► kg ──────┴─────────────────────┘                    ▼
     report ◄── eval ◄── sft ◄── decontaminate ◄──────────────────────────────────── verify

Each stage reads committed datasets under ``run.out`` and writes one main dataset (plus side
datasets such as quarantine or rejects) with a manifest. A stage's *fingerprint* is the hash of
the config sections it depends on and the content hashes of its inputs; when its main output
manifest carries the same fingerprint the stage is skipped (resume). ``--force`` reruns.

A stage whose implementation has not landed yet is registered with ``run=None`` and reported
as *pending*: the runner never fakes an output for it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from medreason_dist import storage
from medreason_dist.config import Config

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    manifest: storage.Manifest
    side_outputs: dict[str, storage.Manifest] = field(default_factory=dict)


@dataclass
class Stage:
    name: str
    summary: str
    output: str  # main dataset, relative to run.out
    inputs: tuple[str, ...] = ()  # upstream datasets, relative to run.out
    config_sections: tuple[str, ...] = ()
    run: Callable[[Config, "StageContext"], StageResult] | None = None
    pending: str = ""  # why it is not runnable yet
    # Inputs that are not datasets of the run (source files, URLs): a cheap identity of them
    # joins the fingerprint, so editing a source file reruns the stage.
    external: Callable[[Config], dict] | None = None


class StageEmpty(Exception):
    """A stage had nothing to work on (e.g. no training rows survived); nothing is written."""


@dataclass
class StageContext:
    config: Config
    fingerprint: str

    @property
    def options(self) -> storage.StorageOptions:
        return self.config.storage

    def uri(self, rel: str) -> str:
        return self.config.dataset_uri(rel)


# -- stage implementations --------------------------------------------------------------------


def _run_sources(cfg: Config, ctx: StageContext) -> StageResult:
    from medreason_dist.stages.sources import normalize_sources, write_sources

    result = normalize_sources(cfg.sources, cfg.storage)
    manifest = write_sources(result, ctx.uri("sources/qa"), ctx.uri("sources/quarantine"),
                             config_hash=ctx.fingerprint, options=cfg.storage)
    return StageResult(manifest, {"sources/quarantine": storage.read_manifest(ctx.uri("sources/quarantine"), cfg.storage)})


def _run_eval_sets(cfg: Config, ctx: StageContext) -> StageResult:
    from medreason_dist.stages.sources import normalize_sources, write_sources

    result = normalize_sources(cfg.eval_sets, cfg.storage, dedupe=False)
    manifest = write_sources(result, ctx.uri("eval_sets/qa"), ctx.uri("eval_sets/quarantine"),
                             config_hash=ctx.fingerprint, options=cfg.storage, stage="eval_sets")
    return StageResult(manifest)


def _source_files(specs) -> Callable[[Config], dict]:
    def identity(cfg: Config) -> dict:
        from medreason_dist.config import resolve_packaged

        out = {}
        for spec in specs(cfg):
            if spec.path is None:
                out[spec.name] = spec.hf.model_dump() if spec.hf else None
                continue
            out[spec.name] = storage.file_identity(resolve_packaged(spec.path), cfg.storage)
        return out

    return identity


_LLM = ("llm.profile", "llm.model", "llm.max_model_len", "run.seed")


def _ray(cfg: Config) -> None:
    from medreason_dist.ray_runtime import ensure_ray

    ensure_ray(cfg.ray)


def _llm_fn():
    from medreason_dist.stages.common import default_llm_fn

    return default_llm_fn()


def _read(cfg: Config, rel: str):
    return storage.read_table(cfg.dataset_uri(rel), options=cfg.storage)


def _run_kg(cfg: Config, ctx: StageContext) -> StageResult:
    from medreason_dist.config import resolve_packaged
    from medreason_dist.kg.ingest import ingest_to_dir

    ingest_to_dir(resolve_packaged(cfg.kg.source), cfg.kg_uri(), options=cfg.storage, config_hash=ctx.fingerprint)
    return StageResult(storage.read_manifest(cfg.kg_uri("nodes"), cfg.storage))  # nodes are committed last


def _run_extract(cfg: Config, ctx: StageContext) -> StageResult:
    from medreason_dist.stages.extract import extract_entities

    _ray(cfg)
    res = extract_entities(cfg, _read(cfg, "sources/qa"), out_uri=ctx.uri("reason/extract"),
                           rejects_uri=ctx.uri("reason/extract_rejects"), fingerprint=ctx.fingerprint,
                           llm_fn=_llm_fn())
    return StageResult(res.output, {"reason/extract_rejects": res.rejects})


def _run_link(cfg: Config, ctx: StageContext) -> StageResult:
    from medreason_dist.stages.link import link_entities

    _ray(cfg)
    manifest = link_entities(cfg, _read(cfg, "reason/extract"), nodes_uri=cfg.kg_uri("nodes"),
                             out_uri=ctx.uri("reason/link"), fingerprint=ctx.fingerprint, llm_fn=_llm_fn())
    return StageResult(manifest)


def _run_reformat(cfg: Config, ctx: StageContext) -> StageResult:
    from medreason_dist.stages.reformat import reformat_rows

    _ray(cfg)
    res = reformat_rows(cfg, _read(cfg, "reason/link"), out_uri=ctx.uri("reason/reformat"),
                        rejects_uri=ctx.uri("reason/reformat_rejects"), pairs_uri=ctx.uri("reason/pairs"),
                        fingerprint=ctx.fingerprint, llm_fn=_llm_fn())
    return StageResult(res.output, {"reason/reformat_rejects": res.rejects})


def _run_paths(cfg: Config, ctx: StageContext) -> StageResult:
    from medreason_dist.spark.paths import run_paths
    from medreason_dist.spark.session import spark_session

    spark = spark_session(cfg.spark.master, app_name=cfg.spark.app_name,
                          conf={"spark.driver.memory": cfg.spark.driver_memory, **cfg.spark.conf})
    run_paths(spark, cfg.kg_uri("nodes"), cfg.kg_uri("edges"), ctx.uri("reason/pairs"), ctx.uri("reason/paths"),
              max_hops=cfg.paths.max_hops, max_paths=cfg.paths.max_paths, seed=cfg.paths.seed,
              engine=cfg.paths.engine, options=cfg.storage, config_hash=ctx.fingerprint)
    return StageResult(storage.read_manifest(ctx.uri("reason/paths"), cfg.storage))


def _run_prune(cfg: Config, ctx: StageContext) -> StageResult:
    from medreason_dist.stages.prune import prune_paths

    _ray(cfg)
    manifest = prune_paths(cfg, _read(cfg, "reason/reformat"), paths_uri=ctx.uri("reason/paths"),
                           nodes_uri=cfg.kg_uri("nodes"), out_uri=ctx.uri("reason/prune"),
                           fingerprint=ctx.fingerprint, llm_fn=_llm_fn())
    return StageResult(manifest)


def _run_generate(cfg: Config, ctx: StageContext) -> StageResult:
    from medreason_dist.stages.generate import generate_reasoning

    _ray(cfg)
    res = generate_reasoning(cfg, _read(cfg, "reason/prune"), out_uri=ctx.uri("reason/generate"),
                             rejects_uri=ctx.uri("reason/generate_rejects"), fingerprint=ctx.fingerprint,
                             llm_fn=_llm_fn())
    return StageResult(res.output, {"reason/generate_rejects": res.rejects})


def _run_verify(cfg: Config, ctx: StageContext) -> StageResult:
    import pyarrow as pa

    from medreason_dist.stages.verify import build_sft, export_jsonl, verify_rows

    _ray(cfg)
    results = verify_rows(cfg, _read(cfg, "reason/generate"), out_uri=ctx.uri("reason/verified"),
                          rejects_uri=ctx.uri("reason/verify_rejects"), fingerprint=ctx.fingerprint,
                          llm_fn=_llm_fn())
    verified = pa.concat_tables([_read(cfg, "reason/verified"), _read(cfg, "reason/verified_free_text")],
                                promote_options="permissive")
    sft = build_sft(cfg, verified, ctx.fingerprint)
    export_jsonl(sft, ctx.uri("reason/sft_jsonl/sft.jsonl"), cfg.storage)
    all_rejects = collect_rejects(cfg)
    storage.write_table(ctx.uri("reason/rejects"), all_rejects, stage="reason.rejects", config_hash=ctx.fingerprint,
                        rejects=_count(all_rejects), options=cfg.storage)
    tokens = {}
    for r in results:
        for k, v in r.output.tokens.items():
            tokens[k] = tokens.get(k, 0) + v
    reasons: dict[str, int] = {}
    for r in results:
        for k, v in r.rejects.rejects.items():
            reasons[k] = reasons.get(k, 0) + v
    from medreason_dist.stages.generate import cites_path

    citing = sum(cites_path(r["reasoning"], r["paths_used_json"]) for r in sft.to_pylist())
    manifest = storage.write_table(ctx.uri("reason/sft"), sft, stage="verify", config_hash=ctx.fingerprint,
                                   rejects=reasons, tokens=tokens,
                                   extra={"rows_in": sum(r.output.extra.get("rows_in", 0) for r in results),
                                          "citing_path_rows": int(citing),
                                          "pathless_rows": int(sum(sft.column("pathless").to_pylist())),
                                          "jsonl": ctx.uri("reason/sft_jsonl/sft.jsonl")},
                                   options=cfg.storage)
    return StageResult(manifest)


def eval_models(cfg: Config) -> dict[str, str]:
    """The models to evaluate; ``run:<rel>`` refers to a model folder this run wrote."""
    models = {}
    for name, ref in cfg.eval.models.items():
        if ref.startswith("run:"):
            uri = cfg.dataset_uri(ref[len("run:"):])
            if not storage.exists(storage.join(uri, "config.json"), cfg.storage):
                log.warning("eval: skipping %s (%s has no model yet)", name, uri)
                continue
            ref = uri if not uri.startswith("file://") else str(storage.local_path(uri))
        models[name] = ref
    return models


def _run_eval(cfg: Config, ctx: StageContext) -> StageResult:
    from medreason_dist.stages.evaluate import evaluate_models

    _ray(cfg)
    manifest = evaluate_models(cfg, _read(cfg, "eval_sets/qa"), eval_models(cfg), results_uri=ctx.uri("eval/results"),
                               items_uri=ctx.uri("eval/items"), raw_uri=ctx.uri("eval/raw"),
                               fingerprint=ctx.fingerprint, llm_fn=_llm_fn())
    return StageResult(manifest)


def _eval_model_identity(cfg: Config) -> dict:
    out = {}
    for name, ref in cfg.eval.models.items():
        if ref.startswith("run:"):
            out[name] = storage.file_identity(storage.join(cfg.dataset_uri(ref[4:]), "config.json"), cfg.storage)
    return out


def _run_decontaminate(cfg: Config, ctx: StageContext) -> StageResult:
    from medreason_dist.stages.decontaminate import run_decontaminate

    run_decontaminate(ctx.uri("reason/sft"), ctx.uri("eval_sets/qa"), ctx.uri("train/sft_clean"),
                      ctx.uri("train/decontam_rejects"), config=cfg.decontam, config_hash=ctx.fingerprint,
                      options=cfg.storage)
    return StageResult(storage.read_manifest(ctx.uri("train/sft_clean"), cfg.storage))


def _run_sft(cfg: Config, ctx: StageContext) -> StageResult:
    import pyarrow as pa

    from medreason_dist.train.trainer import run_sft

    data_uri = ctx.uri("train/sft_clean")
    rows = storage.read_manifest(data_uri, cfg.storage).rows
    if rows == 0:
        raise StageEmpty("no training rows survived verification and decontamination; nothing to fine-tune")
    summary = run_sft(data_uri, ctx.uri("train"), cfg.sft, cfg.storage, ray_address=cfg.ray.address,
                      ray_num_cpus=cfg.ray.num_cpus)
    history = json.loads(storage.read_bytes(summary["history_uri"], cfg.storage))
    points = [(int(h["step"]), float(h["loss"])) for h in history.get("history", [])]
    loss = pa.table({"step": pa.array([p[0] for p in points], pa.int64()),
                     "loss": pa.array([p[1] for p in points], pa.float64())})
    manifest = storage.write_table(ctx.uri("train/loss"), loss, stage="sft", config_hash=ctx.fingerprint,
                                   rejects=summary.get("rejects") or {}, tokens={"train": int(summary["tokens"])},
                                   extra={"summary": summary, "loss_history": points}, options=cfg.storage)
    return StageResult(manifest)


REPORT_INPUTS = ("sources/qa", "kg/nodes", "reason/extract", "reason/link", "reason/reformat", "reason/paths",
                 "reason/prune", "reason/generate", "reason/sft", "train/sft_clean", "train/loss", "eval/results")


def _report_identity(cfg: Config) -> dict:
    out = {}
    for rel in REPORT_INPUTS:
        uri = cfg.dataset_uri(rel)
        out[rel] = storage.read_manifest(uri, cfg.storage).content_hash if storage.is_committed(uri, cfg.storage) \
            else None
    return out


def _run_report(cfg: Config, ctx: StageContext) -> StageResult:
    import pyarrow as pa

    from medreason_dist.report.html import write_report

    uri = write_report(cfg.out_uri(), options=cfg.storage, run_name=cfg.run.name)
    log.info("report written to %s", uri)
    marker = pa.table({"report_uri": [uri]})
    manifest = storage.write_table(ctx.uri("report/status"), marker, stage="report", config_hash=ctx.fingerprint,
                                   extra={"report_uri": uri}, options=cfg.storage)
    return StageResult(manifest)


REJECT_DATASETS = ("reason/extract_rejects", "reason/reformat_rejects", "reason/generate_rejects",
                   "reason/verify_rejects", "reason/verify_rejects_free_text")


def collect_rejects(cfg: Config):
    """Every row dropped by a reasoning stage, with the stage and reason."""
    import pyarrow as pa

    from medreason_dist.stages.resumable import REJECT_SCHEMA

    tables = [_read(cfg, rel) for rel in REJECT_DATASETS if storage.is_committed(cfg.dataset_uri(rel), cfg.storage)]
    return pa.concat_tables([t.cast(REJECT_SCHEMA) for t in tables]) if tables else REJECT_SCHEMA.empty_table()


def _count(table) -> dict[str, int]:
    from collections import Counter

    return dict(Counter(table.column("reason").to_pylist()))


STAGES: list[Stage] = [
    Stage("sources", "normalise QA sources into one schema (+ quarantine)", "sources/qa",
          config_sections=("sources",), run=_run_sources,
          external=_source_files(lambda c: c.sources)),
    Stage("eval_sets", "normalise the evaluation benchmarks", "eval_sets/qa",
          config_sections=("eval_sets",), run=_run_eval_sets,
          external=_source_files(lambda c: c.eval_sets)),
    Stage("kg", "ingest PrimeKG kg.csv into nodes/edges (+ quarantine)", "kg/nodes",
          config_sections=("kg",), run=_run_kg, external=lambda c: _kg_source_identity(c)),
    Stage("extract", "LLM: medical entities of question and answer", "reason/extract",
          inputs=("sources/qa",), config_sections=_LLM + ("reason.extract", "reason.limit"), run=_run_extract),
    Stage("link", "embeddings + LLM: link entities to KG nodes", "reason/link",
          inputs=("reason/extract", "kg/nodes"),
          config_sections=_LLM + ("models.embedder", "reason.link", "reason.link_top_k",
                                  "reason.link_min_similarity", "reason.link_accept_similarity",
                                  "reason.link_any_type_fallback"),
          run=_run_link),
    Stage("reformat", "LLM: description/conclusion and entity pairs", "reason/reformat",
          inputs=("reason/link",), config_sections=_LLM + ("reason.reformat",), run=_run_reformat),
    Stage("paths", "Spark: all shortest KG paths per entity pair", "reason/paths",
          inputs=("reason/pairs", "kg/nodes", "kg/edges"), config_sections=("paths",), run=_run_paths),
    Stage("prune", "LLM: keep the most relevant paths", "reason/prune",
          inputs=("reason/reformat", "reason/paths"),
          config_sections=_LLM + ("reason.prune", "reason.max_paths_per_group", "reason.keep_paths_per_group"),
          run=_run_prune),
    Stage("generate", "LLM: grounded chain of thought", "reason/generate",
          inputs=("reason/prune",), config_sections=_LLM + ("reason.generate", "reason.allow_pathless"),
          run=_run_generate),
    Stage("verify", "LLM: re-answer from the reasoning, keep matches", "reason/sft",
          inputs=("reason/generate",), config_sections=_LLM + ("reason.verify",), run=_run_verify),
    Stage("decontaminate", "drop training rows that overlap evaluation sets", "train/sft_clean",
          inputs=("reason/sft", "eval_sets/qa"), config_sections=("decontam",), run=_run_decontaminate),
    Stage("sft", "Ray Train: fine-tune the student (model -> train/model)", "train/loss",
          inputs=("train/sft_clean",), config_sections=("sft",), run=_run_sft),
    Stage("eval", "benchmarks with confidence intervals", "eval/results",
          inputs=("eval_sets/qa",), config_sections=_LLM + ("eval",), run=_run_eval,
          external=_eval_model_identity),
    Stage("report", "self-contained HTML report of the run", "report/status",
          config_sections=("run.name",), run=_run_report, external=_report_identity),
]


def _kg_source_identity(cfg: Config) -> dict | None:
    from medreason_dist.config import resolve_packaged

    src = resolve_packaged(cfg.kg.source)
    if src.startswith(("http://", "https://")):
        return {"url": src}
    return storage.file_identity(src, cfg.storage)


def get_stage(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise KeyError(f"unknown stage {name!r}; stages: {', '.join(s.name for s in STAGES)}")


def fingerprint(cfg: Config, stage: Stage) -> str:
    """Config sections + input content hashes (code version is recorded but not compared)."""
    inputs = {}
    for rel in stage.inputs:
        uri = cfg.dataset_uri(rel)
        inputs[rel] = storage.read_manifest(uri, cfg.storage).content_hash if storage.is_committed(
            uri, cfg.storage) else None
    external = stage.external(cfg) if stage.external else None
    return storage.config_hash_of({"stage": stage.name, "config": cfg.section_hash(*stage.config_sections),
                                   "inputs": inputs, "external": external})


@dataclass
class StageOutcome:
    stage: str
    status: str  # ran | skipped | pending | failed
    rows: int | None = None
    rejects: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    output: str = ""
    detail: str = ""


def run_stage(cfg: Config, stage: Stage, force: bool = False) -> StageOutcome:
    output = cfg.dataset_uri(stage.output)
    if stage.run is None:
        return StageOutcome(stage.name, "pending", output=output, detail=f"not implemented yet: {stage.pending}")
    fp = fingerprint(cfg, stage)
    if not force and storage.is_committed(output, cfg.storage):
        manifest = storage.read_manifest(output, cfg.storage)
        if manifest.config_hash == fp:
            return StageOutcome(stage.name, "skipped", manifest.rows, manifest.rejects, output=output,
                                detail="output matches inputs and config (use --force to rerun)")
    log.info("stage %s: running (fingerprint %s)", stage.name, fp)
    start = time.perf_counter()
    try:
        result = stage.run(cfg, StageContext(cfg, fp))
    except StageEmpty as why:
        return StageOutcome(stage.name, "empty", 0, seconds=time.perf_counter() - start, output=output,
                            detail=str(why))
    return StageOutcome(stage.name, "ran", result.manifest.rows, result.manifest.rejects,
                        time.perf_counter() - start, output=output)


def run_pipeline(cfg: Config, *, force: bool = False, only: list[str] | None = None) -> list[StageOutcome]:
    """Run the registered stages in order; stop at the first pending stage's dependants."""
    outcomes: list[StageOutcome] = []
    for stage in STAGES:
        if only and stage.name not in only:
            continue
        missing = [rel for rel in stage.inputs if not storage.is_committed(cfg.dataset_uri(rel), cfg.storage)]
        if stage.run is not None and missing:
            outcomes.append(StageOutcome(stage.name, "pending", output=cfg.dataset_uri(stage.output),
                                         detail=f"waiting for inputs: {', '.join(missing)}"))
            continue
        outcomes.append(run_stage(cfg, stage, force=force))
    return outcomes
