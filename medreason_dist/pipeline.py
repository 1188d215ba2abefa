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


@dataclass
class StageContext:
    config: Config
    fingerprint: str

    @property
    def options(self) -> storage.StorageOptions:
        return self.config.storage

    def uri(self, rel: str) -> str:
        return self.config.out_uri(rel)


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


STAGES: list[Stage] = [
    Stage("sources", "normalise QA sources into one schema (+ quarantine)", "sources/qa",
          config_sections=("sources",), run=_run_sources,
          external=_source_files(lambda c: c.sources)),
    Stage("eval_sets", "normalise the evaluation benchmarks", "eval_sets/qa",
          config_sections=("eval_sets",), run=_run_eval_sets,
          external=_source_files(lambda c: c.eval_sets)),
    Stage("kg", "ingest PrimeKG kg.csv into nodes/edges", "kg/nodes", config_sections=("kg",),
          pending="issue #3 (KG ingest)"),
    Stage("extract", "LLM: medical entities of question and answer", "reason/extract",
          inputs=("sources/qa",), pending="issue #4 (reasoning generation)"),
    Stage("link", "embeddings + LLM: link entities to KG nodes", "reason/link",
          inputs=("reason/extract", "kg/nodes"), pending="issue #4"),
    Stage("reformat", "LLM: description/conclusion and entity pairs", "reason/pairs",
          inputs=("reason/link",), pending="issue #4"),
    Stage("paths", "Spark: all shortest KG paths per entity pair", "reason/paths",
          inputs=("reason/pairs", "kg/nodes", "kg/edges"), pending="issues #3 and #4"),
    Stage("prune", "LLM: keep the most relevant paths", "reason/pruned",
          inputs=("reason/paths",), pending="issue #4"),
    Stage("generate", "LLM: grounded chain of thought", "reason/cot",
          inputs=("reason/pruned",), pending="issue #4"),
    Stage("verify", "LLM: re-answer from the reasoning, keep matches", "reason/sft",
          inputs=("reason/cot",), pending="issue #4"),
    Stage("decontaminate", "drop training rows that overlap evaluation sets", "train/sft_clean",
          inputs=("reason/sft", "eval_sets/qa"), pending="issue #5"),
    Stage("sft", "Ray Train: fine-tune the student", "train/model",
          inputs=("train/sft_clean",), pending="issue #5"),
    Stage("eval", "benchmarks with confidence intervals", "eval/results",
          inputs=("eval_sets/qa",), pending="issue #5"),
    Stage("report", "self-contained HTML report", "report",
          pending="issue #5"),
]


def get_stage(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise KeyError(f"unknown stage {name!r}; stages: {', '.join(s.name for s in STAGES)}")


def fingerprint(cfg: Config, stage: Stage) -> str:
    """Config sections + input content hashes (code version is recorded but not compared)."""
    inputs = {}
    for rel in stage.inputs:
        uri = cfg.out_uri(rel)
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
    output = cfg.out_uri(stage.output)
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
    result = stage.run(cfg, StageContext(cfg, fp))
    return StageOutcome(stage.name, "ran", result.manifest.rows, result.manifest.rejects,
                        time.perf_counter() - start, output=output)


def run_pipeline(cfg: Config, *, force: bool = False, only: list[str] | None = None) -> list[StageOutcome]:
    """Run the registered stages in order; stop at the first pending stage's dependants."""
    outcomes: list[StageOutcome] = []
    for stage in STAGES:
        if only and stage.name not in only:
            continue
        missing = [rel for rel in stage.inputs if not storage.is_committed(cfg.out_uri(rel), cfg.storage)]
        if stage.run is not None and missing:
            outcomes.append(StageOutcome(stage.name, "pending", output=cfg.out_uri(stage.output),
                                         detail=f"waiting for inputs: {', '.join(missing)}"))
            continue
        outcomes.append(run_stage(cfg, stage, force=force))
    return outcomes
