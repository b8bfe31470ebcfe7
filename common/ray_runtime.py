"""Connect a job's driver to Ray: the cluster at $RAY_ADDRESS, or a local one started for this process."""

from __future__ import annotations

import os
import signal


def init_ray(*, num_cpus: int | None = None):
    """`ray.init` with project defaults; returns the ray module.

    Inside a submitted Ray job RAY_ADDRESS is set by Ray itself and we join that cluster; run from a
    shell without it, a private local Ray is started (and stopped at interpreter exit).
    """
    import ray

    if ray.is_initialized():
        return ray
    address = os.environ.get("RAY_ADDRESS") or None
    kwargs: dict = {"log_to_driver": True, "configure_logging": False}
    if address is None:
        kwargs["num_cpus"] = num_cpus
        # A private single-machine Ray: no token (Ray 2.60 would otherwise write one under ~/.ray).
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        # The project is importable through its editable install; workers inherit the environment.
    # ray.init replaces the SIGTERM handler with one that exits at once; keep a job's own (common/termination.py).
    handler = signal.getsignal(signal.SIGTERM)
    ray.init(address=address, **kwargs)
    if callable(handler):
        signal.signal(signal.SIGTERM, handler)
    return ray
