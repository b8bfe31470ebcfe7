"""FineWeb quality rules on hand-built documents: each reason, at its threshold and just past it."""

from __future__ import annotations

import pytest

from common.config import ConfigError
from pipelines.filters.fineweb import FineWebConfig, drop_reason
from pipelines.filters.words import split_words

DEFAULTS = FineWebConfig()


def line(i: int, end: str = ".") -> str:
    """A line of its own, over 30 characters, eight words."""
    return f"Line number {i} talks about something else{end}"


def test_prose_passes():
    assert drop_reason("\n".join(line(i) for i in range(20)), DEFAULTS) is None
    assert drop_reason(" \n\n\t", DEFAULTS) == "fineweb.empty"


def test_lines_ending_in_punctuation():
    # 12 of 100 lines end in punctuation: 0.12 is enough, 0.11 is not.
    twelve = [line(i) for i in range(12)] + [line(i, end="") for i in range(12, 100)]
    assert drop_reason("\n".join(twelve), DEFAULTS) is None
    eleven = [line(i) for i in range(11)] + [line(i, end="") for i in range(11, 100)]
    assert drop_reason("\n".join(eleven), DEFAULTS) == "fineweb.line_punct_ratio"
    none = "\n".join(line(i, end="") for i in range(10))
    assert drop_reason(none, DEFAULTS) == "fineweb.line_punct_ratio"
    assert drop_reason(none, FineWebConfig(line_punct_exclude_zero=True)) is None
    assert drop_reason("\n".join(line(i, end="。") for i in range(10)), DEFAULTS) is None  # any script's full stop


def test_short_lines():
    # Lines of 30 characters or fewer: 67 of 100 pass (0.67), 68 do not.
    def with_short(n: int) -> str:
        return "\n".join([f"Short {i:3d}." for i in range(n)] + [line(i) for i in range(n, 100)])

    assert drop_reason(with_short(67), DEFAULTS) is None
    assert drop_reason(with_short(68), DEFAULTS) == "fineweb.short_line_ratio"


def test_duplicated_line_characters():
    lines = [line(i) for i in range(200)]
    assert drop_reason("\n".join(lines + lines[:1]), DEFAULTS) is None  # one repeat: 0.5% of the characters
    assert drop_reason("\n".join(lines + lines[:3]), DEFAULTS) == "fineweb.char_dup_ratio"


def test_newlines_per_word():
    # Two long words and a period a line: 19 newlines for 60 words, over 0.3: a list, not prose.
    text = "\n".join(f"Incomprehensibilities{i} supercalifragilistic." for i in range(20))
    assert drop_reason(text, DEFAULTS) == "fineweb.list_ratio"
    # Counted in words, not whitespace-separated chunks: each line is one chunk but eight words.
    text = "\n".join(f"Uncharacteristically,wonderful,c,d{i}." for i in range(20))
    assert len(split_words(text)) == 20 * 8
    assert drop_reason(text, DEFAULTS) is None


@pytest.mark.parametrize("values", [{"min_line_punct_ratio": 1.2}, {"short_line_length": -1}])
def test_config_rejects_impossible_values(values):
    with pytest.raises(ConfigError):
        FineWebConfig(**values)
