"""What every job that writes an output folder does around its own work, written once: the corpus build,
the fuzzy dedup, the tokenizer, the token shards and the SFT pairs all run through `run_folder_job`.

    output_dir/config.json    the config, keys sorted (common.config.save_config)
    output_dir/stats.json     the job's counts and timings; `seconds.total` is added here
    output_dir/manifest.json  what the folder holds, in its format's layout (formats/); written last: it marks
                              the folder complete (the tokenizer's folder has none: tokenizer.model is its content)

In this order: the manifest of an earlier run is removed, so a rerun killed midway is not taken for a
finished folder; inside an MLflow run (when the config logs to one) the job builds its folder; then
config.json, stats.json and the manifest are written, each atomically (common/files.py); the job's work
folder is removed; the stats reach the run as metrics; the end-of-job table is printed. A failure before
the manifest leaves none, and ends the run FAILED (KILLED on SIGTERM: common/tracking.py).

One name for each number: its path in stats.json joined by dots (`seconds.total`, `dropped.duplicate`,
`stages.normalize.documents_kept`) is its MLflow metric key and, for a top-level one, the label of its
row in the end-of-job table.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.config import save_config, to_dict
from common.files import write_json
from common.tracking import mlflow_run, run_label

CONFIG = "config.json"
STATS = "stats.json"
MANIFEST = "manifest.json"
"""The file that marks a job's folder complete; the formats (formats/corpus.py, formats/token_shards.py) say what it holds."""


@dataclass(frozen=True)
class Built:
    """What a job's build hands back to the harness."""

    stats: dict[str, Any]
    """stats.json: counts, timings under `seconds` (a mapping: the harness adds `total`), peak memory."""
    write_manifest: Callable[[], object] | None = None
    """Writes the folder's manifest.json, after config.json and stats.json; it may raise to refuse the
    folder (a build that kept nothing), which then stays unmarked. None: the folder has no manifest."""


def run_folder_job(config: Any, job: str, build: Callable[[], Built], *, settings: tuple[object, ...] = (),
                   artifacts: tuple[str, ...] = (), work: Path | None = None,
                   table: Callable[[dict], list[str]] | None = None, not_metrics: tuple[str, ...] = ()) -> dict:
    """Run `build()` between the folder's opening and its closing files; returns the stats with
    output_dir and mlflow_run_id (None without a run), the job's result.

    `config` needs output_dir, log_to_mlflow and mlflow_experiment; its run is named by `job` and its key
    `settings` (common.tracking.run_label), with the config as params. `artifacts`: files of the folder
    logged to the run besides stats.json and the manifest. `work`: the job's resumable work files,
    removed after the manifest, so a kill at any moment before leaves a rerun all it needs. `table`: the
    job's own lines under the common rows of the end-of-job table. `not_metrics`: stats keys whose
    nested names come from the data (sources: many, and not valid metric names), left out of MLflow.
    """
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / MANIFEST).unlink(missing_ok=True)
    started = time.perf_counter()
    tracking = contextlib.nullcontext()
    if config.log_to_mlflow:
        tracking = mlflow_run(config.mlflow_experiment, run_label(job, *settings), to_dict(config))
    with tracking as run:
        built = build()
        stats = built.stats
        stats.setdefault("seconds", {})["total"] = round(time.perf_counter() - started, 3)
        save_config(config, output_dir / CONFIG)
        write_json(output_dir / STATS, stats)
        if built.write_manifest is not None:
            built.write_manifest()
        if work is not None:
            shutil.rmtree(work)
        if run is not None:
            import mlflow

            mlflow.log_metrics(flat_metrics({key: value for key, value in stats.items() if key not in not_metrics}))
            for name in (STATS, *([MANIFEST] if built.write_manifest else []), *artifacts):
                mlflow.log_artifact(str(output_dir / name))
    for line in summary_table(job, output_dir, stats, table(stats) if table else []):
        print(line, flush=True)
    return {**stats, "output_dir": str(output_dir), "mlflow_run_id": run.info.run_id if run is not None else None}


def flat_metrics(values: Mapping[str, Any], *prefix: str) -> dict[str, float]:
    """Every number in `values`, nested mappings included, keyed by its path joined by dots."""
    metrics: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            metrics |= flat_metrics(value, *prefix, str(key))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[".".join((*prefix, str(key)))] = value
    return metrics


def summary_table(job: str, output_dir: Path, stats: dict, lines: list[str]) -> list[str]:
    """The end-of-job table, the same for every job: a row per top-level number (or text) of the stats,
    under its stats.json name; the job's own `lines`; the timings; the peak memory per worker."""
    rows = {key: value for key, value in stats.items() if isinstance(value, (int, float, str)) and not isinstance(value, bool)}
    width = max(map(len, rows), default=0)
    table = [f"[{job}] done in {stats['seconds']['total']:.1f} s -> {output_dir}"]
    table += [f"  {key:<{width}}  {_cell(value)}" for key, value in rows.items()]
    table += [f"  {line}" for line in lines]
    table.append("  seconds: " + ", ".join(f"{name} {value:.1f}" for name, value in stats["seconds"].items()))
    if stats.get("peak_rss_mb"):
        table.append("  peak RSS per worker: " + ", ".join(f"{name} {mb:,.0f} MB" for name, mb in stats["peak_rss_mb"].items()))
    return table


def _cell(value: int | float | str) -> str:
    """A number right-aligned with thousands separators (floats to one decimal); text as it is."""
    if isinstance(value, str):
        return value
    return f"{value:>14,.1f}" if isinstance(value, float) else f"{value:>14,}"
