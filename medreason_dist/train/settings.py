"""Typed settings for supervised fine-tuning.

``SftConfig`` is the ``sft`` config section: every knob that changes the result lives there
and nowhere else. ``RecipeConfig`` is what one run of the recipe (``train/recipe.py``) needs:
the ``SftConfig`` plus where the model, the data and the outputs are, the storage options and
how the workers are launched. The Ray Train driver builds it and sends ``model_dump()``; each
worker validates it back, so a wrong key fails with the key's name on both sides.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medreason_dist.storage import StorageOptions, check_uri

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


# --------------------------------------------------------------------------------------------
# The recipe's config: SftConfig + the per-run values


class RecipeConfigError(ValueError):
    """An invalid recipe config; the message names every offending key."""


class WorldConfig(_Strict):
    launcher: Literal["local", "ray_train"] = Field(
        "local", description="local: one process, no Ray; ray_train: a Ray Train worker (rank/size from Ray)."
    )
    num_workers: int = Field(1, ge=1, description="Expected world size; checked against the launcher's.")

    @model_validator(mode="after")
    def _single_local(self) -> "WorldConfig":
        if self.launcher == "local" and self.num_workers != 1:
            raise ValueError("world.num_workers must be 1 with world.launcher 'local'")
        return self


class ModelSource(_Strict):
    path: str | None = Field(None, description="Model folder or hub id; default: resolve sft.model here.")
    random_init: dict[str, Any] | None = Field(
        None, description="transformers config kwargs (AutoConfig.for_model) of a randomly initialised model."
    )
    tokenizer_path: str | None = Field(None, description="Tokenizer folder; default: the model folder.")
    pad_id: int | None = Field(None, ge=0, description="Padding token id; default: the tokenizer's pad/eos id.")

    @model_validator(mode="after")
    def _one_source(self) -> "ModelSource":
        if self.path is not None and self.random_init is not None:
            raise ValueError("give model.path or model.random_init, not both")
        if self.random_init is not None and self.tokenizer_path is None and self.pad_id is None:
            raise ValueError("model.random_init without model.tokenizer_path needs model.pad_id")
        return self


class PackedSequence(_Strict):
    """One training sequence: examples back to back, positions restarting at each example."""

    input_ids: list[int] = Field(min_length=1)
    labels: list[int]
    position_ids: list[int]
    n_examples: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _same_length(self) -> "PackedSequence":
        if not len(self.input_ids) == len(self.labels) == len(self.position_ids):
            raise ValueError("input_ids, labels and position_ids must have the same length")
        return self


class InlineData(_Strict):
    kind: Literal["inline"] = "inline"
    sequences: list[PackedSequence] = Field(min_length=1, description="Ready sequences (tests, benchmarks).")


class DatasetData(_Strict):
    kind: Literal["dataset"] = "dataset"
    uri: str = Field(description="Committed SFT dataset; tokenized and packed in this process.")

    @field_validator("uri")
    @classmethod
    def _safe_uri(cls, value: str) -> str:
        return check_uri(value)


class RayShardData(_Strict):
    kind: Literal["ray_shard"] = "ray_shard"
    sequences_per_worker: int = Field(ge=1, description="Rows of each worker's equal shard (the driver counts).")


DataSource = Annotated[Union[InlineData, DatasetData, RayShardData], Field(discriminator="kind")]


class OutputConfig(_Strict):
    uri: str | None = Field(None, description="Rank 0 exports model/ and train_history.json here.")
    checkpoint_uri: str | None = Field(
        None, description="local launcher: step_NNNNNNNN/ checkpoints go here (ray_train: Ray Train's storage)."
    )
    resume_from: str | None = Field(None, description="local launcher: a checkpoint folder to resume from.")

    @field_validator("uri", "checkpoint_uri", "resume_from")
    @classmethod
    def _safe_uri(cls, value: str | None) -> str | None:
        return None if value is None else check_uri(value)


class RecipeConfig(_Strict):
    sft: SftConfig = Field(default_factory=SftConfig)
    world: WorldConfig = Field(default_factory=WorldConfig)
    model: ModelSource = Field(default_factory=ModelSource)
    data: DataSource
    output: OutputConfig = Field(default_factory=OutputConfig)
    storage_options: StorageOptions | None = None

    @model_validator(mode="after")
    def _launcher_fits(self) -> "RecipeConfig":
        on_ray = self.world.launcher == "ray_train"
        if on_ray != (self.data.kind == "ray_shard"):
            raise ValueError("data.kind 'ray_shard' goes with world.launcher 'ray_train' and only with it")
        if on_ray and (self.output.checkpoint_uri or self.output.resume_from):
            raise ValueError("output.checkpoint_uri/resume_from are for the local launcher; "
                             "Ray Train keeps its checkpoints in its RunConfig storage")
        return self

    @classmethod
    def parse(cls, data: Any) -> "RecipeConfig":
        """``model_validate`` that raises :class:`RecipeConfigError` naming each bad key."""
        if isinstance(data, cls):
            return data
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise RecipeConfigError(describe_errors(err)) from None


_UNION_TAGS = {"inline", "dataset", "ray_shard"}


def describe_errors(err: ValidationError) -> str:
    """One line per error, each naming its dotted key (``sft.lr``, ``data.uri``)."""
    lines = []
    for e in err.errors():
        loc = [str(p) for i, p in enumerate(e["loc"]) if not (i > 0 and e["loc"][i - 1] == "data" and p in _UNION_TAGS)]
        key = ".".join(loc)
        if not key:
            lines.append(e["msg"].removeprefix("Value error, "))
        elif e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}'")
        elif e["type"] == "missing":
            lines.append(f"missing required key '{key}'")
        else:
            lines.append(f"key '{key}': {e['msg']}")
    return "invalid recipe config\n  " + "\n  ".join(lines)
