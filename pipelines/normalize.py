"""Text normalization and length filtering: pure functions of Arrow tables with a `text` column."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

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


@dataclass(frozen=True)
class NormalizeOptions:
    nfc: bool = True
    fix_mojibake: bool = True
    remove_control_characters: bool = True
    normalize_whitespace: bool = True


def normalize(table: pa.Table, options: NormalizeOptions = NormalizeOptions()) -> pa.Table:
    """`text` repaired and normalized as `options` say, stripped at both ends.

    Mojibake first (ftfy.fix_encoding: UTF-8 text once decoded as Latin-1 or cp1252, "cafÃ©" ->
    "café"); only the encoding repair, not ftfy's full fix_text, which also rewrites quotes and
    ligatures and is 6x slower. Then NFC, so the same visible text written with combining marks
    ("e\\u0301") or precomposed ("\\u00e9") hashes the same in the exact dedup. Not
    `pc.utf8_normalize`: up to at least pyarrow 25.0.1 its NFC only decomposes (apache/arrow#51225).
    """
    texts = table["text"].to_pylist()
    if options.fix_mojibake:
        import ftfy

        texts = [ftfy.fix_encoding(text) for text in texts]
    if options.nfc:
        texts = [unicodedata.normalize("NFC", text) for text in texts]
    text = pa.array(texts, type=pa.string())
    if options.remove_control_characters:
        text = pc.replace_substring_regex(text, pattern=CONTROL_CHARACTERS, replacement="")
    if options.normalize_whitespace:
        for pattern, replacement in WHITESPACE_RULES:
            text = pc.replace_substring_regex(text, pattern=pattern, replacement=replacement)
    text = pc.utf8_trim_whitespace(text)
    return table.set_column(table.schema.get_field_index("text"), "text", text)


def drop_short(table: pa.Table, min_chars: int) -> FilterOutcome:
    """Drop documents whose normalized text is empty ("empty") or shorter than `min_chars` ("too_short")."""
    length = pc.utf8_length(table["text"])
    reasons = pc.if_else(pc.equal(length, 0), "empty", pc.if_else(pc.less(length, min_chars), "too_short", None))
    return split_by_reason(table, reasons)
