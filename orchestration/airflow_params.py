"""Airflow Params (the trigger form) from a job's typed config, and back to that job's overrides."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from common.config import json_schema
from formats.layout import CHAINED_FIELDS, DEFAULT_WORK_DIR, job_folders, read_by, written_by

__all__ = ["CHAINED_FIELDS", "job_overrides", "overrides_from", "params_for", "work_dir_param"]


def params_for(config_cls: type, *, prefix: str = "", exclude: Iterable[str] = ()) -> dict[str, Any]:
    """One typed Param per config field (default, JSON-schema type, the field's docstring; a dropdown
    for a field of fixed values)."""
    from airflow.sdk import Param

    skipped = set(exclude)
    return {
        f"{prefix}{name}": Param(spec["default"], **{k: v for k, v in spec.items() if k != "default"})
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


def work_dir_param(jobs: list[str]):
    """The `work_dir` Param of a DAG running `jobs`: its description names the folders they read and write."""
    from airflow.sdk import Param

    reads, writes = read_by(jobs), written_by(jobs)
    text = f"Writes {', '.join(f'{name}/' for name in writes)}"
    if reads:
        text = f"Reads {', '.join(f'{name}/' for name in reads)}; w" + text[1:]
    return Param(DEFAULT_WORK_DIR, type="string", description=f"{text} under this folder (relative to the project).")


def job_overrides(job: str, config_cls: type, params: Mapping[str, Any], *, prefix: str = "") -> dict[str, Any]:
    """The command-line overrides of one DAG task: its fields from the form, its folders from `work_dir`."""
    return {
        **overrides_from(params, config_cls, prefix=prefix, exclude=CHAINED_FIELDS),
        **job_folders(job, params["work_dir"]),
    }
