"""Typed configs of the data pipelines (no heavy imports: the Airflow DAG reads these at parse time)."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import ConfigError


@dataclass(kw_only=True)
class CorpusBuildConfig:
    """Raw JSON lines -> cleaned, exactly deduplicated Parquet shards of documents."""

    inputs: list[str] = field(default_factory=lambda: ["data/demo/corpus"])
    """Input files, folders or glob patterns of JSON lines (.jsonl, .jsonl.gz, .jsonl.zst); a folder
    takes every such file below it. Relative paths resolve against the current directory."""

    output_dir: str = "out/corpus"
    """Where documents/shard-NNNNN.parquet, manifest.json, stats.json and config.json are written."""

    min_chars: int = 50
    """Documents shorter than this many characters after normalization are dropped as too_short.
    50 drops one-line stubs (a heading, a "see also", a bare license line) that give a model trained on
    long packed sequences no context, and keeps any real paragraph."""

    text_field: str = "text"
    """The JSON field holding a record's text."""

    id_field: str = "id"
    """The JSON field holding a record's id; where it is absent or not a string the id is
    '<input path>:<line number>'."""

    num_partitions: int = 4
    """Hash partitions of the exact dedup (one Ray task each); a partition holds about 1/n of all
    (hash, order) keys in memory."""

    batch_size: int = 8192
    """Records per Arrow batch while reading and writing; bounds each task's memory."""

    mlflow_experiment: str = "corpus_build"
    """MLflow experiment that receives the run's counts, manifest and stats."""

    log_to_mlflow: bool = True
    """Log counts as metrics and manifest.json / stats.json as artifacts of an MLflow run."""

    def __post_init__(self) -> None:
        if not self.inputs or any(not str(p).strip() for p in self.inputs):
            raise ConfigError(f"inputs must be a non-empty list of paths, got {self.inputs!r}")
        for name in ("output_dir", "text_field", "id_field", "mlflow_experiment"):
            if not getattr(self, name).strip():
                raise ConfigError(f"{name} may not be empty")
        if self.min_chars < 0:
            raise ConfigError(f"min_chars must be >= 0, got {self.min_chars}")
        if self.num_partitions < 1:
            raise ConfigError(f"num_partitions must be >= 1, got {self.num_partitions}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
