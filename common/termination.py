"""SIGTERM ends a job like an error, not like a kill: Ray's `stop_job`, a preemption or `kill` send it,
and the job's `with` blocks must still unwind, so that its MLflow run ends KILLED instead of staying
RUNNING forever (common/tracking.py), and temporary files are removed."""

from __future__ import annotations

import signal


class Terminated(SystemExit):
    """Raised in the main thread when the process receives SIGTERM; exits with status 143 (128 + 15)."""

    def __init__(self) -> None:
        super().__init__(143)


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def raise_on_sigterm() -> None:
    """From now on SIGTERM raises Terminated in the main thread."""
    signal.signal(signal.SIGTERM, _raise_terminated)
