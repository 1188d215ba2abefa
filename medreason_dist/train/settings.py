"""Typed settings for supervised fine-tuning (the ``sft`` config section).

The same object drives the single-process loop, the Ray Train job and the benchmark, so
every knob that changes the result lives here and nowhere else.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LoraSettings(_Strict):
    r: int = Field(16, ge=1, description="Rank of the low-rank update.")
    alpha: int = Field(32, ge=1, description="Scaling numerator; the update is scaled by alpha / r.")
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))


class SftConfig(_Strict):
    # -- model ---------------------------------------------------------------------------------
    model: str = Field(
        "packaged:smollm2-135m-instruct",
        description="Base model reference (packaged:<name>, folder, s3:// / gs:// folder or hub id).",
    )
    model_cache_dir: str = Field("./.cache/medreason_dist", description="Where prepared/downloaded models live.")
    method: Literal["full", "lora"] = "full"
    lora: LoraSettings = Field(default_factory=LoraSettings)
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = Field(
        "auto", description="auto: flash_attention_2 on CUDA when flash_attn is installed, else sdpa."
    )
    gradient_checkpointing: bool = False

    # -- data ----------------------------------------------------------------------------------
    max_seq_len: int = Field(2048, ge=16, description="Longest packed sequence; longer examples are rejected.")
    packing: bool = Field(True, description="Pack several examples per sequence (no cross-example attention).")
    pack_window: int = Field(
        4096, ge=1, description="Examples packed together at a time (larger windows pack tighter)."
    )
    micro_batch_size: int = Field(1, ge=1, description="Sequences per forward pass (packed bins or examples).")
    grad_accum: int = Field(8, ge=1, description="Micro batches per optimizer step.")
    shuffle: bool = True

    # -- optimisation --------------------------------------------------------------------------
    lr: float = Field(2e-5, gt=0)
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0)
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0, description="Floor of the cosine decay, as a share of lr.")
    epochs: int = Field(3, ge=1)
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps (overrides epochs).")
    weight_decay: float = Field(0.0, ge=0.0)
    adam_betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = Field(1.0, gt=0, description="Max global grad norm; None disables clipping.")
    seed: int = 0
    bf16: Literal["auto", "on", "off"] = Field(
        "auto", description="bf16 autocast: auto = only on CUDA devices that support bf16."
    )
    param_dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="Dtype of the trained weights (bfloat16 halves memory, e.g. for 8B on one GPU)."
    )

    # -- distribution and fault tolerance ------------------------------------------------------
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(1.0, gt=0)
    storage_path: str | None = Field(
        None, description="Ray Train storage (file://, s3://, gs://); default <out>/_ray_train."
    )
    run_name: str | None = Field(
        None, description="Ray Train run name; default derived from config + data, so a rerun resumes."
    )
    checkpoint_every_steps: int = Field(100, ge=1)
    checkpoints_to_keep: int = Field(2, ge=1)
    max_failures: int = Field(2, ge=0, description="Worker-group restarts from the last checkpoint.")
    log_every_steps: int = Field(1, ge=1)

    # -- export --------------------------------------------------------------------------------
    merge_lora_on_export: bool = Field(True, description="Fold LoRA into the base weights (vLLM loads it plainly).")
    export_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"

    # -- tests only ----------------------------------------------------------------------------
    fail_at_step: int | None = Field(
        None, ge=1, description="TESTS ONLY: raise once at this step on a fresh (not resumed) attempt."
    )

    @model_validator(mode="after")
    def _consistent(self) -> "SftConfig":
        if self.fail_at_step is not None and self.max_steps is not None and self.fail_at_step > self.max_steps:
            raise ValueError("fail_at_step must not exceed max_steps")
        return self
