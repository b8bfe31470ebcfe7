"""Normalization and the length filter on hand-made tables."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipelines.clean import drop_short, normalize
from pipelines.config import CorpusBuildConfig


def normalized(*texts: str) -> list[str]:
    return normalize(pa.table({"text": list(texts)}))["text"].to_pylist()


def test_nfc_composes_combining_marks():
    decomposed, precomposed = normalized("cafe\u0301", "caf\u00e9")
    assert decomposed == precomposed == "caf\u00e9"  # 4 code points, not "e" + U+0301


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a  b\t\tc \t d", "a b c d"),  # runs of spaces and tabs -> one space
        ("line one   \nline two\t\n", "line one\nline two"),  # no trailing spaces; stripped at the end
        ("p1\n\n\n\n\np2", "p1\n\np2"),  # 3+ newlines -> one blank line
        ("p1\n  \n\t\n \np2", "p1\n\np2"),  # lines of only spaces count as blank
        ("p1\n\np2", "p1\n\np2"),  # one blank line stays
        ("  \n lead\n", "lead"),  # stripped at both ends
        ("windows\r\nline\rends", "windows\nline\nends"),
        ("    indented\n        more", "indented\n        more"),  # indentation kept (only the text's start is stripped)
        ("code:\n    x  =  1\t\n", "code:\n    x = 1"),  # runs inside a line collapse, trailing ones go
        ("", ""),
        (" \n\t ", ""),
    ],
)
def test_whitespace_rules(raw, expected):
    assert normalized(raw) == [expected]


def test_normalize_is_idempotent_and_keeps_other_columns():
    table = pa.table({"id": ["x", "y"], "text": ["a \t b\n\n\n\nc  ", "e\u0301"], "line": [1, 2]})
    once = normalize(table)
    assert once.column_names == table.column_names
    assert once["id"].to_pylist() == ["x", "y"] and once["line"].to_pylist() == [1, 2]
    assert normalize(once).equals(once)


def test_drop_short_counts_empty_and_too_short_separately():
    config = CorpusBuildConfig(min_chars=5)
    table = pa.table({"id": list("abcde"), "text": ["", "abcd", "abcde", "éééé", "ééééé"]})
    kept, counts = drop_short(table, config)
    assert kept["id"].to_pylist() == ["c", "e"]  # a length of exactly min_chars is kept
    assert counts == {"empty": 1, "too_short": 2}  # characters, not bytes: "éééé" is 8 bytes


def test_min_chars_zero_still_drops_empty_documents():
    kept, counts = drop_short(pa.table({"text": ["", "x"]}), CorpusBuildConfig(min_chars=0))
    assert kept["text"].to_pylist() == ["x"]
    assert counts == {"empty": 1, "too_short": 0}
