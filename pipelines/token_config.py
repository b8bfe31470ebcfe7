"""Typed config of the token shards job (no heavy imports: the Airflow DAG reads it at parse time)."""

from __future__ import annotations

from dataclasses import dataclass

from common.config import ConfigError
from common.runners import RunnerSettings
from formats.layout import default_folder


@dataclass(kw_only=True)
class TokenShardsConfig(RunnerSettings):
    """Cleaned documents -> fixed-length token sequences in Arrow IPC files, for pretraining."""

    corpus_dir: str = default_folder("pipelines.token_shards", "corpus_dir")
    """A corpus folder (formats/corpus.py), by default the fuzzy dedup's output; every documents/shard-*.parquet becomes one token file."""

    tokenizer_dir: str = default_folder("pipelines.token_shards", "tokenizer_dir")
    """The tokenizer folder: the tokenizer job's output (tokenizer.model and special_tokens.json), or a Hugging
    Face tokenizer folder (tokenizer.json), e.g. LLaDA's."""

    output_dir: str = default_folder("pipelines.token_shards", "output_dir")
    """Where tokens-NNNNN.arrow (one per document shard, same order), manifest.json, validation/ (the
    held-out documents' files and manifest), config.json and stats.json (counts and timings) go."""

    seq_len: int = 256
    """Tokens per training sequence. Documents are concatenated with EOS after each and cut into rows of
    this length; the last, shorter row of each document shard is dropped (counted as tokens_dropped)."""

    batch_size: int = 1024
    """Documents encoded per batch inside a shard's task; bounds the task's memory besides its output."""

    validation_fraction: float = 0.01
    """Share of documents held out into output_dir/validation/ (same format, its own manifest.json), chosen
    by xxhash64 of the document id (formats/token_shards.py `held_out`): the same documents on every rerun
    and when the corpus grows. 0 turns the split off."""

    mlflow_experiment: str = "corpus_build"
    """MLflow experiment that receives the run's counts and manifest."""

    log_to_mlflow: bool = True
    """Log the counts as metrics and manifest.json / stats.json as artifacts of an MLflow run."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("corpus_dir", "tokenizer_dir", "output_dir", "mlflow_experiment"):
            if not getattr(self, name).strip():
                raise ConfigError(f"{name} may not be empty")
        if self.seq_len < 2:
            raise ConfigError(f"seq_len must be >= 2, got {self.seq_len}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
