"""Gopher quality rules: drop documents that do not look like prose.

Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training Gopher"
(arXiv:2112.11446), appendix A.1.1 "MassiveWeb" quality filters, with the thresholds published there.
The checks, their order and their reasons follow datatrove's GopherQualityFilter (0.10.1), so that our
decisions can be compared with its (bench/filter_agreement.py). Words come from `words.split_words`.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass, field
from itertools import compress
from operator import methodcaller, mul

import pyarrow as pa

from common.config import ConfigError
from pipelines.filters.base import FilterOutcome, apply_document_filter
from pipelines.filters.words import TERMINAL_PUNCTUATION, char_class, split_words

# A word made only of these is a symbol, not a word, for the length rules (datatrove's PUNCTUATION_SET:
# ASCII and CJK punctuation, dashes and quotes, the fullwidth digit 1 (sic), control characters other than
# tab and newline; sentence ends beyond U+FFFF aside).
SYMBOLS = "".join(
    sorted(
        set(string.punctuation + "«´»–—’“”„…∶━►、。〈〉《》「」【】！％（），．１：；？～")
        | {chr(code) for code in [*range(0, 9), *range(11, 32), *range(127, 160)]}
        | TERMINAL_PUNCTUATION
    )
)
_LETTER = re.compile(f"[{char_class(str.isalpha)}]")


@dataclass(kw_only=True)
class GopherQualityConfig:
    """Thresholds of the Gopher quality rules (defaults: arXiv:2112.11446, appendix A.1.1)."""

    min_doc_words: int = 50
    """Fewer words than this (not counting words made only of punctuation) drops the document."""

    max_doc_words: int = 100_000
    """More words than this drops the document."""

    min_avg_word_length: float = 3
    """A mean word length (in characters, punctuation-only words left out) below this drops the document."""

    max_avg_word_length: float = 10
    """A mean word length above this drops the document."""

    max_symbol_word_ratio: float = 0.1
    """More `#` per word than this, or more ellipses ("..." or "…") per word, drops the document."""

    max_bullet_lines_ratio: float = 0.9
    """More than this fraction of lines starting with a bullet ("•" or "-") drops the document."""

    max_ellipsis_lines_ratio: float = 0.3
    """More than this fraction of lines ending with an ellipsis drops the document."""

    min_alpha_words_ratio: float = 0.8
    """Fewer than this fraction of words containing a letter drops the document."""

    min_stop_words: int = 2
    """Fewer than this many distinct stop words in the document drops it (case-sensitive, as in datatrove)."""

    stop_words: list[str] = field(default_factory=lambda: ["the", "be", "to", "of", "and", "that", "have", "with"])
    """The stop words counted by `min_stop_words`."""

    def __post_init__(self) -> None:
        if not 0 <= self.min_doc_words <= self.max_doc_words:
            raise ConfigError(
                "gopher_quality: need 0 <= min_doc_words <= max_doc_words, "
                f"got {self.min_doc_words}, {self.max_doc_words}"
            )
        if not 0 <= self.min_avg_word_length <= self.max_avg_word_length:
            raise ConfigError(
                "gopher_quality: need 0 <= min_avg_word_length <= max_avg_word_length, "
                f"got {self.min_avg_word_length}, {self.max_avg_word_length}"
            )
        ratios = ("max_symbol_word_ratio", "max_bullet_lines_ratio", "max_ellipsis_lines_ratio")
        for name in (*ratios, "min_alpha_words_ratio"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"gopher_quality: {name} must be a fraction in [0, 1], got {getattr(self, name)}")
        if self.min_stop_words > len(set(self.stop_words)):
            raise ConfigError(
                f"gopher_quality: min_stop_words={self.min_stop_words} can never be met with "
                f"{len(set(self.stop_words))} distinct stop_words"
            )


def drop_reason(text: str, config: GopherQualityConfig) -> str | None:
    """The first Gopher quality rule `text` fails, in datatrove's order, or None if it passes."""
    words = split_words(text)
    # Each distinct word is looked at once, in C loops (map, compress): this runs on every document.
    counts = Counter(words)
    distinct, frequencies = list(counts), list(counts.values())
    is_word = list(map(bool, map(methodcaller("strip", SYMBOLS), distinct)))  # not only symbols
    n_words = sum(compress(frequencies, is_word))
    if n_words < config.min_doc_words or n_words == 0:
        return "gopher_quality.short_doc"
    if n_words > config.max_doc_words:
        return "gopher_quality.long_doc"
    avg_word_length = sum(map(mul, compress(map(len, distinct), is_word), compress(frequencies, is_word))) / n_words
    if avg_word_length < config.min_avg_word_length:
        return "gopher_quality.short_avg_word_length"
    if avg_word_length > config.max_avg_word_length:
        return "gopher_quality.long_avg_word_length"
    # The ratios below divide by all words, symbols included (as datatrove does).
    if text.count("#") / len(words) > config.max_symbol_word_ratio:
        return "gopher_quality.too_many_hashes"
    if (text.count("...") + text.count("…")) / len(words) > config.max_symbol_word_ratio:
        return "gopher_quality.too_many_ellipsis"
    lines = text.splitlines()
    bullet_lines = sum(map(methodcaller("startswith", ("•", "-")), map(str.lstrip, lines)))
    if bullet_lines / len(lines) > config.max_bullet_lines_ratio:
        return "gopher_quality.too_many_bullet_lines"
    ellipsis_lines = sum(map(methodcaller("endswith", ("...", "…")), map(str.rstrip, lines)))
    if ellipsis_lines / len(lines) > config.max_ellipsis_lines_ratio:
        return "gopher_quality.too_many_ellipsis_lines"
    if sum(compress(frequencies, map(_LETTER.search, distinct))) / len(words) < config.min_alpha_words_ratio:
        return "gopher_quality.few_alpha_words"
    if len(counts.keys() & set(config.stop_words)) < config.min_stop_words:
        return "gopher_quality.few_stop_words"
    return None


Config = GopherQualityConfig  # the name the registry reads from every filter (pipelines/filters/__init__.py)


def apply(table: pa.Table, config: GopherQualityConfig) -> FilterOutcome:
    """Drop the rows of `table` whose `text` fails a Gopher quality rule, with its reason."""
    return apply_document_filter(table, lambda text: drop_reason(text, config))
