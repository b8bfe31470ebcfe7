"""Typed configs of the data pipelines (no heavy imports: the Airflow DAG reads these at parse time)."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import ConfigError, one_of
from common.runners import RunnerSettings
from formats.layout import default_folder
from pipelines.survivors import SurvivorSettings, check_survivor

STAGES = ("normalize", "gopher_quality", "gopher_repetition", "repair", "language", "c4", "fineweb", "pii")
"""The cleaning stages of the corpus build, in the order they run (pipelines/corpus_stages.py builds them).

- normalize first: every later stage, and the exact dedup's hash, sees NFC text with tidy whitespace.
- gopher_quality, then gopher_repetition (Gopher, arXiv:2112.11446): cheap document-level rules on the
  page as written, in Gopher's own order (FineWeb's runs repetition first).
- repair (ftfy) and language (fastText lid.176) after the Gopher rules, not first as in FineWeb: per byte
  they cost as much as Gopher's word statistics or more, and the Gopher rules drop far more (90% of the
  shared corpus's bytes against language ID's 24%), so fewer bytes reach them.
- c4 (Raffel et al. 2020) removes lines, so it comes after the rules that judge the page as written;
  fineweb (arXiv:2406.17557) judges the C4-cleaned text, as FineWeb runs it.
- pii last, so no filter sees placeholders, and only kept text is rewritten.

Stages that only drop commute: the kept documents are the same in either order; only the stage a document
failing both is counted under differs. normalize and language always run, repair when `fix_mojibake` is
on, each of FILTER_STAGES when the config field of its name is on.
"""

FILTER_STAGES = tuple(name for name in STAGES if name not in ("normalize", "repair", "language"))
"""The quality filters among STAGES, one module of pipelines/filters/ each, thresholds in `filter_settings`
(the other stages are in pipelines/normalize.py and pipelines/langid.py)."""

EXTRACTORS = ("structural", "main_content", "trafilatura")
"""How the WARC reader turns a page into text (pipelines/readers/html.py); the first, the default, kept the
most of the pages' paragraphs, lists, code and tables with the least navigation in bench/extraction_quality.py."""


@dataclass(kw_only=True)
class CorpusBuildConfig(SurvivorSettings, RunnerSettings):
    """Raw documents -> normalized, language-identified, quality-filtered, exactly deduplicated Parquet shards."""

    inputs: list[str] = field(default_factory=lambda: ["data/demo/corpus"])
    """Input files, folders or glob patterns: JSON lines (.jsonl, .jsonl.gz, .jsonl.zst), Parquet,
    Arrow IPC (.arrow), WARC (.warc, .warc.gz), or a folder saved by `datasets.save_to_disk`. A folder
    takes every such file below it. Relative paths resolve against the current directory."""

    output_dir: str = default_folder("pipelines.corpus_build", "output_dir")
    """Where documents/shard-NNNNN.parquet, manifest.json, stats.json, quarantine.jsonl,
    dropped_samples.jsonl and config.json are written."""

    text_field: str = "text"
    """The JSON field (or Parquet/Arrow column) holding a record's text."""

    id_field: str = "id"
    """The field holding a record's id; where it is absent or not a string the id is
    '<input path>:<offset>' (WARC records use their WARC-Record-ID)."""

    split_bytes: int = 256 << 20
    """Files larger than this are read by several tasks at once: plain .jsonl by byte ranges, Parquet
    by row groups, Arrow IPC files by record batches. Compressed JSON lines and WARC are one task each."""

    extractor: str = one_of(EXTRACTORS[0], EXTRACTORS)
    """HTML to text for WARC inputs: "structural", the whole page less the blocks its markup marks as
    navigation, header, footer, sidebar or table of contents; "main_content", resiliparse's main-content
    heuristics (fast, but they drop lists, code and tables on docbook manuals); "trafilatura", FineWeb's
    extractor (about 15x slower; needs the trafilatura package). bench/README.md has the measurements."""

    max_document_bytes: int = 10_000_000
    """Records larger than this are quarantined as too_large, unread: it bounds a reader's memory
    (Gopher's 100,000-word cap drops any document a tenth this size anyway)."""

    fix_mojibake: bool = True
    """Repair text that was decoded with the wrong codec ("cafÃ©" -> "café") with ftfy."""

    remove_control_characters: bool = True
    """Delete C0/C1 control characters other than tab and newline."""

    min_chars: int = 50
    """Documents shorter than this many characters after normalization are dropped as too_short.
    50 drops one-line stubs (a heading, a "see also", a bare license line) and keeps any real paragraph."""

    languages: list[str] = field(default_factory=lambda: ["en"])
    """Languages to keep (fastText lid.176 codes: en, de, zh, ...); empty keeps every language."""

    language_threshold: float = 0.65
    """Documents whose top language scores below this are dropped as language.low_score (FineWeb's 0.65)."""

    gopher_quality: bool = True
    """Gopher quality rules (Rae et al. 2021, arXiv:2112.11446, appendix A): word counts and lengths,
    symbols, bullets, ellipses, alphabetic words, stop words."""

    gopher_repetition: bool = True
    """Gopher repetition rules (arXiv:2112.11446, table A1): duplicate lines, paragraphs and n-grams."""

    c4: bool = True
    """C4 rules (Raffel et al. 2020): drop lines without terminal punctuation, short, or boilerplate;
    drop documents with lorem ipsum, curly braces or fewer than 5 sentences. Rewrites kept text."""

    fineweb: bool = True
    """FineWeb quality rules (Penedo et al. 2024): line punctuation, short lines, duplicated lines, list-likeness."""

    pii: bool = True
    """Replace email addresses and public IP addresses by placeholders (FineWeb's PII step)."""

    filter_settings: dict[str, dict] = field(default_factory=dict)
    """Thresholds of the quality stages, by stage, e.g. {"gopher_quality": {"min_doc_words": 30}}.
    Keys are the fields of each stage's config (pipelines/filters/); unset ones keep the published defaults."""

    dropped_samples: int = 20
    """Dropped documents kept for review per reason, in dropped_samples.jsonl (first in input order)."""

    num_partitions: int | None = None
    """Hash partitions of the exact dedup (one Ray task each); a partition holds about 1/n of all
    (hash, order) keys in memory. Empty: one per `bytes_per_partition` of input, so nobody tunes it."""

    bytes_per_partition: int = 1_000_000_000
    """Input bytes (file sizes as on disk) per exact-dedup partition when num_partitions is empty. A
    partition holds 36 bytes of keys per document: for 1 GB of gzipped web text (about a million
    documents) some 40 MB."""

    batch_size: int = 4096
    """Records per Arrow batch while reading and filtering; bounds each task's memory."""

    mlflow_experiment: str = "corpus_build"
    """MLflow experiment that receives the run's counts, manifest and stats."""

    log_to_mlflow: bool = True
    """Log counts as metrics and manifest.json / stats.json as artifacts of an MLflow run."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.inputs or any(not str(p).strip() for p in self.inputs):
            raise ConfigError(f"inputs must be a non-empty list of paths, got {self.inputs!r}")
        for name in ("output_dir", "text_field", "id_field", "mlflow_experiment"):
            if not getattr(self, name).strip():
                raise ConfigError(f"{name} may not be empty")
        for name in ("min_chars", "dropped_samples"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("num_partitions", "bytes_per_partition", "batch_size", "split_bytes", "max_document_bytes"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.language_threshold <= 1.0:
            raise ConfigError(f"language_threshold must be in [0, 1], got {self.language_threshold}")
        unknown = sorted(set(self.filter_settings) - set(FILTER_STAGES))
        if unknown:
            raise ConfigError(f"filter_settings: unknown stage {', '.join(unknown)}; stages: {', '.join(FILTER_STAGES)}")
        if self.extractor not in EXTRACTORS:
            raise ConfigError(f"extractor must be one of {', '.join(EXTRACTORS)}, got {self.extractor!r}")
        check_survivor(self.survivor, self.source_ranking)
