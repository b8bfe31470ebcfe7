"""FineWeb quality rules: drop pages made of fragments, short lines, repeated lines or lists.

Penedo et al. 2024, "The FineWeb Datasets: Decanting the Web for the Finest Text Data at Scale"
(arXiv:2406.17557), section 3.6: the three custom filters (at least 12% of lines ending in punctuation, at
most 67% of lines of 30 characters or fewer, at most 1% of characters in duplicated lines) and datatrove's
list filter (at most 0.3 newlines per word). Rules, order and reasons follow datatrove's
FineWebQualityFilter (0.10.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from common.config import ConfigError
from pipelines.filters.base import FilterOutcome, apply_document_filter
from pipelines.filters.gopher_repetition import duplicates
from pipelines.filters.words import TERMINAL_PUNCTUATION, split_words


@dataclass(kw_only=True)
class FineWebConfig:
    """Thresholds of the FineWeb quality rules (defaults: arXiv:2406.17557, section 3.6)."""

    min_line_punct_ratio: float = 0.12
    """Fewer than this fraction of non-blank lines ending in terminal punctuation drops the document."""

    line_punct_exclude_zero: bool = False
    """Keep documents where no line at all ends in punctuation (the rule then only catches some)."""

    short_line_length: int = 30
    """Lines of at most this many characters count as short."""

    max_short_line_ratio: float = 0.67
    """More than this fraction of short non-blank lines drops the document."""

    max_char_dup_ratio: float = 0.01
    """More than this fraction of the characters (newlines aside) in repeated lines drops the document."""

    max_newline_ratio: float = 0.3
    """More newlines per word than this drops the document: a list, not prose."""

    def __post_init__(self) -> None:
        for name in ("min_line_punct_ratio", "max_short_line_ratio", "max_char_dup_ratio"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"fineweb: {name} must be a fraction in [0, 1], got {getattr(self, name)}")
        if self.short_line_length < 0 or self.max_newline_ratio < 0:
            raise ConfigError("fineweb: short_line_length and max_newline_ratio must be >= 0")


def drop_reason(text: str, config: FineWebConfig) -> str | None:
    """The first FineWeb rule `text` fails, in datatrove's order, or None if it passes."""
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return "fineweb.empty"
    ratio = sum(line[-1] in TERMINAL_PUNCTUATION for line in lines) / len(lines)
    if ratio < config.min_line_punct_ratio and not (ratio == 0 and config.line_punct_exclude_zero):
        return "fineweb.line_punct_ratio"
    if sum(len(line) <= config.short_line_length for line in lines) / len(lines) > config.max_short_line_ratio:
        return "fineweb.short_line_ratio"
    if duplicates(lines)[1] / len(text.replace("\n", "")) > config.max_char_dup_ratio:
        return "fineweb.char_dup_ratio"
    newlines = text.count("\n")
    # Each whitespace-separated chunk holds at least one word: a pass counted in chunks is a pass in words,
    # and counting chunks is much cheaper than splitting words.
    if newlines / len(text.split()) <= config.max_newline_ratio:
        return None
    if newlines / len(split_words(text)) > config.max_newline_ratio:
        return "fineweb.list_ratio"
    return None


Config = FineWebConfig  # the name the registry reads from every filter (pipelines/filters/__init__.py)


def apply(table: pa.Table, config: FineWebConfig) -> FilterOutcome:
    """Drop the rows of `table` whose `text` fails a FineWeb quality rule, with its reason."""
    return apply_document_filter(table, lambda text: drop_reason(text, config))
