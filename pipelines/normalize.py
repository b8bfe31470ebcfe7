"""Text normalization and length filtering: pure functions of Arrow tables with a `text` column."""

from __future__ import annotations

import unicodedata
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.filters.base import FilterOutcome, split_by_reason

# Applied in order, after Unicode NFC. RE2 syntax (pyarrow.compute).
CONTROL_CHARACTERS = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
"""C0 and C1 controls except tab, newline and carriage return: invisible, and they break tools downstream."""
WHITESPACE_RULES = (
    (r"\r\n?", "\n"),  # Windows and old Mac line ends
    # Runs of spaces and tabs inside a line -> one space; leading indentation is kept, since code
    # and aligned listings (much of a documentation corpus) mean something by it.
    (r"(\S)[ \t]+", r"\1 "),
    (r"[ \t]+\n", "\n"),  # no trailing whitespace on a line, nor whitespace-only lines
    (r"\n{3,}", "\n\n"),  # at most one blank line between paragraphs
)


def normalize(table: pa.Table, *, remove_control_characters: bool = True) -> pa.Table:
    """`text` in Unicode NFC, without control characters (unless told to keep them), with whitespace
    normalized by WHITESPACE_RULES, stripped at both ends.

    NFC first, so the same visible text written with combining marks ("e\\u0301") or precomposed
    ("\\u00e9") hashes the same in the exact dedup. Not `pc.utf8_normalize`: up to at least pyarrow
    25.0.1 its NFC only decomposes (apache/arrow#51225).
    """
    text = pa.array([unicodedata.normalize("NFC", text) for text in table["text"].to_pylist()], type=pa.string())
    if remove_control_characters:
        text = pc.replace_substring_regex(text, pattern=CONTROL_CHARACTERS, replacement="")
    for pattern, replacement in WHITESPACE_RULES:
        text = pc.replace_substring_regex(text, pattern=pattern, replacement=replacement)
    text = pc.utf8_trim_whitespace(text)
    return table.set_column(table.schema.get_field_index("text"), "text", text)


def drop_short(table: pa.Table, min_chars: int) -> FilterOutcome:
    """Drop documents whose normalized text is empty ("empty") or shorter than `min_chars` ("too_short")."""
    length = pc.utf8_length(table["text"])
    reasons = pc.if_else(pc.equal(length, 0), "empty", pc.if_else(pc.less(length, min_chars), "too_short", None))
    return split_by_reason(table, reasons)


def repair_mojibake(table: pa.Table) -> FilterOutcome:
    """`text` with mojibake repaired (UTF-8 once decoded as Latin-1 or cp1252: "cafÃ©" -> "café").

    ftfy.fix_encoding: only the encoding repair, not ftfy's full fix_text, which also rewrites quotes
    and ligatures and is 6x slower. At about 7 MB/s it is the costliest step of normalization, so
    the corpus build runs it as its own stage, `repair`, once the Gopher rules have dropped most
    documents (`pipelines.config.STAGES`). NFC again after it, as ftfy may decompose. Drops nothing;
    counts the documents it changed.
    """
    import ftfy

    before = table["text"].to_pylist()
    after = [unicodedata.normalize("NFC", ftfy.fix_encoding(text)) for text in before]
    changed = sum(a != b for a, b in zip(before, after))
    kept = table.set_column(table.schema.get_field_index("text"), "text", pa.array(after, type=pa.string()))
    no_rows = kept.slice(0, 0).append_column("reason", pa.array([], pa.string()))
    return FilterOutcome(kept, no_rows, Counter({"repair.documents_changed": changed}))
