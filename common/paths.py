"""Where local state lives: one project-local folder (`.state/`, or $LLADA_STATE_DIR)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """Ray, MLflow and Airflow keep their local state under this folder (created on first use)."""
    path = Path(os.environ.get("LLADA_STATE_DIR") or PROJECT_ROOT / ".state").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def require_paths(paths: list[str | Path], what: str = "input") -> list[Path]:
    """Fail before any work when an input is missing, naming it."""
    from common.config import ConfigError

    resolved = [Path(p).expanduser() for p in paths]
    if not resolved:
        raise ConfigError(f"no {what} path given")
    for path in resolved:
        if not path.exists():
            raise ConfigError(f"{what} path does not exist: {path}")
        if path.is_file() and not os.access(path, os.R_OK):
            raise ConfigError(f"{what} path is not readable: {path}")
    return resolved
