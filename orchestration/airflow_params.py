"""Airflow Params (the trigger form) from a job's typed config, and back to that job's overrides."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from common.config import json_schema
from formats.layout import CHAINED_FIELDS, CORPUS_FIELD, CORPUS_FOLDERS, DEFAULT_WORK_DIR, job_folders, read_by, written_by

__all__ = ["CHAINED_FIELDS", "corpus_params", "job_overrides", "overrides_from", "params_for", "work_dir_param"]


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

    def listed(names: list[str]) -> str:
        return ", ".join(f"corpora/<corpus_name>/<version>/{name}/" if name in CORPUS_FOLDERS else f"{name}/" for name in names)

    reads, writes = read_by(jobs), written_by(jobs)
    text = f"Writes {listed(writes)}"
    if reads:
        text = f"Reads {listed(reads)}; w" + text[1:]
    return Param(DEFAULT_WORK_DIR, type="string", description=f"{text} under this folder (relative to the project).")


def corpus_params(*, building: bool) -> dict[str, Any]:
    """The corpus_name and corpus_version Params: the version a corpus build writes, or the one a run reads."""
    from airflow.sdk import Param

    from formats.corpus_versions import DEFAULT_NAME, NAME_PATTERN

    version = ("The version this build writes, a new folder sealed when the build succeeds; empty: the run's logical "
               "date (20261206T020000Z)." if building else
               "The complete version to read: a version folder's name, or latest (the newest successful build).")
    return {
        "corpus_name": Param(DEFAULT_NAME, type="string", pattern=NAME_PATTERN.pattern,
                             description="The corpus: its versions are under work_dir/corpora/<corpus_name>/."),
        "corpus_version": Param("" if building else "latest", type="string", pattern=f"^({NAME_PATTERN.pattern[1:-1]})?$",
                                description=version),
    }


def job_overrides(job: str, config_cls: type, params: Mapping[str, Any], *, prefix: str = "") -> dict[str, Any]:
    """The command-line overrides of one DAG task: its fields from the form, its folders from `work_dir`
    (its corpus folders from the corpus version the task resolved, `corpus_dir`), and the corpus version
    it reads (`corpus`) where its config records one."""
    overrides = {
        **overrides_from(params, config_cls, prefix=prefix, exclude=CHAINED_FIELDS),
        **job_folders(job, params["work_dir"], params.get("corpus_dir")),
    }
    if params.get(CORPUS_FIELD) and CORPUS_FIELD in json_schema(config_cls):
        overrides[CORPUS_FIELD] = params[CORPUS_FIELD]
    return overrides
