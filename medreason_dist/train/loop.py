"""The per-worker SFT training loop: one ordinary function, with or without Ray.

``train_loop(config)`` is what every Ray Train worker runs (``TorchTrainer(train_loop, ...)``)
and also what a single process runs for debugging or GPU throughput measurement. The only
differences between the two modes are where the data comes from (a Ray Data shard or an
in-memory list of sequences), how the model is wrapped (``ray.train.torch.prepare_model``
or ``.to(device)``), and where checkpoints go (``ray.train.report`` or a local folder).

``config`` keys:
  sft            SftConfig as a dict (required)
  use_ray        True inside Ray Train
  model_path     resolved model folder / hub id (default: resolve sft.model on this worker)
  model_config   dict of a transformers config to build a *random-initialised* model
                 instead (benchmarks); needs ``tokenizer_path`` only if exporting
  sequences      local mode: list of dicts with input_ids/labels/position_ids/n_examples
  sequences_per_worker  Ray mode: rows of this worker's shard (the driver computes it)
  pad_id         padding token id (default: tokenizer's pad/eos)
  output_uri     where rank 0 writes model/ and train_history.json at the end (optional)
  storage_options StorageOptions dict for output_uri (optional)
  resume_dir     local mode: a checkpoint folder to resume from (optional)
  checkpoint_dir local mode: folder that receives checkpoints (optional)
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from medreason_dist.train.data import IGNORE_INDEX, batch_rows, collate, padding_fraction
from medreason_dist.train.settings import SftConfig

log = logging.getLogger(__name__)

CHECKPOINT_STATE = "state.json"
CHECKPOINT_WEIGHTS = "trainable.safetensors"
CHECKPOINT_OPTIMIZER = "optimizer.pt"
CHECKPOINT_SCHEDULER = "scheduler.pt"
HISTORY_NAME = "train_history.json"
MODEL_DIRNAME = "model"
EXPORT_MARKER = "_EXPORTED.json"


class InjectedFailure(RuntimeError):
    """Raised by ``fail_at_step`` so tests can exercise restart-from-checkpoint."""


# --------------------------------------------------------------------------------------------
# Step planning and the learning-rate schedule


def plan_steps(sequences_per_worker: int, cfg: SftConfig) -> dict[str, int]:
    """Micro batches and optimizer steps per epoch, and the total step count."""
    if sequences_per_worker < 1:
        raise ValueError("no training sequences for this worker")
    micro = math.ceil(sequences_per_worker / cfg.micro_batch_size)
    per_epoch = math.ceil(micro / cfg.grad_accum)
    total = cfg.max_steps if cfg.max_steps is not None else per_epoch * cfg.epochs
    return {"micro_batches_per_epoch": micro, "steps_per_epoch": per_epoch, "total_steps": total}


def lr_factor(step: int, total: int, cfg: SftConfig) -> float:
    """Multiplier of cfg.lr for the optimizer step with 0-based index ``step``."""
    warmup = math.ceil(cfg.warmup_ratio * total)
    if step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


# --------------------------------------------------------------------------------------------
# Model construction


def _attn_implementation(cfg: SftConfig, device_type: str) -> str:
    if cfg.attn_implementation != "auto":
        return cfg.attn_implementation
    if device_type == "cuda":
        try:
            import flash_attn  # noqa: F401

            return "flash_attention_2"
        except ImportError:
            pass
    return "sdpa"


def build_model(cfg: SftConfig, device: Any, *, model_path: str | None, model_config: dict | None) -> Any:
    """A causal LM in cfg.param_dtype on ``device``, wrapped with LoRA when asked."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    dtype = torch.bfloat16 if cfg.param_dtype == "bfloat16" else torch.float32
    attn = _attn_implementation(cfg, device.type)
    if model_config is not None:
        config = AutoConfig.for_model(**model_config)
        config._attn_implementation = attn
        with torch.device(device):  # initialise directly on the device: an 8B model is big on host
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, attn_implementation=attn)
        model.to(device)
    model.config.use_cache = False
    if cfg.gradient_checkpointing:
        # transformers 5 renamed the method; the old name still exists (deprecated) for >=4.56
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable({"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
            target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM", bias="none",
        )
        model = get_peft_model(model, lora)
    return model


def unwrap(model: Any) -> Any:
    """The module inside DistributedDataParallel (a PeftModel stays a PeftModel)."""
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def make_optimizer(model: Any, cfg: SftConfig, device: Any) -> Any:
    """AdamW; no weight decay on biases and norms (1-D parameters)."""
    import torch

    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.adam_betas), **extra)


# --------------------------------------------------------------------------------------------
# Checkpoints


def trainable_state(model: Any) -> dict[str, Any]:
    return {name: p.detach().contiguous().cpu() for name, p in unwrap(model).named_parameters() if p.requires_grad}


def save_checkpoint(folder: Path, model: Any, optimizer: Any, scheduler: Any, state: dict) -> None:
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(trainable_state(model), str(folder / CHECKPOINT_WEIGHTS))
    torch.save(optimizer.state_dict(), folder / CHECKPOINT_OPTIMIZER)
    torch.save(scheduler.state_dict(), folder / CHECKPOINT_SCHEDULER)
    (folder / CHECKPOINT_STATE).write_text(json.dumps(state))


def load_checkpoint(folder: Path, model: Any, optimizer: Any, scheduler: Any) -> dict:
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(folder / CHECKPOINT_WEIGHTS))
    trainable = {n for n, p in unwrap(model).named_parameters() if p.requires_grad}
    if set(weights) != trainable:
        raise RuntimeError(
            f"checkpoint {folder} does not match the model: {len(set(weights) ^ trainable)} differing tensors "
            "(was it written with another method or model?)"
        )
    missing, unexpected = unwrap(model).load_state_dict(weights, strict=False)
    if unexpected:
        raise RuntimeError(f"unexpected tensors in checkpoint: {unexpected[:5]}")
    optimizer.load_state_dict(torch.load(folder / CHECKPOINT_OPTIMIZER, map_location="cpu", weights_only=True))
    scheduler.load_state_dict(torch.load(folder / CHECKPOINT_SCHEDULER, map_location="cpu", weights_only=True))
    return json.loads((folder / CHECKPOINT_STATE).read_text())


# --------------------------------------------------------------------------------------------
# Export


def export_model(model: Any, tokenizer: Any, cfg: SftConfig, output_uri: str, storage_options: Any,
                 history: dict) -> str:
    """Write ``<output_uri>/model`` (HF folder + tokenizer) and ``train_history.json``.

    LoRA is merged into the base weights when cfg.merge_lora_on_export, so vLLM loads a plain
    model; otherwise the folder holds the adapter only. The marker file is written last.
    """
    import pyarrow.fs as pafs
    import torch

    from medreason_dist import storage

    net = unwrap(model)
    adapter_only = False
    if cfg.method == "lora":
        if cfg.merge_lora_on_export:
            net = net.merge_and_unload()
        else:
            adapter_only = True
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[cfg.export_dtype]
    net = net.to(dtype)
    if not adapter_only:
        net.config.use_cache = True  # inference default
    model_uri = storage.join(output_uri, MODEL_DIRNAME)
    with tempfile.TemporaryDirectory(prefix="sft-export-") as tmp:
        folder = Path(tmp) / MODEL_DIRNAME
        net.save_pretrained(str(folder), safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(folder))
        (folder / EXPORT_MARKER).write_text(json.dumps({
            "method": cfg.method, "merged": cfg.method == "lora" and not adapter_only,
            "adapter_only": adapter_only, "dtype": cfg.export_dtype, "step": history.get("final_step"),
        }))
        fs, path = storage.filesystem(model_uri, storage_options)
        with contextlib.suppress(FileNotFoundError, OSError):
            fs.delete_dir(path)
        fs.create_dir(path, recursive=True)
        # marker last: copy everything else first, then the marker
        marker = folder / EXPORT_MARKER
        tmp_marker = Path(tmp) / EXPORT_MARKER
        shutil.move(str(marker), str(tmp_marker))
        pafs.copy_files(str(folder), path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
        pafs.copy_files(str(tmp_marker), f"{path}/{EXPORT_MARKER}", source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=fs)
    storage.write_bytes(storage.join(output_uri, HISTORY_NAME), json.dumps(history, indent=1).encode(),
                        storage_options)
    return model_uri


# --------------------------------------------------------------------------------------------
# Data iteration


def _local_micro_batches(sequences: list[dict], cfg: SftConfig, epoch: int) -> Iterator[list[dict]]:
    order = np.arange(len(sequences))
    if cfg.shuffle:
        order = np.random.default_rng(cfg.seed + epoch).permutation(len(sequences))
    for start in range(0, len(order), cfg.micro_batch_size):
        yield [sequences[i] for i in order[start:start + cfg.micro_batch_size]]


def _ray_micro_batches(shard: Any, cfg: SftConfig, epoch: int) -> Iterator[list[dict]]:
    shuffle = {"local_shuffle_buffer_size": 256, "local_shuffle_seed": cfg.seed + epoch} if cfg.shuffle else {}
    for batch in shard.iter_batches(batch_size=cfg.micro_batch_size, batch_format="numpy", **shuffle):
        yield batch_rows(batch)


# --------------------------------------------------------------------------------------------
# The loop


def train_loop(config: dict) -> dict | None:
    import torch
    import torch.nn.functional as F

    cfg = SftConfig.model_validate(config["sft"])
    use_ray = bool(config.get("use_ray"))
    started = time.monotonic()

    # -- who am I, and on which device ---------------------------------------------------------
    if use_ray:
        import ray.train
        import ray.train.torch

        ctx = ray.train.get_context()
        rank, world = ctx.get_world_rank(), ctx.get_world_size()
        device = ray.train.torch.get_device()
    else:
        rank, world = 0, 1
        device = torch.device("cuda" if cfg.use_gpu and torch.cuda.is_available() else "cpu")
    distributed = world > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    # -- model, tokenizer, optimizer -----------------------------------------------------------
    model_path = config.get("model_path")
    model_config = config.get("model_config")
    if model_path is None and model_config is None:
        from medreason_dist.models import resolve_model

        model_path = resolve_model(cfg.model, cfg.model_cache_dir)
    tokenizer = None
    tokenizer_path = config.get("tokenizer_path", model_path)
    if tokenizer_path is not None:
        from medreason_dist.train.data import load_tokenizer

        tokenizer = load_tokenizer(tokenizer_path)
    pad_id = config.get("pad_id")
    if pad_id is None:
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    model = build_model(cfg, device, model_path=model_path, model_config=model_config)
    if use_ray:
        model = ray.train.torch.prepare_model(model, move_to_device=device)
    model.train()
    n_params = sum(p.numel() for p in unwrap(model).parameters())
    n_trainable = sum(p.numel() for p in unwrap(model).parameters() if p.requires_grad)

    if use_ray:
        shard = ray.train.get_dataset_shard("train")
        n_sequences = int(config["sequences_per_worker"])
    else:
        sequences = config["sequences"]
        n_sequences = len(sequences)
    plan = plan_steps(n_sequences, cfg)
    total_steps = plan["total_steps"]

    optimizer = make_optimizer(model, cfg, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total_steps, cfg))

    bf16 = cfg.bf16 == "on" or (cfg.bf16 == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    # -- resume --------------------------------------------------------------------------------
    step, history, resumes = 0, [], []
    resume_dir = None
    if use_ray:
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                state = load_checkpoint(Path(folder), model, optimizer, scheduler)
            resume_dir = "ray"
    elif config.get("resume_dir"):
        state = load_checkpoint(Path(config["resume_dir"]), model, optimizer, scheduler)
        resume_dir = config["resume_dir"]
    if resume_dir is not None:
        step, history, resumes = state["step"], state["history"], state.get("resumes", []) + [state["step"]]
        torch.manual_seed(cfg.seed + step)  # fresh but reproducible randomness (LoRA dropout) after resume
        log.info("rank %d resumed from step %d", rank, step)

    def all_reduce_sum(values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=device)
        if distributed:
            torch.distributed.all_reduce(t)
        return t.tolist()

    def snapshot() -> dict:
        return {"step": step, "history": history, "resumes": resumes, "total_steps": total_steps}

    def report(metrics: dict, with_checkpoint: bool) -> None:
        if not with_checkpoint:
            if use_ray:
                ray.train.report(metrics)
            return
        if use_ray:
            with tempfile.TemporaryDirectory(prefix="sft-ckpt-") as tmp:
                if rank == 0:
                    save_checkpoint(Path(tmp), model, optimizer, scheduler, snapshot())
                    ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp),
                                     checkpoint_dir_name=f"step_{step:08d}")
                else:
                    ray.train.report(metrics)
        elif config.get("checkpoint_dir"):
            save_checkpoint(Path(config["checkpoint_dir"]) / f"step_{step:08d}", model, optimizer, scheduler,
                            snapshot())

    # -- train ---------------------------------------------------------------------------------
    epoch = step // plan["steps_per_epoch"]
    skip = (step % plan["steps_per_epoch"]) * cfg.grad_accum  # micro batches already consumed this epoch
    while step < total_steps:
        batches = (_ray_micro_batches(shard, cfg, epoch) if use_ray else _local_micro_batches(sequences, cfg, epoch))
        consumed = 0
        group: list[dict] = []
        for rows in batches:
            consumed += 1
            if consumed > plan["micro_batches_per_epoch"]:
                break  # equal shards make this unreachable; it guards DDP against a lopsided shard
            if consumed <= skip:
                continue
            group.append(collate(rows, pad_id, packed=cfg.packing))
            last_of_epoch = consumed == plan["micro_batches_per_epoch"]
            if len(group) < cfg.grad_accum and not last_of_epoch:
                continue

            if cfg.fail_at_step is not None and not resumes and step + 1 == cfg.fail_at_step:
                raise InjectedFailure(f"injected failure before step {step + 1} (fail_at_step)")

            t0 = time.monotonic()
            # Normalise by the response tokens of the whole step on all workers, so the gradient
            # is the token-mean however the tokens fall into micro batches and workers.
            local_label_tokens = sum(b["label_tokens"] for b in group)
            global_label_tokens = max(1.0, all_reduce_sum([local_label_tokens])[0])
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            for i, b in enumerate(group):
                sync = i == len(group) - 1 or not hasattr(model, "no_sync")
                with (contextlib.nullcontext() if sync else model.no_sync()), autocast():
                    inputs = {k: b[k].to(device) for k in ("input_ids", "position_ids", "attention_mask") if k in b}
                    logits = model(**inputs, use_cache=False).logits
                    labels = b["labels"].to(device)
                    token_loss = F.cross_entropy(
                        logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                        ignore_index=IGNORE_INDEX, reduction="sum",
                    )
                (token_loss * world / global_label_tokens).backward()
                loss_sum += token_loss.detach().double()
            grad_norm = None
            if cfg.grad_clip is not None:
                grad_norm = float(torch.nn.utils.clip_grad_norm_(
                    [p for p in model.parameters() if p.requires_grad], cfg.grad_clip))
            lr_now = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.monotonic() - t0
            step += 1

            real = sum(b["real_tokens"] for b in group)
            pad = sum(b["pad_tokens"] for b in group)
            g_loss, g_real, g_pad, g_examples = all_reduce_sum(
                [float(loss_sum), real, pad, sum(b["n_examples"] for b in group)])
            group = []
            metrics = {
                "step": step, "epoch": epoch, "loss": g_loss / global_label_tokens, "lr": lr_now,
                "tokens_per_s": (g_real + g_pad) / seconds, "real_tokens_per_s": g_real / seconds,
                "padding_fraction": padding_fraction(int(g_pad), int(g_real)),
                "examples": int(g_examples), "step_seconds": seconds,
                "real_tokens": int(g_real), "pad_tokens": int(g_pad),
            }
            if grad_norm is not None:
                metrics["grad_norm"] = grad_norm
            history.append(metrics)
            if rank == 0 and (step % cfg.log_every_steps == 0 or step == total_steps):
                log.info("step %d/%d loss %.4f lr %.2e tok/s %.0f pad %.3f", step, total_steps, metrics["loss"],
                         lr_now, metrics["tokens_per_s"], metrics["padding_fraction"])
            with_ckpt = step % cfg.checkpoint_every_steps == 0 or step == total_steps
            if with_ckpt or step % cfg.log_every_steps == 0:
                report(metrics, with_ckpt)
            if step >= total_steps:
                break
        epoch += 1
        skip = 0

    pad_total = sum(h.get("pad_tokens", 0) for h in history)  # whole run, across resumes
    real_total = sum(h.get("real_tokens", 0) for h in history)
    summary = {
        "final_step": step, "total_steps": total_steps, "history": history, "resumes": resumes,
        "padding_fraction": padding_fraction(pad_total, real_total) if real_total else None,
        "real_tokens": real_total, "pad_tokens": pad_total,
        "n_params": n_params, "n_trainable_params": n_trainable, "world_size": world,
        "bf16_autocast": bf16, "device": device.type, "plan": plan, "wall_s": time.monotonic() - started,
        "method": cfg.method, "packing": cfg.packing,
    }
    if rank == 0 and config.get("output_uri"):
        from medreason_dist.storage import StorageOptions

        options = config.get("storage_options")
        options = StorageOptions.model_validate(options) if options else None
        summary["model_uri"] = export_model(model, tokenizer, cfg, config["output_uri"], options, summary)
    if use_ray:
        # One last barrier so no worker exits while rank 0 is still exporting.
        ray.train.report({"step": step, "done": True})
        return None
    return summary
