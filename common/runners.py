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
        remote = self.ray.remote(num_cpus=1)(fn)
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
