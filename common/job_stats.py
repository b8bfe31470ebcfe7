"""The one name and layout of what a job reports about its own run: `stats.json` in its output folder
(counts, timings, peak memory; written atomically), and MLflow metric keys made from its nested keys
joined by dots (`seconds.read`, `dropped.language.other`, `peak_rss_mb.minhash`), the same in every job."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.files import write_json

STATS = "stats.json"


def write_stats(output_dir: str | Path, stats: Mapping[str, Any]) -> Path:
    path = Path(output_dir) / STATS
    write_json(path, dict(stats))
    return path


def flat_metrics(values: Mapping[str, Any], *prefix: str) -> dict[str, float]:
    """Every number in `values`, nested mappings included, keyed by its path joined by dots."""
    metrics: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            metrics |= flat_metrics(value, *prefix, str(key))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[".".join((*prefix, str(key)))] = value
    return metrics
