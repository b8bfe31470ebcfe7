"""Typed config of the fuzzy (MinHash-LSH) dedup job; no heavy imports: an Airflow DAG reads it at parse time."""

from __future__ import annotations

from dataclasses import dataclass

from common.config import ConfigError, one_of
from common.runners import RunnerSettings
from formats.layout import default_folder
from pipelines.minhash_presets import PRESETS
from pipelines.survivors import SurvivorSettings, check_survivor

PRESET_NAMES = (*PRESETS, "custom")
VERIFY_METHODS = ("shingles", "signature")
SHINGLES = ("word", "char")


@dataclass(kw_only=True)
class FuzzyDedupConfig(SurvivorSettings, RunnerSettings):
    """A corpus folder (documents/shard-*.parquet) -> the same without near duplicates."""

    corpus_dir: str = default_folder("pipelines.fuzzy_dedup", "corpus_dir")
    """The corpus build's output folder (formats/corpus.py); its documents/shard-*.parquet (id, text, source) are read."""

    output_dir: str = default_folder("pipelines.fuzzy_dedup", "output_dir")
    """Where documents/shard-NNNNN.parquet (one per input shard, same name and order), duplicates.parquet,
    stats.json, config.json and manifest.json (last) are written. Work files go to output_dir/_work and
    are kept until the run succeeds: a rerun after a failure redoes only the unfinished tasks."""

    preset: str = one_of("fineweb", PRESET_NAMES)
    """MinHash-LSH setting: "fineweb" (5-word shingles, 14 bands x 8 rows), "nemo" (24-character
    shingles, 20 x 13) or "custom" (shingle, ngram, bands and rows all set here)."""

    shingle: str | None = one_of(None, SHINGLES)
    """"word" or "char" n-grams of the normalized text. Empty: the preset's."""

    ngram: int | None = None
    """Words or characters per shingle. Empty: the preset's."""

    bands: int | None = None
    """LSH bands; two documents are candidates when one band of their signatures is equal. Empty: the
    preset's."""

    rows: int | None = None
    """Signature values per band (signature length = bands x rows). Empty: the preset's. The candidate
    probability at Jaccard J is 1 - (1 - J^rows)^bands."""

    seed: int = 1
    """Seed of the MinHash permutations."""

    verify_threshold: float | None = 0.7
    """Keep a candidate pair only when its Jaccard similarity (measured as verify_method says) reaches
    this. Cuts the pairs that met in one band by luck. Empty keeps every candidate, as FineWeb does."""

    survivor_threshold: float | None = 0.5
    """Remove a document only when its Jaccard similarity with the document kept in its place reaches
    this. Connected components chain: A~B and B~C put A and C in one cluster however little A and C
    share (about 3% of a set of edited man pages went so, no kept document reaching J = 0.5 with them).
    Members that fail settle among themselves the same way. Empty: every member of a component goes
    for its survivor. FineWeb's (and datatrove's) setting is both empty: `verify_threshold=none
    survivor_threshold=none`."""

    verify_method: str = one_of("shingles", VERIFY_METHODS)
    """How verify_threshold and survivor_threshold measure a pair: "shingles", the true Jaccard similarity of the two
    documents' shingle sets (each task keeps its shards' sets on disk, about 4 bytes per shingle), or
    "signature", MinHash's estimate from the fraction of equal signature values (cheaper; its standard
    error at 112 hashes is about 0.04 near J = 0.8)."""

    documents_per_partition: int = 250_000
    """Documents per LSH/components partition (one Ray task each per round). Bounds a task's memory
    (about 0.5 KB per document at 14 bands) independently of the corpus size."""

    batch_size: int = 4096
    """Documents per batch while computing signatures and writing shards."""

    mlflow_experiment: str = "fuzzy_dedup"
    """MLflow experiment that receives the run's counts, manifest and stats."""

    log_to_mlflow: bool = True
    """Log counts as metrics and manifest.json / stats.json as artifacts of an MLflow run."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("corpus_dir", "output_dir", "mlflow_experiment"):
            if not getattr(self, name).strip():
                raise ConfigError(f"{name} may not be empty")
        if self.preset not in PRESET_NAMES:
            raise ConfigError(f"preset must be one of {', '.join(PRESET_NAMES)}, got {self.preset!r}")
        if self.shingle is not None and self.shingle not in SHINGLES:
            raise ConfigError(f"shingle must be 'word' or 'char', got {self.shingle!r}")
        for name in ("ngram", "bands", "rows"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        for name in ("verify_threshold", "survivor_threshold"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise ConfigError(f"{name} must be in (0, 1], got {value}")
        if self.verify_method not in VERIFY_METHODS:
            raise ConfigError(f"verify_method must be one of {', '.join(VERIFY_METHODS)}, got {self.verify_method!r}")
        check_survivor(self.survivor, self.source_ranking)
        if self.documents_per_partition < 1:
            raise ConfigError(f"documents_per_partition must be >= 1, got {self.documents_per_partition}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")

    @property
    def measures_pairs(self) -> bool:
        """Whether any pair's Jaccard similarity is measured (then the signatures task keeps what that reads)."""
        return self.verify_threshold is not None or self.survivor_threshold is not None
