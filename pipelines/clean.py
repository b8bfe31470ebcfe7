"""Text normalization and length filtering: pure functions of Arrow tables with a `text` column."""

from __future__ import annotations

import unicodedata
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.config import CorpusBuildConfig

# Applied in order, after Unicode NFC. RE2 syntax (pyarrow.compute).
WHITESPACE_RULES = (
    (r"\r\n?", "\n"),  # Windows and old Mac line ends
    # Runs of spaces and tabs inside a line -> one space; leading indentation is kept, since code
    # and aligned listings (much of a documentation corpus) mean something by it.
    (r"(\S)[ \t]+", r"\1 "),
    (r"[ \t]+\n", "\n"),  # no trailing whitespace on a line, nor whitespace-only lines
    (r"\n{3,}", "\n\n"),  # at most one blank line between paragraphs
)


def normalize(table: pa.Table) -> pa.Table:
    """`text` in Unicode NFC with whitespace normalized (WHITESPACE_RULES) and stripped at both ends.

    NFC first, so the same visible text written with combining marks ("e\\u0301") or precomposed
    ("\\u00e9") hashes the same in the exact dedup. Not `pc.utf8_normalize`: up to at least pyarrow
    25.0.1 its NFC only decomposes (apache/arrow#51225).
    """
    nfc = [unicodedata.normalize("NFC", text) for text in table["text"].to_pylist()]
    text = pa.array(nfc, type=pa.string())
    for pattern, replacement in WHITESPACE_RULES:
        text = pc.replace_substring_regex(text, pattern=pattern, replacement=replacement)
    text = pc.utf8_trim_whitespace(text)
    return table.set_column(table.schema.get_field_index("text"), "text", text)


def drop_short(table: pa.Table, config: CorpusBuildConfig) -> tuple[pa.Table, Counter]:
    """Drop documents whose normalized text is empty or shorter than `config.min_chars` characters.

    Returns the kept rows and counts by reason ("empty", "too_short").
    """
    length = pc.utf8_length(table["text"])
    empty = pc.equal(length, 0)
    too_short = pc.and_(pc.invert(empty), pc.less(length, config.min_chars))
    keep = pc.greater_equal(length, max(config.min_chars, 1))
    counts = Counter(empty=pc.sum(empty).as_py() or 0, too_short=pc.sum(too_short).as_py() or 0)
    return table.filter(keep), counts
