"""Typed config of the tokenizer job (no heavy imports: the Airflow DAG reads it at parse time)."""

from __future__ import annotations

from dataclasses import dataclass

from common.config import ConfigError, one_of
from formats.layout import default_folder
from tokenizer.specials import SPECIAL_IDS

MODEL_TYPES = ("bpe", "unigram")


@dataclass(kw_only=True)
class TokenizerConfig:
    """Cleaned corpus -> SentencePiece model with LLaDA's special tokens at fixed ids."""

    corpus_dir: str = default_folder("tokenizer.train", "corpus_dir")
    """A corpus folder (formats/corpus.py), by default the fuzzy dedup's output; its documents/shard-*.parquet (column `text`) are read."""

    output_dir: str = default_folder("tokenizer.train", "output_dir")
    """Where tokenizer.model, special_tokens.json, config.json and stats.json are written."""

    vocab_size: int = 4096
    """Pieces in the vocabulary, counting the 8 special tokens and (with byte_fallback) the 256 bytes."""

    model_type: str = one_of("bpe", MODEL_TYPES)
    """SentencePiece model type: bpe or unigram."""

    max_documents: int = 100_000
    """Train on at most this many documents, drawn uniformly without replacement with `seed` (the same
    documents on every run); 0 takes all. Bounds the job's memory on a huge corpus."""

    input_sentence_size: int = 1_000_000
    """SentencePiece keeps at most this many training pieces (documents are cut into pieces of at most
    max_sentence_length bytes), sampled with `seed`; 0 keeps all."""

    max_sentence_length: int = 4192
    """Longest training piece in bytes (SentencePiece skips longer ones silently, so longer documents
    are cut after a newline, else a space, into pieces of at most this length)."""

    character_coverage: float = 0.9995
    """Share of characters the vocabulary covers; rarer characters are spelled as bytes (byte_fallback)."""

    byte_fallback: bool = True
    """Spell characters outside the vocabulary as UTF-8 byte pieces instead of <unk>, so every text
    round-trips."""

    num_threads: int = 2
    """Threads SentencePiece trains with. Any number learns the same pieces and scores, but the number is
    recorded in tokenizer.model, so its bytes (and sha256) are the same only for the same num_threads."""

    seed: int = 0
    """Seed of the document sample and of SentencePiece's sentence sampling."""

    mlflow_experiment: str = "corpus_build"
    """MLflow experiment that receives the run's counts, report and tokenizer files."""

    log_to_mlflow: bool = True
    """Log the report's counts as metrics and tokenizer.model, special_tokens.json and stats.json as
    artifacts of an MLflow run."""

    def __post_init__(self) -> None:
        for name in ("corpus_dir", "output_dir", "mlflow_experiment"):
            if not getattr(self, name).strip():
                raise ConfigError(f"{name} may not be empty")
        if self.model_type not in MODEL_TYPES:
            raise ConfigError(f"model_type must be one of {', '.join(MODEL_TYPES)}, got {self.model_type!r}")
        smallest = len(SPECIAL_IDS) + (256 if self.byte_fallback else 0) + 1
        if self.vocab_size < smallest:
            raise ConfigError(
                f"vocab_size must be at least {smallest} (8 special tokens"
                f"{' + 256 byte pieces' if self.byte_fallback else ''} + 1), got {self.vocab_size}"
            )
        for name in ("max_documents", "input_sentence_size"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (0 takes all), got {getattr(self, name)}")
        if self.max_sentence_length < 64:
            raise ConfigError(f"max_sentence_length must be at least 64 bytes, got {self.max_sentence_length}")
        if not 0.0 < self.character_coverage <= 1.0:
            raise ConfigError(f"character_coverage must be in (0, 1], got {self.character_coverage}")
        if self.num_threads < 1:
            raise ConfigError(f"num_threads must be >= 1, got {self.num_threads}")
