"""Stage fingerprints, derived rather than hand-listed.

fingerprint = hash(stage name, stage code version,
                   the whole value of every config path the stage declares,
                   minus the fields that only change how fast or where work runs (EXECUTION_ONLY),
                   the identity of every model it uses (package version or files),
                   the content hash of every dataset it reads,
                   the identity of its external inputs (source files, URLs)).

The parts are kept in the output manifest (``extra.fingerprint``), so ``--plan`` can say which
config field, input or code version changed.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from medreason_dist import storage
from medreason_dist.config import Config
from medreason_dist.runner.contract import Stage

# Fields that change how fast, where or how visibly a run works, never what it writes. Every
# other config field belongs to at least one stage (tests/test_runner.py walks the schema).
EXECUTION_ONLY: tuple[str, ...] = (
    "run.out", "run.locations", "run.log_dir",  # where datasets live: moving them is not a change of content
    "kg.dir",
    "storage.*",
    "spark.*",
    "ray.*",
    "deploy.*",  # where `submit` sends jobs (cloud resource ids, code location), not what they write
    "models.cache_dir", "llm.cache_dir", "sft.model_cache_dir",
    "llm.batch_size", "llm.concurrency", "llm.max_concurrent_batches", "llm.tokenizer_concurrency",
    "llm.light_stage_cpus", "llm.max_num_seqs", "llm.shared_engine",
    "llm.cpu.cpus_per_engine", "llm.cpu.memory_fraction", "llm.cpu.kv_cache_gib", "llm.cpu.omp_threads_bind",
    "llm.cpu.reserved_cpus",
    "llm.gpu.accelerator_type", "llm.gpu.gpu_memory_utilization",
    "llm.http.qps", "llm.http.max_retries", "llm.http.retry_base_wait_s", "llm.http.api_key_env",
    "llm.prices",  # cost estimates are recomputed by the report
    "reason.batch_rows", "reason.embed_batch_size", "decontam.batch_rows",
    "sft.num_workers", "sft.use_gpu", "sft.cpus_per_worker", "sft.storage_path", "sft.run_name",
    "sft.checkpoint_every_steps", "sft.checkpoints_to_keep", "sft.max_failures", "sft.log_every_steps",
    "sft.fail_at_step",
    # literature mining: which stages a command runs, shard size, how the services are addressed
    "leads.execute", "leads.batch_rows", "leads.pubmed.api_key_env", "leads.pubmed.email", "leads.ctgov.page_size",
)


def is_execution_only(path: str) -> bool:
    generic = ".".join("*" if part.isdigit() else part for part in path.split("."))
    return any(fnmatch.fnmatchcase(p, pattern) or p.startswith(pattern + ".")
               for pattern in EXECUTION_ONLY for p in (path, generic))


def _strip(value: Any, path: str) -> Any:
    if is_execution_only(path):
        return "<execution-only>"
    if isinstance(value, dict):
        return {k: _strip(v, f"{path}.{k}") for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_strip(v, f"{path}.{i}") for i, v in enumerate(value)]
    return value


def config_value(cfg: Config, dotted: str) -> Any:
    node: Any = cfg.model_dump(mode="json")
    for part in dotted.split("."):
        if isinstance(node, list) and part.isdigit():
            node = node[int(part)] if int(part) < len(node) else None
        else:
            node = node.get(part) if isinstance(node, dict) else None
    return node


def config_view(cfg: Config, stage: Stage) -> dict[str, Any]:
    """The part of the config the stage's output depends on (execution-only fields masked)."""
    return {path: _strip(config_value(cfg, path), path) for path in stage.config}


def fingerprint_parts(cfg: Config, stage: Stage) -> dict[str, Any]:
    from medreason_dist.models import model_identity

    inputs = {ref.name: storage.content_identity(cfg.dataset_uri(ref.name), cfg.storage)
              for ref in stage.reads + stage.optional_reads if ref.kind in ("dataset",)}
    parts = {
        "stage": stage.name,
        "version": stage.version,
        "config": config_view(cfg, stage),
        "engines": {path: model_identity(config_value(cfg, path)) for path in stage.engines},
        "inputs": inputs,
        "external": stage.external(cfg) if stage.external else None,
    }
    return json.loads(json.dumps(parts, sort_keys=True, default=str))  # as a manifest stores it


def fingerprint_of(parts: dict[str, Any]) -> str:
    return storage.config_hash_of(parts)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted leaf paths of a nested dict/list (for saying which field changed)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}.{i}"))
        return out
    return {prefix: value}


def what_changed(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Human reasons: which config fields, inputs, engines or code version differ."""
    if not old:
        return ["no fingerprint recorded for the existing output"]
    reasons = []
    if old.get("version") != new["version"]:
        reasons.append(f"code version {old.get('version')} -> {new['version']}")
    old_cfg, new_cfg = flatten(old.get("config") or {}), flatten(new["config"])
    for key in sorted(set(old_cfg) | set(new_cfg)):
        if old_cfg.get(key, "<absent>") != new_cfg.get(key, "<absent>"):
            reasons.append(f"config {key}: {old_cfg.get(key, '<absent>')!r} -> {new_cfg.get(key, '<absent>')!r}")
    for name in sorted(set(old.get("inputs") or {}) | set(new["inputs"])):
        if (old.get("inputs") or {}).get(name) != new["inputs"].get(name):
            reasons.append(f"input {name} changed")
    for path in sorted(set(old.get("engines") or {}) | set(new["engines"])):
        if (old.get("engines") or {}).get(path) != new["engines"].get(path):
            reasons.append(f"model {path} changed")
    if old.get("external") != new["external"]:
        reasons.append("external inputs (source files, URLs, trained model) changed")
    return reasons or ["fingerprint differs"]
