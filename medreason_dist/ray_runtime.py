"""Start or join Ray from the config (the only place that calls ``ray.init``).

Quiet by default: the engines' chatter is cut at its source where a setting exists for it.

* vLLM (in Ray's workers) reads ``VLLM_LOGGING_LEVEL`` (default INFO; the INFO lines are the
  "Initializing a V1 LLM engine ... with config: ..." dumps, model-loading and cache lines) and
  ``VLLM_DISABLE_LOG_LOGO``; both travel to the workers via the job's ``runtime_env``. A value
  already in the driver's environment wins.
* Ray Data: ``DataContext.enable_progress_bars`` (the tqdm/rich bars and, when stdout is not a
  TTY, the periodic progress log lines), ``print_on_execution_start`` (the "Starting execution"
  and execution-plan lines) and the level of the ``ray.data`` console handler (its INFO lines
  stay in Ray's ``ray-data.log``).
* Ray core: ``ray.init(logging_level=...)`` for the driver's ``ray`` logger ("Started a local
  Ray instance", ...).

Worker output still reaches the driver (``log_to_driver=True``): under
:class:`medreason_dist.console.RunConsole` it lands in the run's log file, which is where an
engine's traceback is wanted when a stage fails.
"""

from __future__ import annotations

import logging
import os

from medreason_dist.config import RayConfig

log = logging.getLogger(__name__)

# Environment for Ray's workers when quiet. Verified against vllm 0.29 ``vllm/envs.py``.
QUIET_WORKER_ENV: dict[str, str] = {
    "VLLM_LOGGING_LEVEL": "WARNING",
    "VLLM_DISABLE_LOG_LOGO": "1",
}


def worker_env(verbose: bool = False) -> dict[str, str]:
    """Environment variables to pass to Ray's workers.

    A name already set in the driver's environment is left out: local workers inherit the
    driver's value, and under ``ray job submit --runtime-env`` the job's value is set there too
    (repeating a job env var in ``ray.init(runtime_env=...)`` would be a merge conflict).
    """
    if verbose:
        return {}
    return {k: v for k, v in QUIET_WORKER_ENV.items() if k not in os.environ}


def configure_ray_data(verbose: bool = False) -> None:
    """Ray Data settings of this driver: progress bars and console log lines only when verbose."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = verbose
    ctx.print_on_execution_start = verbose
    if not verbose:
        try:
            # Disabling the bars makes Ray Data warn once that they are disabled: that is the point.
            from ray.util.debug import log_once

            log_once("ray_data_progress_manager_disabled")
        except Exception:  # pragma: no cover - internal helper moved
            pass
    level = logging.INFO if verbose else logging.WARNING
    for handler in logging.getLogger("ray.data").handlers:
        # The console handler (a StreamHandler); ray-data.log's handler keeps everything.
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(level)


_started_here = False  # True when ensure_ray started the Ray this process uses


def shutdown_if_started() -> None:
    """Stop the Ray that :func:`ensure_ray` started (never a cluster it only joined)."""
    global _started_here
    import ray

    if _started_here and ray.is_initialized():
        ray.shutdown()
    _started_here = False


def ensure_ray(cfg: RayConfig, *, verbose: bool | None = None) -> None:
    """Start or join Ray; ``verbose=None`` follows the run console (quiet without one)."""
    global _started_here
    import ray

    if verbose is None:
        from medreason_dist import console

        active = console.current()
        verbose = bool(active and active.verbose)

    if ray.is_initialized():
        configure_ray_data(verbose)
        return
    common = {
        "log_to_driver": True,
        "logging_level": logging.INFO if verbose else logging.WARNING,
    }
    env = worker_env(verbose)
    if env:
        common["runtime_env"] = {"env_vars": env}
    if cfg.address:
        ray.init(address=cfg.address, **common)
    else:
        # Local: bind to loopback; the dashboard is not needed for batch jobs.
        # address="local" always starts a private cluster, never a stale one found on disk.
        ray.init(address="local", num_cpus=cfg.num_cpus, include_dashboard=False, **common)
        _started_here = True
    configure_ray_data(verbose)
    log.info("ray ready: %s", ray.cluster_resources())
