"""Gopher repetition rules: drop documents that repeat lines, paragraphs or n-grams too much.

Rae et al. 2021 (arXiv:2112.11446), appendix A.1.1 and table A1: duplicate line and paragraph fractions
(0.30 of the count, 0.20 of the characters), the most frequent 2-, 3-, 4-gram's share of the characters
(0.20, 0.18, 0.16), the share of characters in duplicated 5- to 10-grams (0.15 down to 0.10).
Definitions, order and reasons follow datatrove's GopherRepetitionFilter (0.10.1).

datatrove joins every n-gram into a Python string, which is most of its cleaning time. Here words become
integer ids once, each n-gram an integer id (from the (n-1)-gram's id and the next word, through a hash
table), and the counting runs compiled by numba: the same numbers without a string per n-gram (the
filter, words included, runs 13x faster; bench/filters_speed.py). One difference: datatrove keys the
duplicated 5- to 10-grams by their words joined without a separator, so "ab c" repeats "a bc"; ours by
the words themselves (1 document of the 84,587 of debian-docs decides otherwise for it).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import count

import numpy as np
import pyarrow as pa
from numba import njit

from common.config import ConfigError
from pipelines.filters.base import FilterOutcome, apply_document_filter
from pipelines.filters.words import split_words

PARAGRAPH_BREAK = re.compile(r"\n\n+")  # datatrove's \n{2,} and \n+, written so `re` searches them faster
LINE_BREAK = re.compile(r"\n\n*")


@dataclass(kw_only=True)
class GopherRepetitionConfig:
    """Thresholds of the Gopher repetition rules (defaults: arXiv:2112.11446, table A1)."""

    dup_para_frac: float = 0.3
    """More than this fraction of paragraphs (split at blank lines) being repeats drops the document."""

    dup_para_char_frac: float = 0.2
    """More than this fraction of the characters in repeated paragraphs drops the document."""

    dup_line_frac: float = 0.3
    """More than this fraction of lines being repeats drops the document."""

    dup_line_char_frac: float = 0.2
    """More than this fraction of the characters in repeated lines drops the document."""

    top_n_grams: list[int] = field(default_factory=lambda: [2, 3, 4])
    """n-gram sizes whose most frequent n-gram is checked, with `top_n_gram_fracs`."""

    top_n_gram_fracs: list[float] = field(default_factory=lambda: [0.20, 0.18, 0.16])
    """For each of `top_n_grams`: the most frequent n-gram covering more than this fraction of the
    characters (its length times its count) drops the document."""

    dup_n_grams: list[int] = field(default_factory=lambda: [5, 6, 7, 8, 9, 10])
    """n-gram sizes whose duplicated occurrences are checked, with `dup_n_gram_fracs`."""

    dup_n_gram_fracs: list[float] = field(default_factory=lambda: [0.15, 0.14, 0.13, 0.12, 0.11, 0.10])
    """For each of `dup_n_grams`: more than this fraction of the characters in n-grams seen before in the
    document (each repeat counted once, scanning left to right) drops the document."""

    def __post_init__(self) -> None:
        for name in ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"gopher_repetition: {name} must be a fraction in [0, 1], got {getattr(self, name)}")
        for sizes, fracs in (("top_n_grams", "top_n_gram_fracs"), ("dup_n_grams", "dup_n_gram_fracs")):
            if len(getattr(self, sizes)) != len(getattr(self, fracs)):
                raise ConfigError(f"gopher_repetition: {sizes} and {fracs} must have the same length")
            if any(n < 1 for n in getattr(self, sizes)) or any(not 0 <= f <= 1 for f in getattr(self, fracs)):
                raise ConfigError(f"gopher_repetition: {sizes} must be >= 1 and {fracs} fractions in [0, 1]")


def duplicates(items: list[str]) -> tuple[int, int]:
    """How many items repeat an earlier one, and their total length (datatrove's find_duplicates)."""
    distinct = Counter(items)
    return len(items) - len(distinct), sum(map(len, items)) - sum(map(len, distinct))


def drop_reason(text: str, config: GopherRepetitionConfig) -> str | None:
    """The first Gopher repetition rule `text` fails, in datatrove's order, or None if it passes."""
    if not text:
        return "gopher_repetition.empty"
    paragraphs = PARAGRAPH_BREAK.split(text.strip())
    repeats, repeated_chars = duplicates(paragraphs)
    if repeats / len(paragraphs) > config.dup_para_frac:
        return "gopher_repetition.dup_para_frac"
    if repeated_chars / len(text) > config.dup_para_char_frac:
        return "gopher_repetition.dup_para_char_frac"
    lines = LINE_BREAK.split(text)
    repeats, repeated_chars = duplicates(lines)
    if repeats / len(lines) > config.dup_line_frac:
        return "gopher_repetition.dup_line_frac"
    if repeated_chars / len(text) > config.dup_line_char_frac:
        return "gopher_repetition.dup_line_char_frac"

    words = split_words(text)
    word_ids = dict(zip(dict.fromkeys(words), count()))  # by first occurrence
    ids = np.fromiter(map(word_ids.__getitem__, words), np.int64, len(words))
    lengths = np.fromiter(map(len, word_ids), np.int64, len(word_ids))[ids]
    failed = _first_failed_n_gram_rule(
        ids,
        lengths,
        len(word_ids),
        len(text),
        np.array(config.top_n_grams + config.dup_n_grams, np.int64),
        np.array(config.top_n_gram_fracs + config.dup_n_gram_fracs, np.float64),
        len(config.top_n_grams),
    )
    if failed < 0:
        return None
    if failed < len(config.top_n_grams):
        return f"gopher_repetition.top_{config.top_n_grams[failed]}_gram"
    return f"gopher_repetition.dup_{config.dup_n_grams[failed - len(config.top_n_grams)]}_gram"


Config = GopherRepetitionConfig  # the name the registry reads from every filter (pipelines/filters/__init__.py)


def apply(table: pa.Table, config: GopherRepetitionConfig) -> FilterOutcome:
    """Drop the rows of `table` whose `text` fails a Gopher repetition rule, with its reason."""
    return apply_document_filter(table, lambda text: drop_reason(text, config))


@njit(cache=True)
def _first_failed_n_gram_rule(ids, lengths, vocabulary_size, text_length, sizes, max_fracs, n_top):
    """Index of the first n-gram rule failed, or -1: rules 0..n_top-1 are "top n-gram" rules, the rest
    "duplicated n-grams" rules, each of size `sizes[k]` and threshold `max_fracs[k]`."""
    n_words = ids.size
    ends = np.zeros(n_words + 1, np.int64)  # characters of words i..j-1: ends[j] - ends[i]
    ends[1:] = np.cumsum(lengths)
    grams, n_distinct, level = ids, vocabulary_size, 1  # ids of the `level`-grams starting at each word
    for k in range(sizes.size):
        n = sizes[k]
        if n > n_words:  # no n-gram at all: nothing repeated (datatrove skips the rule)
            continue
        if n < level:
            grams, n_distinct, level = ids, vocabulary_size, 1
        while level < n:
            grams, n_distinct = _next_gram_ids(grams, ids, level)
            level += 1
        if k < n_top:
            # The most frequent n-gram (the first seen among equals, as Counter.most_common) times its
            # length with the spaces that join its words.
            counts = np.bincount(grams, minlength=n_distinct)
            top = np.argmax(counts)
            first = np.argmax(grams == top)
            chars = counts[top] * (ends[first + n] - ends[first] + n - 1)
        else:
            # Scanning left to right, an n-gram seen before counts its characters and the scan jumps
            # past it, so overlapping repeats are not counted twice.
            seen = np.zeros(n_distinct, np.bool_)
            chars, i = 0, 0
            while i < grams.size:
                if seen[grams[i]]:
                    chars += ends[i + n] - ends[i]
                    i += n
                else:
                    seen[grams[i]] = True
                    i += 1
        if chars / text_length > max_fracs[k]:
            return k
    return -1


@njit(cache=True)
def _next_gram_ids(grams, ids, level):
    """Ids (0, 1, 2, ... by first occurrence) of the (level+1)-grams, from the level-grams' ids and the
    next word's id, through an open-addressing hash table."""
    n = grams.size - 1
    bits = 1
    while (1 << bits) < 2 * n:
        bits += 1
    mask = (1 << bits) - 1
    slot_keys = np.empty(1 << bits, np.int64)
    slot_ids = np.full(1 << bits, -1, np.int64)
    out = np.empty(n, np.int64)
    next_id = 0
    for i in range(n):
        key = grams[i] * ids.size + ids[i + level]  # < n_words squared: no overflow
        slot = np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - bits))  # Fibonacci hashing
        while slot_ids[slot] != -1 and slot_keys[slot] != key:
            slot = (slot + 1) & mask
        if slot_ids[slot] == -1:
            slot_ids[slot] = next_id
            slot_keys[slot] = key
            next_id += 1
        out[i] = slot_ids[slot]
    return out, next_id
