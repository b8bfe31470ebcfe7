"""Gopher quality rules on hand-built documents: each reason, at its threshold and just past it."""

from __future__ import annotations

import pyarrow as pa
import pytest

from common.config import ConfigError
from pipelines.filters.gopher_quality import GopherQualityConfig, apply, drop_reason

DEFAULTS = GopherQualityConfig()


def prose(n_words: int) -> str:
    """`n_words` words that pass every rule: two stop words, then five-letter words."""
    return " ".join(["the", "and"] + ["river"] * (n_words - 2))


def test_prose_passes():
    assert drop_reason(prose(200), DEFAULTS) is None


def test_word_count_bounds():
    assert drop_reason(prose(50), DEFAULTS) is None
    assert drop_reason(prose(49), DEFAULTS) == "gopher_quality.short_doc"
    # Punctuation-only words are not counted: 49 words and a period are still 49 words.
    assert drop_reason(prose(49) + " .", DEFAULTS) == "gopher_quality.short_doc"
    few = GopherQualityConfig(max_doc_words=60)
    assert drop_reason(prose(60), few) is None
    assert drop_reason(prose(61), few) == "gopher_quality.long_doc"
    assert drop_reason("", DEFAULTS) == "gopher_quality.short_doc"


def test_mean_word_length_bounds():
    # 2 stop words of 3 letters and 48 words of n letters.
    def mean_of(letters: int) -> str:
        return " ".join(["the", "and"] + ["x" * letters] * 48)

    assert drop_reason(mean_of(3), DEFAULTS) is None  # mean exactly 3
    assert drop_reason(mean_of(2), DEFAULTS) == "gopher_quality.short_avg_word_length"
    assert drop_reason(mean_of(10), DEFAULTS) is None  # (6 + 480) / 50 = 9.72
    assert drop_reason(mean_of(11), DEFAULTS) == "gopher_quality.long_avg_word_length"


def test_hashes_and_ellipses_per_word():
    # "#" and "..." are words of their own, counted among all words: 5/55 <= 0.1 < 6/56.
    assert drop_reason(prose(50) + " #" * 5, DEFAULTS) is None
    assert drop_reason(prose(50) + " #" * 6, DEFAULTS) == "gopher_quality.too_many_hashes"
    # 51 words and 5 ellipses (5/56), then 6 (6/57); not ending the line, which is the next rule's business.
    assert drop_reason(" ...".join([prose(25)] * 2) + " ..." * 4 + " river", DEFAULTS) is None
    assert drop_reason(" …".join([prose(25)] * 2) + " …" * 5 + " river", DEFAULTS) == "gopher_quality.too_many_ellipsis"


def test_bullet_and_ellipsis_lines():
    line = prose(10)
    assert drop_reason("\n".join(["- " + line] * 9 + [line]), DEFAULTS) is None  # 90% is not more than 90%
    assert drop_reason("\n".join(["  • " + line] * 10), DEFAULTS) == "gopher_quality.too_many_bullet_lines"
    three_of_ten = [line + " ..."] * 3 + [line] * 7
    assert drop_reason("\n".join(three_of_ten), DEFAULTS) is None
    four_of_ten = [line + "…"] * 4 + [line] * 6
    assert drop_reason("\n".join(four_of_ten), DEFAULTS) == "gopher_quality.too_many_ellipsis_lines"


def test_words_with_a_letter():
    # 50 words, of which numbers: 10 -> 80% with a letter (kept), 11 -> 78% (dropped).
    assert drop_reason(" ".join(["the", "and"] + ["river"] * 38 + ["2024"] * 10), DEFAULTS) is None
    assert drop_reason(" ".join(["the", "and"] + ["river"] * 37 + ["2024"] * 11), DEFAULTS) == (
        "gopher_quality.few_alpha_words"
    )


def test_stop_words_are_distinct_and_case_sensitive():
    assert drop_reason(" ".join(["the"] * 10 + ["river"] * 40), DEFAULTS) == "gopher_quality.few_stop_words"
    assert drop_reason(" ".join(["The", "And"] + ["river"] * 48), DEFAULTS) == "gopher_quality.few_stop_words"
    assert drop_reason(" ".join(["the", "with"] + ["river"] * 48), DEFAULTS) is None


def test_first_failing_rule_is_reported():
    # Too short and without stop words: short_doc comes first in datatrove's order.
    assert drop_reason("river " * 10, DEFAULTS) == "gopher_quality.short_doc"


def test_apply_splits_the_table_and_carries_other_columns():
    table = pa.table({"id": ["a", "b"], "text": [prose(60), prose(10)], "source": ["x", "y"]})
    outcome = apply(table, DEFAULTS)
    assert outcome.kept.schema == table.schema
    assert outcome.kept.to_pydict() == {"id": ["a"], "text": [prose(60)], "source": ["x"]}
    assert outcome.dropped.to_pydict() == {
        "id": ["b"], "text": [prose(10)], "source": ["y"], "reason": ["gopher_quality.short_doc"]
    }


@pytest.mark.parametrize(
    "values",
    [
        {"min_doc_words": 100, "max_doc_words": 50},
        {"min_avg_word_length": -1},
        {"max_bullet_lines_ratio": 1.5},
        {"min_stop_words": 3, "stop_words": ["the", "the"]},
    ],
)
def test_config_rejects_impossible_values(values):
    with pytest.raises(ConfigError):
        GopherQualityConfig(**values)
