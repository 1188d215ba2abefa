"""Driver side of SFT: Ray Data preparation, Ray Train ``TorchTrainer`` (Train V2), outputs.

Flow:
  SFT dataset (committed Parquet or an in-memory table)
   -> Ray Data: tokenize (rejects keep a reason) -> pack (or not) -> shuffle -> materialize
   -> TorchTrainer(train_worker) with datasets={"train": ...}; every worker validates the
      RecipeConfig the driver sent, runs the recipe (train/recipe.py) on its equal shard
   -> rank 0 exports <out>/model (HF folder, LoRA merged on request) + <out>/train_history.json
   -> the driver writes <out>/rejects (dataset) and <out>/_SFT.json (written last).

Checkpoints go to ``RunConfig(storage_path=<sft.storage_path or out/_ray_train>, name=<run>)``.
The default run name hashes the settings and the data, so submitting the same job again
continues from the last checkpoint; ``FailureConfig(max_failures)`` restarts a failed worker
group from it within one submission.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from medreason_dist import storage
from medreason_dist.train.data import (
    load_tokenizer,
    missing_columns,
    pack_examples,
    row_reference,
    tokenize_rows,
    unpacked_examples,
)
from medreason_dist.train.components import (
    HISTORY_NAME,
    MODEL_DIRNAME,
    REJECT_SCHEMA,
    write_rejects,
)
from medreason_dist.train.recipe import train_worker
from medreason_dist.train.settings import OutputConfig, RayShardData, RecipeConfig, SftConfig, WorldConfig

log = logging.getLogger(__name__)

SUMMARY_NAME = "_SFT.json"
_TOKENS = pa.list_(pa.int32())
# Settings that do not change the trained weights; they stay out of the default run name.
_RUN_NAME_EXCLUDES = {"storage_path", "run_name", "max_failures", "fail_at_step", "log_every_steps",
                      "checkpoints_to_keep", "cpus_per_worker", "checkpoint_every_steps"}


# --------------------------------------------------------------------------------------------
# Ray Data transforms (module-level functions so they pickle by reference)


def _tokenize_batch(batch: pa.Table, *, model_ref: str, cache_dir: str, max_seq_len: int,
                    storage_options: dict | None) -> pa.Table:
    from medreason_dist.models import resolve_model

    options = storage.StorageOptions.model_validate(storage_options) if storage_options else None
    tokenizer = load_tokenizer(resolve_model(model_ref, cache_dir, storage_options=options))
    rows = batch.to_pylist()
    tok = tokenize_rows(rows, tokenizer, max_seq_len)
    refs = [row_reference(r) for r in rows]  # QA rows: id/question; instruction rows: row_id/instruction
    ids = [ident for ident, _ in refs]
    questions = [text for _, text in refs]
    return pa.table({
        "input_ids": pa.array(tok["input_ids"], type=_TOKENS),
        "labels": pa.array(tok["labels"], type=_TOKENS),
        "reject_reason": pa.array(tok["reject_reason"], type=pa.string()),
        "reject_detail": pa.array(tok["reject_detail"], type=pa.string()),
        "row_id": pa.array(ids, type=pa.string()),
        "question": pa.array(questions, type=pa.string()),
    })


def _accepted(batch: pa.Table) -> pa.Table:
    return batch.filter(pc.is_null(batch["reject_reason"])).select(["input_ids", "labels"])


def _rejected(batch: pa.Table) -> pa.Table:
    bad = batch.filter(pc.is_valid(batch["reject_reason"]))
    return pa.table({"row_id": bad["row_id"], "question": bad["question"], "reason": bad["reject_reason"],
                     "detail": bad["reject_detail"]})


def _sequences_batch(batch: pa.Table, *, packing: bool, capacity: int) -> pa.Table:
    ids = batch["input_ids"].to_pylist()
    labels = batch["labels"].to_pylist()
    cols = pack_examples(ids, labels, capacity) if packing else unpacked_examples(ids, labels)
    return pa.table({
        "input_ids": pa.array(cols["input_ids"], type=_TOKENS),
        "labels": pa.array(cols["labels"], type=_TOKENS),
        "position_ids": pa.array(cols["position_ids"], type=_TOKENS),
        "n_examples": pa.array(cols["n_examples"], type=pa.int32()),
        "n_tokens": pa.array([len(x) for x in cols["input_ids"]], type=pa.int64()),
    })


# --------------------------------------------------------------------------------------------


def _read_input(data: str | pa.Table, options: storage.StorageOptions | None) -> tuple[Any, str]:
    """A Ray Dataset of the SFT rows and a content identity for the run name."""
    import ray.data

    if isinstance(data, pa.Table):
        missing = missing_columns(data.column_names)
        if missing:
            raise ValueError(f"SFT table lacks columns {missing}")
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, data.schema) as writer:
            writer.write_table(data)
        identity = hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()
        return ray.data.from_arrow(data), identity
    manifest = storage.read_manifest(data, options)  # refuses an uncommitted dataset
    files = storage.dataset_files(data, options)
    fs, _ = storage.filesystem(data, options)
    paths = [storage.filesystem(f, options)[1] for f in files]
    ds = ray.data.read_parquet(paths, filesystem=fs)
    present = ds.schema().names
    missing = missing_columns(present)
    if missing:
        raise ValueError(f"SFT dataset {data} lacks columns {missing} (has {present})")
    return ds, manifest.content_hash


def _prepare_data(data: str | pa.Table, cfg: SftConfig, storage_options: storage.StorageOptions | None,
                  options_dict: dict | None) -> tuple[int, pa.Table, dict[str, int], Any, str]:
    """Ray Data: read, tokenize (rejects keep a reason), pack or not, shuffle, materialize."""
    import ray

    ds, identity = _read_input(data, storage_options)

    tokenized = ds.map_batches(
        _tokenize_batch, batch_format="pyarrow", batch_size=256,
        fn_kwargs={"model_ref": cfg.model, "cache_dir": cfg.model_cache_dir, "max_seq_len": cfg.max_seq_len,
                   "storage_options": options_dict},
    ).materialize()
    rejects_ds = tokenized.map_batches(_rejected, batch_format="pyarrow")
    reject_tables = [t for t in (ray.get(ref) for ref in rejects_ds.to_arrow_refs()) if t.num_rows]
    rejects_table = pa.concat_tables(reject_tables).cast(REJECT_SCHEMA) if reject_tables else REJECT_SCHEMA.empty_table()
    reject_counts: dict[str, int] = {}
    for reason in rejects_table["reason"].to_pylist():
        reject_counts[reason] = reject_counts.get(reason, 0) + 1
    n_rows = tokenized.count()

    sequences = tokenized.map_batches(_accepted, batch_format="pyarrow").map_batches(
        _sequences_batch, batch_format="pyarrow", batch_size=cfg.pack_window,
        fn_kwargs={"packing": cfg.packing, "capacity": cfg.max_seq_len},
    )
    if cfg.shuffle:
        sequences = sequences.random_shuffle(seed=cfg.seed)
    sequences = sequences.materialize()
    return n_rows, rejects_table, reject_counts, sequences, identity


def default_run_name(cfg: SftConfig, data_identity: str) -> str:
    settings = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in _RUN_NAME_EXCLUDES}
    return "sft-" + storage.config_hash_of({"sft": settings, "data": data_identity})[:12]


def run_sft(data: str | pa.Table, out_uri: str, cfg: SftConfig, storage_options: storage.StorageOptions | None = None,
            *, ray_address: str | None = None, ray_num_cpus: int | None = None) -> dict:
    """Fine-tune ``cfg.model`` on an SFT dataset; returns the summary also written to ``_SFT.json``."""
    import ray
    import ray.data
    import ray.train
    from ray.train.torch import TorchTrainer

    started = time.monotonic()
    out_uri = storage.check_uri(out_uri)
    if not ray.is_initialized():
        # None means a private local Ray (even if another one runs on this machine); num_cpus
        # only sizes a local Ray, an existing cluster refuses it.
        if ray_address is None:
            ray.init(address="local", num_cpus=ray_num_cpus, include_dashboard=False, ignore_reinit_error=True)
        else:
            ray.init(address=ray_address, ignore_reinit_error=True)
    options_dict = storage_options.model_dump() if storage_options else None

    ctx = ray.data.DataContext.get_current()
    previous_order = ctx.execution_options.preserve_order
    ctx.execution_options.preserve_order = True  # same data order for the same seed
    try:
        prepared = _prepare_data(data, cfg, storage_options, options_dict)
    finally:
        ctx.execution_options.preserve_order = previous_order
    n_rows, rejects_table, reject_counts, sequences, identity = prepared
    n_sequences = sequences.count()
    if n_sequences == 0:
        raise ValueError(f"no usable SFT rows ({n_rows} read, rejects {reject_counts})")
    n_examples = int(sequences.sum("n_examples"))
    n_tokens = int(sequences.sum("n_tokens"))
    if n_sequences < cfg.num_workers:
        # A tiny dataset (e.g. a smoke run) cannot give every worker a sequence; train on fewer
        # workers rather than fail, and say so.
        log.warning("only %d packed sequences for %d workers: training with %d worker(s)",
                    n_sequences, cfg.num_workers, n_sequences)
        cfg = cfg.model_copy(update={"num_workers": n_sequences})
    per_worker = n_sequences // cfg.num_workers  # Ray Train's equal split drops the remainder

    run_name = cfg.run_name or default_run_name(cfg, identity)
    storage_uri = storage.check_uri(cfg.storage_path) if cfg.storage_path else storage.join(out_uri, "_ray_train")
    fs, storage_fs_path = storage.filesystem(storage_uri, storage_options)
    fs.create_dir(storage_fs_path, recursive=True)

    resources = {"CPU": cfg.cpus_per_worker}
    if cfg.use_gpu:
        resources["GPU"] = 1
    recipe_cfg = RecipeConfig(
        sft=cfg, world=WorldConfig(launcher="ray_train", num_workers=cfg.num_workers),
        data=RayShardData(sequences_per_worker=per_worker), output=OutputConfig(uri=out_uri),
        storage_options=storage_options,
    )
    trainer = TorchTrainer(
        train_worker,
        train_loop_config=recipe_cfg.model_dump(mode="json"),  # validated back on each worker
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu,
                                               resources_per_worker=resources),
        run_config=ray.train.RunConfig(
            name=run_name, storage_path=storage_fs_path, storage_filesystem=fs,
            failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.checkpoints_to_keep),
        ),
        datasets={"train": sequences},
    )
    log.info("SFT run %s: %d sequences (%d examples, %d tokens) on %d workers", run_name, n_sequences,
             n_examples, n_tokens, cfg.num_workers)
    result = trainer.fit()

    history = json.loads(storage.read_bytes(storage.join(out_uri, HISTORY_NAME), storage_options))
    write_rejects(out_uri, rejects_table, reject_counts, storage_options)
    summary = {
        "model_uri": storage.join(out_uri, MODEL_DIRNAME),
        "history_uri": storage.join(out_uri, HISTORY_NAME),
        "run_name": run_name,
        "storage_uri": storage_uri,
        "checkpoint": result.checkpoint.path if result.checkpoint is not None else None,
        "rows": n_rows,
        "examples": n_examples,
        "sequences": n_sequences,
        "sequences_per_worker": per_worker,
        "tokens": n_tokens,
        "rejects": reject_counts,
        "final_step": history["final_step"],
        "total_steps": history["total_steps"],
        "resumes": history["resumes"],
        "final_loss": history["history"][-1]["loss"] if history["history"] else None,
        "padding_fraction": history["padding_fraction"],
        "n_params": history["n_params"],
        "n_trainable_params": history["n_trainable_params"],
        "method": cfg.method,
        "packing": cfg.packing,
        "num_workers": cfg.num_workers,
        "wall_s": round(time.monotonic() - started, 1),
        "config_hash": storage.config_hash_of(cfg.model_dump(mode="json")),
    }
    storage.write_bytes(storage.join(out_uri, SUMMARY_NAME), json.dumps(summary, indent=1).encode(), storage_options)
    return summary


def write_loss_dataset(summary: dict, uri: str, *, stage: str, fingerprint: str,
                       options: storage.StorageOptions | None, extra: dict | None = None) -> storage.Manifest:
    """A training run's loss per step (from its history file) as a dataset whose manifest keeps the
    run summary, the rejects by reason and the trained tokens: the main output of a training stage."""
    history = json.loads(storage.read_bytes(summary["history_uri"], options))
    points = [(int(h["step"]), float(h["loss"])) for h in history.get("history", [])]
    loss = pa.table({"step": pa.array([p[0] for p in points], pa.int64()),
                     "loss": pa.array([p[1] for p in points], pa.float64())})
    return storage.write_table(uri, loss, stage=stage, config_hash=fingerprint, rejects=summary.get("rejects") or {},
                               tokens={"train": int(summary["tokens"])},
                               extra={"summary": summary, "loss_history": points, **(extra or {})}, options=options)
