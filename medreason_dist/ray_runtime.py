"""Start or join Ray from the config (the only place that calls ``ray.init``)."""

from __future__ import annotations

import logging

from medreason_dist.config import RayConfig

log = logging.getLogger(__name__)


def ensure_ray(cfg: RayConfig) -> None:
    import ray

    if ray.is_initialized():
        return
    if cfg.address:
        ray.init(address=cfg.address, log_to_driver=True)
    else:
        # Local: bind to loopback; the dashboard is not needed for batch jobs.
        # address="local" always starts a private cluster, never a stale one found on disk.
        ray.init(address="local", num_cpus=cfg.num_cpus, include_dashboard=False, log_to_driver=True)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = True
    log.info("ray ready: %s", ray.cluster_resources())
