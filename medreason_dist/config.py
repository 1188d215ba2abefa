"""Typed configuration: pydantic models loaded from ``conf/*.yaml`` plus ``--set key=value``.

Every section forbids unknown keys, so a typo fails loudly with the dotted key and the file (or
``--set``) it came from. This module is the only place that reads the environment-free config
files; nothing else in the package looks up settings on its own.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medreason_dist import storage
from medreason_dist.deploy.settings import DeploySettings
from medreason_dist.literature.settings import LeadsConfig
from medreason_dist.llm.settings import LLMSettings, StepSampling
from medreason_dist.stages.decontaminate import DecontamConfig
from medreason_dist.train.settings import SftConfig
from medreason_dist.storage import StorageOptions

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGED_DATA = PACKAGE_DIR / "data"
REPO_DIR = PACKAGE_DIR.parent


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key and where it came from."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RunConfig(_Section):
    name: str = "local"
    out: str = Field("./out", description="Root URI for every dataset a run writes.")
    seed: int = 0
    locations: dict[str, str] = Field(
        default_factory=dict,
        description="Put a declared dataset somewhere else than its default place, e.g. "
                    "{'reason/pairs': 's3://b/pairs'} (any Parquet folder works as an input).")
    log_dir: str = Field("./logs", description="Local folder for per-run log files (engine and Spark logs).")

    @field_validator("locations")
    @classmethod
    def _declared_names(cls, v: dict[str, str]) -> dict[str, str]:
        from medreason_dist.datasets import BY_NAME

        for name, uri in v.items():
            if name not in BY_NAME:
                raise ValueError(f"run.locations: unknown dataset {name!r}; declared: {', '.join(sorted(BY_NAME))}")
            storage.check_uri(uri)
        return v


class SparkConfig(_Section):
    master: str | None = Field("local[2]", description="None: leave the master to spark-submit or the cluster.")
    app_name: str = "medreason_dist"
    driver_memory: str = "4g"
    conf: dict[str, str] = Field(default_factory=dict, description="Extra spark.* settings.")


class RayConfig(_Section):
    address: str | None = Field(None, description="None starts a local Ray; 'auto' joins a cluster.")
    num_cpus: int | None = Field(None, description="CPUs for a local Ray (ignored on clusters).")


class ModelsConfig(_Section):
    cache_dir: str = Field("./.cache/medreason_dist", description="Where prepared models are kept.")
    embedder: str = Field("packaged:all-minilm-l6-v2", description="Sentence embedding model for linking.")


InputFormat = Literal["auto", "jsonl", "json", "parquet", "hf"]


class HfDatasetSpec(_Section):
    """Hugging Face hub dataset; loaded only when a config asks (never in tests)."""

    path: str
    name: str | None = None
    split: str = "train"
    revision: str | None = None


class SourceSpec(_Section):
    name: str = Field(description="Label stored in the `source` column.")
    adapter: str = Field(description="Adapter that normalises this source (see `medreason-dist sources --list`).")
    path: str | None = Field(None, description="File or dataset URI; 'packaged:<rel>' means shipped data.")
    format: InputFormat = "auto"
    split: str = "train"
    hf: HfDatasetSpec | None = None
    limit: int | None = Field(None, ge=1, description="Keep only the first N rows (samples, smoke runs).")
    options: dict[str, Any] = Field(default_factory=dict, description="Adapter-specific options.")

    @field_validator("path")
    @classmethod
    def _path_shape(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("packaged:"):
            storage.check_uri(v)
        return v


DEMO_KG = "packaged:demo_kg/kg.csv"


class LexiconConfig(_Section):
    """The KG lexicon the dictionary matcher searches (stage ``lexicon``, see kg/lexicon.py)."""

    synonyms: str | None = Field(
        "auto", description="CSV node_index,synonym[,kind]; 'auto' = the demo KG's own synonyms when kg.source is "
                            "the demo KG, else none; null = none.")
    reference_questions: str | None = Field(
        "packaged:eval/medqa_test.jsonl",
        description="MedQA-style JSONL whose question stems decide which names are too frequent to link alone.")
    min_chars: int = Field(4, ge=1, description="Shorter keys are generic (case-sensitive symbols excepted).")
    max_question_share: float = Field(0.15, gt=0.0, le=1.0,
                                      description="Keys in more of the reference questions are generic.")

    def synonyms_source(self, kg_source: str) -> str | None:
        if self.synonyms == "auto":
            return "packaged:demo_kg/synonyms.csv" if kg_source == DEMO_KG else None
        return self.synonyms


class KgConfig(_Section):
    source: str = Field(
        "packaged:demo_kg/kg.csv",
        description="PrimeKG kg.csv: path, storage URI, http(s) URL or packaged:<rel>.",
    )
    dir: str | None = Field(None, description="Ingested KG datasets (nodes/edges); default <run.out>/kg.")
    lexicon: LexiconConfig = Field(default_factory=LexiconConfig)


class PathsConfig(_Section):
    max_hops: int = Field(3, ge=1, le=6)
    max_paths: int = Field(50, ge=1)
    seed: int = 0
    engine: Literal["dataframe", "graphframes"] = "dataframe"
    relation_column: Literal["relation", "display_relation"] = Field(
        "relation", description="Edge column that labels the steps of a path.")


class ReasonConfig(_Section):
    """Settings of the reasoning stages (extract, link, reformat, prune, generate, verify)."""

    grounding: Literal["dictionary", "llm", "hybrid"] = Field(
        "hybrid", description="How entities are found: the KG lexicon on the text (no model), the LLM's extracted "
                              "names linked by embeddings + LLM choice, or both (dictionary first).")
    hybrid_llm_names: Literal["in_text", "any"] = Field(
        "in_text", description="hybrid: which LLM-extracted names may add links: only names the question or "
                               "answer text contains (small models invent entities), or any (a strong teacher "
                               "that maps lay wording to the clinical term).")
    grounding_gold: str | None = Field(
        "packaged:demo/grounding_gold.jsonl",
        description="Gold links (JSONL with question, options, answer, gold); questions of the run found there "
                    "get link precision/recall in the link manifest and the report. null: none.")

    limit: int | None = Field(None, ge=1, description="Only the first N QA rows (smoke runs).")
    batch_rows: int = Field(16, ge=1, description="Rows per progress part (the resume granularity).")
    link_top_k: int = Field(10, ge=1, le=20)
    link_min_similarity: float = Field(0.7, ge=-1.0, le=1.0)
    link_accept_similarity: float = Field(0.85, ge=-1.0, le=1.0)
    link_any_type_fallback: bool = Field(
        False, description="Search all node types when the extracted type finds nothing (small extractors "
                           "mistype entities; MedReason searches the extracted type only).")
    embed_batch_size: int = Field(256, ge=1)
    max_paths_per_group: int = Field(50, ge=1, description="Paths per (start, end) shown to the pruner.")
    keep_paths_per_group: int = Field(3, ge=1, description="Paths the pruner keeps per (start, end).")
    allow_pathless: bool = Field(False, description="Keep rows whose reasoning has no KG path (flagged).")
    extract: StepSampling = Field(default_factory=lambda: StepSampling(max_tokens=384))
    link: StepSampling = Field(default_factory=lambda: StepSampling(max_tokens=16))
    reformat: StepSampling = Field(default_factory=lambda: StepSampling(max_tokens=256))
    prune: StepSampling = Field(default_factory=lambda: StepSampling(max_tokens=48))
    generate: StepSampling = Field(default_factory=lambda: StepSampling(temperature=0.3, max_tokens=640))
    verify: StepSampling = Field(default_factory=lambda: StepSampling(max_tokens=16))


class EvalConfig(_Section):
    """Which models answer the evaluation sets. A value ``run:train/model`` means the
    fine-tuned model this run produced (skipped, with a note, until SFT has run)."""

    models: dict[str, str] = Field(default_factory=lambda: {"base": "packaged:smollm2-135m-instruct",
                                                            "finetuned": "run:train/model"})
    limit_per_benchmark: int | None = Field(None, ge=1, description="Only the first N items of each set.")
    max_tokens: int = Field(384, ge=1)


class Config(_Section):
    run: RunConfig = Field(default_factory=RunConfig)
    storage: StorageOptions = Field(default_factory=StorageOptions)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    sources: list[SourceSpec] = Field(default_factory=list)
    eval_sets: list[SourceSpec] = Field(default_factory=list)
    kg: KgConfig = Field(default_factory=KgConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    reason: ReasonConfig = Field(default_factory=ReasonConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    decontam: DecontamConfig = Field(default_factory=DecontamConfig)
    sft: SftConfig = Field(default_factory=SftConfig)
    leads: LeadsConfig = Field(default_factory=LeadsConfig)
    deploy: DeploySettings = Field(default_factory=DeploySettings)  # `submit` only; never in fingerprints

    @model_validator(mode="after")
    def _one_model_cache(self) -> "Config":
        # The engine layer and `models prepare` must agree on where packaged models live.
        if self.llm.cache_dir != self.models.cache_dir:
            self.llm.cache_dir = self.models.cache_dir
        if self.sft.model_cache_dir != self.models.cache_dir:
            self.sft.model_cache_dir = self.models.cache_dir
        return self

    # -- derived locations -------------------------------------------------------------------
    def out_uri(self, *parts: str) -> str:
        return storage.join(storage.check_uri(self.run.out), *parts)

    def kg_uri(self, *parts: str) -> str:
        base = storage.check_uri(self.kg.dir) if self.kg.dir else self.out_uri("kg")
        return storage.join(base, *parts) if parts else base

    def dataset_uri(self, rel: str) -> str:
        """Where a pipeline dataset lives: ``run.locations[rel]`` when set, else ``kg/...`` under the
        KG root (shared across runs on clusters) and everything else under ``run.out``."""
        if rel in self.run.locations:
            return storage.check_uri(self.run.locations[rel])
        if rel == "kg" or rel.startswith("kg/"):
            return self.kg_uri(*rel.split("/")[1:])
        return self.out_uri(rel)

    def section_hash(self, *sections: str) -> str:
        """Hash of the named config sections (dotted paths allowed): a stage's output depends on
        these only, so changing e.g. ``reason.generate`` does not rerun ``extract``."""
        dump = self.model_dump(mode="json")
        picked = {}
        for dotted in sections:
            node: Any = dump
            for part in dotted.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            picked[dotted] = node
        return storage.config_hash_of(picked)


def resolve_packaged(ref: str) -> str:
    """Turn ``packaged:<rel>`` into the path of data shipped inside the package."""
    if ref.startswith("packaged:"):
        rel = ref[len("packaged:") :]
        if rel.startswith("/") or ".." in rel.split("/"):
            raise ConfigError(f"unsafe packaged path {ref!r}")
        return str(PACKAGED_DATA / rel)
    return ref


def default_config_path() -> Path:
    """``conf/local.yaml`` of the working directory, else the one beside the package."""
    for candidate in (Path.cwd() / "conf" / "local.yaml", REPO_DIR / "conf" / "local.yaml"):
        if candidate.is_file():
            return candidate
    raise ConfigError("no conf/local.yaml found; pass --config PATH")


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set spark.master=local[4]")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: malformed key {key!r}")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML: {err}") from err
    return key.split("."), value


def _apply_override(data: dict, keys: list[str], value: Any, original: str) -> None:
    node: Any = data
    for i, part in enumerate(keys[:-1]):
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"--set {original}: no list element {'.'.join(keys[: i + 1])}")
            node = node[int(part)]
        else:
            if part not in node or node[part] is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, (dict, list)):
                raise ConfigError(f"--set {original}: {'.'.join(keys[: i + 1])} is not a section")
    last = keys[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(f"--set {original}: no list element {'.'.join(keys)}")
        node[int(last)] = value
    else:
        node[last] = value


def _format_errors(err: ValidationError, origin: str, overridden: set[str]) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        where = "--set" if any(key == o or key.startswith(o + ".") for o in overridden) else origin
        if e["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key '{key}'")
        elif e["type"] == "missing":
            lines.append(f"{where}: missing required key '{key}'")
        else:
            lines.append(f"{where}: key '{key}': {e['msg']} (got {e.get('input')!r})")
    return "invalid configuration\n  " + "\n  ".join(lines)


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | None = None, *,
                builtin_defaults: bool = False) -> Config:
    """Load a YAML config, apply ``key=value`` overrides and validate it.

    ``builtin_defaults`` with no ``path``: start from the models' defaults instead of
    conf/local.yaml (jobs shipped without the repository's conf/ folder)."""
    if path is None and builtin_defaults:
        return _validated({}, "<defaults>", overrides)
    cfg_path = Path(path) if path else default_config_path()
    try:
        text = cfg_path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config file {cfg_path}: {err.strerror}") from err
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{cfg_path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{cfg_path}: top level must be a mapping of sections")
    return _validated(data, str(cfg_path), overrides)


def _validated(data: dict, origin: str, overrides: list[str] | None) -> Config:
    data = copy.deepcopy(data)
    overridden: set[str] = set()
    for item in overrides or []:
        keys, value = _parse_override(item)
        _apply_override(data, keys, value, item)
        overridden.add(".".join(keys))
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, origin, overridden)) from None
    except storage.UnsafeUriError as err:
        raise ConfigError(f"{origin}: {err}") from None
