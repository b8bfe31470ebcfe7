"""Normalization and the length filter on hand-made tables."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipelines.normalize import drop_short, normalize, repair_mojibake


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


def test_mojibake_is_repaired_and_counted():
    table = pa.table({"id": ["a", "b", "c"], "text": ["cafÃ© au lait, naÃ¯ve", "“quoted” ﬁne", "wait\x85"]})
    outcome = repair_mojibake(table)
    # Only the encoding is repaired, not style; a lone C1 control reads as the cp1252 character it stands for.
    assert outcome.kept["text"].to_pylist() == ["café au lait, naïve", "“quoted” ﬁne", "wait…"]
    assert outcome.kept["id"].to_pylist() == ["a", "b", "c"] and outcome.dropped.num_rows == 0
    assert outcome.counts == {"repair.documents_changed": 2}


def test_control_characters_are_removed_but_tabs_and_newlines_kept():
    assert normalized("a\x00b\x07c\x1bd\x7fe\x85f\x9fg\n    h\ti") == ["abcdefg\n    h i"]


def test_control_characters_can_be_kept():
    table = pa.table({"text": ["cafe\u0301\x07  x"]})
    assert normalize(table, remove_control_characters=False)["text"].to_pylist() == ["caf\u00e9\x07 x"]


def test_normalize_is_idempotent_and_keeps_other_columns():
    table = pa.table({"id": ["x", "y"], "text": ["a \t b\n\n\n\nc  ", "e\u0301"], "line": [1, 2]})
    once = normalize(table)
    assert once.column_names == table.column_names
    assert once["id"].to_pylist() == ["x", "y"] and once["line"].to_pylist() == [1, 2]
    assert normalize(once).equals(once)


def test_drop_short_gives_empty_and_too_short_as_reasons():
    table = pa.table({"id": list("abcde"), "text": ["", "abcd", "abcde", "éééé", "ééééé"]})
    outcome = drop_short(table, 5)
    assert outcome.kept["id"].to_pylist() == ["c", "e"]  # a length of exactly min_chars is kept
    # characters, not bytes: "éééé" is 8 bytes
    assert list(zip(outcome.dropped["id"].to_pylist(), outcome.dropped["reason"].to_pylist())) == [
        ("a", "empty"), ("b", "too_short"), ("d", "too_short")
    ]


def test_min_chars_zero_still_drops_empty_documents():
    outcome = drop_short(pa.table({"text": ["", "x"]}), 0)
    assert outcome.kept["text"].to_pylist() == ["x"]
    assert outcome.dropped["reason"].to_pylist() == ["empty"]
