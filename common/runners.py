"""Where a round of independent tasks runs: as Ray tasks (the default) or one after another in this process.

The jobs' task bodies are plain functions; a runner only decides where they execute. The in-process
runner exists so that unit tests and small local runs need no Ray (datatrove's local executor plays
the same part); the jobs, the DAGs and the integration tests run on Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from common.config import ConfigError, one_of

RUNNERS = ("ray", "local")
# A Ray worker runs task after task. With glibc's sliding mmap threshold (large frees raise it, so later
# large arrays come from the heap and fragment it) and Arrow's mimalloc pool (which keeps freed pages), a
# worker kept what earlier tasks freed: token_shards' peak RSS per worker grew with its task count (822,
# 1,060, 1,212 MB at 0.25, 1, 2 GB in bench/scaling.py; one process over 8 shards: retained RSS 172 -> 361 MB).
# A fixed threshold and Arrow on the system allocator return it: retained RSS flat at 97 MB.
WORKER_MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20), "ARROW_DEFAULT_MEMORY_POOL": "system"}


@dataclass(kw_only=True)
class RunnerSettings:
    """The key every job made of task rounds shares."""

    runner: str = one_of("ray", RUNNERS)
    """Where the job's tasks run: "ray" (one Ray task per core, on the cluster at RAY_ADDRESS or a
    private local one) or "local" (one after another in this process, no Ray: for tests and small inputs).
    The output is the same bytes either way."""

    def __post_init__(self) -> None:
        if self.runner not in RUNNERS:
            raise ConfigError(f"runner must be one of {', '.join(RUNNERS)}, got {self.runner!r}")


class Runner(Protocol):
    def map_unordered(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        """`fn(*call)` for every call; yields (index of the call, its result) as each one finishes."""
        ...


class RayRunner:
    """One Ray task (1 CPU) per call, on the cluster `common.ray_runtime.init_ray` connects to."""

    def __init__(self, ray: Any = None):
        if ray is None:
            from common.ray_runtime import init_ray

            ray = init_ray()
        self.ray = ray

    def map_unordered(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        # Ray merges these into the job's own env_vars (a task's runtime_env extends its job's).
        remote = self.ray.remote(num_cpus=1, runtime_env={"env_vars": WORKER_MEMORY_ENV})(fn)
        pending = {remote.remote(*call): index for index, call in enumerate(calls)}
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            for ref in done:
                index = pending.pop(ref)
                yield index, self.ray.get(ref)


class LocalRunner:
    """Every call in this process, in order."""

    def map_unordered(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        for index, call in enumerate(calls):
            yield index, fn(*call)


def make_runner(name: str) -> Runner:
    """The runner a job's `runner` key names."""
    if name == "ray":
        return RayRunner()
    if name == "local":
        return LocalRunner()
    raise ConfigError(f"runner must be one of {', '.join(RUNNERS)}, got {name!r}")
