"""How a job that writes a corpus folder (formats/corpus.py) ends, the same for the corpus build and the
fuzzy dedup: inside an MLflow run when the config logs to one, build the folder, then write config.json,
stats.json and the manifest (last: it marks the folder complete), remove the work files, log the counts,
print the summary."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.config import ConfigError, save_config, to_dict
from common.job_stats import write_stats
from formats.corpus import write_manifest


def run_corpus_job(
    config: Any,
    run_name: str,
    output_dir: Path,
    build: Callable[[], tuple[list[dict], dict]],
    *,
    work: Path,
    started: float,
    log_to_run: Callable[[dict, Path], None],
    print_summary: Callable[[dict], None],
) -> dict:
    """`build()` -> (the manifest's shard entries, stats), then the folder's closing files.

    `config` needs log_to_mlflow and mlflow_experiment; with log_to_mlflow, everything runs inside an
    MLflow run named `run_name` with the config as params, and `log_to_run(stats, output_dir)` is
    called once the files are written. `work` (the task rounds' markers and files) is removed after the
    manifest, so a kill at any moment before it leaves a rerun everything it needs. stats["seconds"]["total"] counts from `started`
    (a time.perf_counter() reading). Returns the stats with output_dir and mlflow_run_id.
    """
    tracking = contextlib.nullcontext()
    if config.log_to_mlflow:
        from common.tracking import mlflow_run, run_label

        tracking = mlflow_run(config.mlflow_experiment, run_label(run_name, getattr(config, "preset", "")), to_dict(config))
    with tracking as run:
        shards, stats = build()
        stats["seconds"]["total"] = round(time.perf_counter() - started, 3)
        save_config(config, output_dir / "config.json")
        write_stats(output_dir, stats)
        if not sum(shard["documents"] for shard in shards):
            raise ConfigError(nothing_kept(run_name, stats, output_dir))  # no manifest: nothing downstream takes it
        write_manifest(output_dir, shards, to_dict(config))
        shutil.rmtree(work)
        if run is not None:
            log_to_run(stats, output_dir)
    print_summary(stats)
    return {**stats, "output_dir": str(output_dir), "mlflow_run_id": run.info.run_id if run is not None else None}


def nothing_kept(run_name: str, stats: dict, output_dir: Path) -> str:
    """The error of a job that kept no document: what dropped the most, so the fix (a setting, the
    inputs) is found at once instead of at the next stage."""
    dropped = stats.get("dropped") or {}
    culprit = f"; {max(dropped, key=dropped.get)} dropped the most ({max(dropped.values()):,})" if dropped else ""
    return (f"{run_name} kept no document of {stats.get('documents_in', 0):,}{culprit}; see {output_dir / 'stats.json'} "
            "for every stage's counts, and loosen its settings or check the inputs")
