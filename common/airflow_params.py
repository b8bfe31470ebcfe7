"""Airflow Params (the trigger form) from a job's typed config, and back to that job's overrides."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from common.config import json_schema

# Fields that chain one task's output to the next task's input: derived from the DAG's `work_dir`.
CHAINED_FIELDS = ("output_dir", "corpus_dir", "tokenizer_dir", "tokens_dir", "init_checkpoint", "checkpoint")


def params_for(config_cls: type, *, prefix: str = "", exclude: Iterable[str] = ()) -> dict[str, Any]:
    """One typed Param per config field (default, JSON-schema type, the field's docstring)."""
    from airflow.sdk import Param

    skipped = set(exclude)
    return {
        f"{prefix}{name}": Param(spec["default"], type=spec["type"], description=spec["description"])
        for name, spec in json_schema(config_cls).items()
        if name not in skipped
    }


def overrides_from(params: Mapping[str, Any], config_cls: type, *, prefix: str = "", exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The values of one job's fields out of the DAG run's params."""
    skipped = set(exclude)
    return {
        name: params[f"{prefix}{name}"]
        for name in json_schema(config_cls)
        if name not in skipped and f"{prefix}{name}" in params
    }
