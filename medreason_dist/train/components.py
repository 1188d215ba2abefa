"""Building blocks of the SFT recipe: schedule, model, optimizer, data, checkpoints, export.

Each function does one thing and knows nothing about Ray; ``recipe.py`` puts them together
(setup -> train -> save -> cleanup). Everything that touches storage takes the run's
``StorageOptions`` (an S3 endpoint override applies to checkpoints, exports and rejects alike).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa

from medreason_dist import storage
from medreason_dist.train.data import batch_rows, row_reference
from medreason_dist.train.settings import SftConfig

CHECKPOINT_STATE = "state.json"
CHECKPOINT_WEIGHTS = "trainable.safetensors"
CHECKPOINT_OPTIMIZER = "optimizer.pt"
CHECKPOINT_SCHEDULER = "scheduler.pt"
HISTORY_NAME = "train_history.json"
MODEL_DIRNAME = "model"
REJECTS_DIRNAME = "rejects"
EXPORT_MARKER = "_EXPORTED.json"
REJECT_SCHEMA = pa.schema([
    pa.field("row_id", pa.string()),
    pa.field("question", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("detail", pa.string()),
])


class InjectedFailure(RuntimeError):
    """Raised by ``fail_at_step`` so tests can exercise restart-from-checkpoint."""


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}"


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
# Model, optimizer, scheduler, autocast


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


def make_scheduler(optimizer: Any, total_steps: int, cfg: SftConfig) -> Any:
    """Linear warmup, then cosine decay to cfg.min_lr_ratio (or constant)."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total_steps, cfg))


def use_bf16_autocast(cfg: SftConfig, device: Any) -> bool:
    import torch

    return cfg.bf16 == "on" or (cfg.bf16 == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())


# --------------------------------------------------------------------------------------------
# Training data: where a worker's micro batches come from


class InMemorySequences:
    """Sequences held by this process, shuffled per epoch with a seeded generator."""

    def __init__(self, sequences: Sequence[Mapping[str, Any]], cfg: SftConfig,
                 rejects: dict[str, int] | None = None) -> None:
        self.sequences = list(sequences)
        self.cfg = cfg
        self.rejects = rejects or {}

    @property
    def n_sequences(self) -> int:
        return len(self.sequences)

    def micro_batches(self, epoch: int) -> Iterator[list[dict]]:
        order = np.arange(len(self.sequences))
        if self.cfg.shuffle:
            order = np.random.default_rng(self.cfg.seed + epoch).permutation(len(self.sequences))
        for start in range(0, len(order), self.cfg.micro_batch_size):
            yield [self.sequences[i] for i in order[start:start + self.cfg.micro_batch_size]]


class RayShardSequences:
    """This worker's shard of the driver's Ray Dataset (its size is computed by the driver)."""

    def __init__(self, shard: Any, n_sequences: int, cfg: SftConfig) -> None:
        self.shard = shard
        self.n_sequences = n_sequences
        self.cfg = cfg
        self.rejects: dict[str, int] = {}

    def micro_batches(self, epoch: int) -> Iterator[list[dict]]:
        cfg = self.cfg
        shuffle = {"local_shuffle_buffer_size": 256, "local_shuffle_seed": cfg.seed + epoch} if cfg.shuffle else {}
        for batch in self.shard.iter_batches(batch_size=cfg.micro_batch_size, batch_format="numpy", **shuffle):
            yield batch_rows(batch)


def rejects_table(rows: Sequence[Mapping[str, Any]], rejected: Sequence[tuple[int, str, str]]) -> pa.Table:
    """The rejects dataset of ``SftDataset.rejected_rows`` (row index, reason, detail).

    QA rows are named by ``id`` and their question; instruction rows by ``row_id`` and the
    start of their instruction (see ``data.row_reference``).
    """
    refs = [row_reference(rows[i]) for i, _, _ in rejected]
    return pa.table({
        "row_id": [ident for ident, _ in refs],
        "question": [text for _, text in refs],
        "reason": [reason for _, reason, _ in rejected],
        "detail": [detail for _, _, detail in rejected],
    }, schema=REJECT_SCHEMA)


def write_rejects(out_uri: str, table: pa.Table, counts: dict[str, int],
                  options: storage.StorageOptions | None) -> str:
    """Commit ``<out_uri>/rejects`` (rows not trained on, each with its reason)."""
    uri = storage.join(out_uri, REJECTS_DIRNAME)
    storage.write_table(uri, table.cast(REJECT_SCHEMA), stage="sft_rejects", rejects=counts, options=options)
    return uri


# --------------------------------------------------------------------------------------------
# Folders on storage (checkpoints and exports travel as whole folders)


def upload_dir(local: Path, uri: str, options: storage.StorageOptions | None, *, last: str | None = None) -> None:
    """Replace the folder at ``uri`` with ``local``; the file named ``last`` is copied after the rest."""
    import pyarrow.fs as pafs

    fs, path = storage.filesystem(uri, options)
    with contextlib.suppress(FileNotFoundError, OSError):
        fs.delete_dir(path)
    fs.create_dir(path, recursive=True)
    with tempfile.TemporaryDirectory(prefix="sft-upload-") as hold:
        held = Path(hold) / last if last and (local / last).exists() else None
        if held is not None:
            shutil.move(str(local / last), str(held))
        pafs.copy_files(str(local), path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
        if held is not None:
            pafs.copy_files(str(held), f"{path}/{last}", source_filesystem=pafs.LocalFileSystem(),
                            destination_filesystem=fs)


@contextlib.contextmanager
def downloaded_dir(uri: str, options: storage.StorageOptions | None) -> Iterator[Path]:
    """A local copy of the folder at ``uri`` for the duration of the block."""
    import pyarrow.fs as pafs

    fs, path = storage.filesystem(uri, options)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        raise FileNotFoundError(f"no checkpoint folder at {uri}")
    with tempfile.TemporaryDirectory(prefix="sft-ckpt-") as tmp:
        pafs.copy_files(path, tmp, source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
        yield Path(tmp)


# --------------------------------------------------------------------------------------------
# Checkpoints: trainable weights, optimizer, scheduler, and the step/history state


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


def export_model(model: Any, tokenizer: Any, cfg: SftConfig, output_uri: str,
                 options: storage.StorageOptions | None, history: dict) -> str:
    """Write ``<output_uri>/model`` (HF folder + tokenizer) and ``train_history.json``.

    LoRA is merged into the base weights when cfg.merge_lora_on_export, so vLLM loads a plain
    model; otherwise the folder holds the adapter only. The marker file is written last.
    """
    import torch

    net = unwrap(model)
    adapter_only = cfg.method == "lora" and not cfg.merge_lora_on_export
    if cfg.method == "lora" and not adapter_only:
        net = net.merge_and_unload()
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
        upload_dir(folder, model_uri, options, last=EXPORT_MARKER)
    write_history(output_uri, history, options)
    return model_uri


def write_history(output_uri: str, history: dict, options: storage.StorageOptions | None) -> str:
    uri = storage.join(output_uri, HISTORY_NAME)
    storage.write_bytes(uri, json.dumps(history, indent=1).encode(), options)
    return uri
