"""Deployment settings of the DAGs, read when a DAG file is parsed: an environment variable, else the
settings file (TOML: $LLADA_SETTINGS, default `airflow_settings.toml` in the project root), else the default.

    corpus_build_schedule   LLADA_CORPUS_BUILD_SCHEDULE   cron expression or preset ("@daily", "0 2 * * 6");
                                                          empty: manual runs only (the default)
    chain_on_assets         LLADA_CHAIN_ON_ASSETS         true: pretrain runs when a corpus build's token
                                                          shards are written, sft when pretraining ends
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from common.paths import PROJECT_ROOT

DEFAULTS: dict[str, Any] = {"corpus_build_schedule": "", "chain_on_assets": False}


def settings_file() -> Path:
    return Path(os.environ.get("LLADA_SETTINGS") or PROJECT_ROOT / "airflow_settings.toml")


def load_settings() -> dict[str, Any]:
    path = settings_file()
    from_file = tomllib.loads(path.read_text()) if path.is_file() else {}
    unknown = set(from_file) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    values = {**DEFAULTS, **from_file}
    for key in DEFAULTS:
        env = os.environ.get(f"LLADA_{key.upper()}")
        if env is not None:
            values[key] = env.strip().lower() in ("1", "true", "yes", "on") if isinstance(DEFAULTS[key], bool) else env.strip()
    return values


def corpus_build_schedule() -> str | None:
    return load_settings()["corpus_build_schedule"] or None


def chain_on_assets() -> bool:
    return bool(load_settings()["chain_on_assets"])
