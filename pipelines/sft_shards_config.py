"""Typed config of the SFT pairs job (no heavy imports: the Airflow DAG reads it at parse time)."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import ConfigError, one_of
from common.runners import RunnerSettings
from formats.layout import default_folder
from tokenizer.conversations import TURN_CHOICES


@dataclass(kw_only=True)
class SFTShardsConfig(RunnerSettings):
    """Conversations -> (prompt, response) pairs tokenized once, padded, in token files the SFT loader streams."""

    conversations: list[str] = field(default_factory=lambda: ["data/demo/conversations.jsonl"])
    """JSON-lines (.jsonl) or Parquet (.parquet) files of records with `messages` ([{"role", "content"}, ...])
    or `prompt` and `response`; each file is one task, and its name the `source` of its pairs (a mixture
    can weight files)."""

    tokenizer_dir: str = default_folder("pipelines.sft_shards", "tokenizer_dir")
    """The tokenizer folder; SFT must train with the same one (its sha256 is in the manifest)."""

    output_dir: str = default_folder("pipelines.sft_shards", "output_dir")
    """Where tokens-NNNNN-PPPPP.arrow (pairs_per_file pairs each), manifest.json, config.json and stats.json go."""

    max_seq_len: int = 256
    """Tokens per pair, the row length: longer pairs are cut from the left of the prompt (counted as
    truncated); a response that alone fills it is dropped (too_long). LLaDA-8B: 4096."""

    turns: str = one_of("all", TURN_CHOICES)
    """Assistant turns of a dialogue that become pairs: all (n turns -> n pairs), or sampled (one per
    dialogue, drawn from `seed`: what LLaDA's paper, appendix B.1, describes)."""

    seed: int = 0
    """Seed of the turn drawn per dialogue when turns=sampled."""

    pairs_per_file: int = 16384
    """Pairs per token file: bounds a task's memory (pairs_per_file x max_seq_len x 4 bytes: 256 MB at 4096)."""

    mlflow_experiment: str = "sft"
    """MLflow experiment that receives the job's counts."""

    log_to_mlflow: bool = True
    """Log the counts and the manifest to MLflow."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.conversations:
            raise ConfigError("conversations: give at least one JSON-lines file")
        if self.max_seq_len < 2:
            raise ConfigError(f"max_seq_len must be >= 2, got {self.max_seq_len}")
        if self.turns not in TURN_CHOICES:
            raise ConfigError(f"turns must be one of {', '.join(TURN_CHOICES)}, got {self.turns!r}")
        if self.pairs_per_file < 1:
            raise ConfigError(f"pairs_per_file must be >= 1, got {self.pairs_per_file}")
