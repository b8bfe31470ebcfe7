"""A stand-in job for the operator's tests: `python -m tests.orchestration.slow_job seconds=S fail=B`
prints a numbered line every 0.2 s for `seconds`, then its result line, or fails naming itself. With
`linger=L`, a SIGTERM ends it only L seconds later, as a training job that saves a checkpoint first."""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass

from common.cli import run_job


@dataclass
class SlowJobConfig:
    seconds: float = 5.0
    """How long the job runs."""
    fail: bool = False
    """Raise at the end instead of returning a result."""
    linger: float = 0.0
    """Seconds it goes on after a SIGTERM (0: the CLI's handler ends it at once)."""


def main(config: SlowJobConfig) -> dict:
    stopping: list[float] = []
    if config.linger:
        signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(time.monotonic()))
    ticks = max(1, round(config.seconds / 0.2))
    for tick in range(1, ticks + 1):
        if stopping and time.monotonic() - stopping[0] > config.linger:
            print(f"stopped after tick {tick - 1}", flush=True)
            sys.exit(143)
        print(f"tick {tick}/{ticks}" + (" (stopping)" if stopping else ""), flush=True)
        time.sleep(0.2)
    if config.fail:
        raise RuntimeError(f"slow_job was told to fail after {ticks} ticks")
    return {"ticks": ticks}


if __name__ == "__main__":
    sys.exit(run_job(SlowJobConfig, main, description=__doc__))
