"""The corpus version a DAG task writes or reads (formats/corpus_versions.py), and the corpus_build DAG's
two bookend tasks: claim the version before its jobs run, seal it and move `latest` after they succeed.

The version a build writes is its `corpus_version` Param, else the DAG run's logical date (a manual run
without one: the time it was triggered), so every task of one run, and every retry, names the same folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from formats.corpus_versions import LATEST, require_unsealed, resolve, seal, version_dir, version_from_date
from formats.layout import CORPUS_FOLDERS


def build_version(params: dict[str, Any], dag_run) -> tuple[str, Path]:
    """(the version a corpus_build run writes, its folder)."""
    version = params.get("corpus_version") or version_from_date(dag_run.logical_date or dag_run.run_after)
    return version, version_dir(params["work_dir"], params["corpus_name"], version)


def corpus_place(params: dict[str, Any], dag_run, *, writing: bool) -> dict[str, str]:
    """{"corpus_dir": the version's folder, "corpus": "name/version"} of the version a task writes (this
    run's) or reads (a complete one; latest resolved now, so the run records the version itself)."""
    name = params["corpus_name"]
    if writing:
        version, folder = build_version(params, dag_run)
    else:
        version, folder = resolve(params["work_dir"], name, params.get("corpus_version") or LATEST)
    return {"corpus_dir": str(folder), "corpus": f"{name}/{version}"}


def claim_version(params: dict[str, Any], dag_run) -> str:
    """Before a build's jobs: its version folder, refused if a build of that version already succeeded
    (a retry of an unfinished build writes on; the jobs redo only what is missing)."""
    folder = require_unsealed(build_version(params, dag_run)[1])
    folder.mkdir(parents=True, exist_ok=True)
    print(f"corpus {params['corpus_name']}: building version {folder.name} in {folder}", flush=True)
    return str(folder)


def publish_version(params: dict[str, Any], dag_run, *, results: dict[Any, dict] | None = None,
                    outlet_events=None) -> dict[str, Any]:
    """After every job succeeded: seal the version (sealed.json) and point `latest` at it; then record the
    assets' events, each from the result of the job that wrote it (`results`: asset -> that job's result).
    Only now: a pretraining started by the tokens event must find the version complete."""
    from orchestration.assets import event_extra

    name, (version, folder) = params["corpus_name"], build_version(params, dag_run)
    record = seal(folder, list(CORPUS_FOLDERS), name=name, version=version, dag_run_id=dag_run.run_id)
    print(f"corpus {name}: version {version} sealed; {folder.parent / LATEST} -> {version}", flush=True)
    for asset, result in (results or {}).items():
        outlet_events[asset].extra = event_extra(result or {}, {**params, "corpus": f"{name}/{version}"})
    return record
