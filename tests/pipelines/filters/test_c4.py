"""C4 rules: which lines go, which documents drop, the rewritten text, the sentence count."""

from __future__ import annotations

import pyarrow as pa
import pytest

from common.config import ConfigError
from pipelines.filters.c4 import C4Config, apply, clean, count_sentences

DEFAULTS = C4Config()
FIVE_SENTENCES = "\n".join(f"This is sentence number {i} of the page." for i in range(5))


def test_prose_is_kept_as_is():
    assert clean(FIVE_SENTENCES, DEFAULTS) == (FIVE_SENTENCES, None, 0)


@pytest.mark.parametrize(
    "line",
    [
        "A heading without punctuation",
        "It trails off...",
        "Too short.",  # two words
        "Please enable JavaScript to view this page.",
        "This site uses cookies to improve your experience.",
        "By using it you accept our Terms of Use.",
        "A word of " + "x" * 1001 + " letters.",
    ],
)
def test_boilerplate_lines_are_removed(line):
    assert clean(f"{FIVE_SENTENCES}\n{line}\n", DEFAULTS) == (FIVE_SENTENCES, None, 1)


def test_lines_are_stripped_and_citations_removed():
    text = "  The river is long.[1] \n" + FIVE_SENTENCES + "\nIt has many fish.[citation needed]"
    assert clean(text, DEFAULTS) == ("The river is long.\n" + FIVE_SENTENCES + "\nIt has many fish.", None, 0)


def test_pages_dropped_whole():
    assert clean(FIVE_SENTENCES + "\nLorem ipsum dolor sit amet.", DEFAULTS) == (None, "c4.lorem_ipsum", 0)
    assert clean(FIVE_SENTENCES + "\nWrite it as { key: value } here.", DEFAULTS) == (None, "c4.curly_bracket", 0)
    # A bracket on a line removed anyway (no terminal punctuation) does not drop the page.
    assert clean(FIVE_SENTENCES + "\nint main() {", DEFAULTS)[1] is None


def test_too_few_sentences():
    four = "\n".join(FIVE_SENTENCES.splitlines()[:4])
    assert clean(four, DEFAULTS) == (None, "c4.too_few_sentences", 0)
    assert clean("Short. Lines. Only", DEFAULTS) == (None, "c4.too_few_sentences", 0)
    assert clean(four, C4Config(min_num_sentences=4))[1] is None
    # Sentences are counted inside lines, not lines: one line of five sentences is enough.
    assert clean("One is here. Two is here. Three! Four? And five is here.", DEFAULTS)[1] is None


@pytest.mark.parametrize(
    ("line", "sentences"),
    [
        ("One sentence here.", 1),
        ("One. Two! Three? Four.", 4),
        ("It works, e.g. like this, i.e. well.", 1),  # abbreviations are words, not ends
        ('He said "stop." Then left.', 2),  # the quote after the period still ends the first
        ("Version 1.2.3 is out.", 1),
        ("Wait... what?! Really.", 2),  # "..." is not a sentence end of spaCy's; "?!" is one
        ("It ends. !", 1),
        ("It ends.   !", 2),  # extra spaces are a token of spaCy's, and not punctuation
    ],
)
def test_count_sentences(line, sentences):
    assert count_sentences(line) == sentences


def test_apply_rewrites_kept_text_and_counts_removed_lines():
    table = pa.table({"id": ["kept", "dropped"], "text": [FIVE_SENTENCES + "\nMenu\nHome", "No sentences here"]})
    outcome = apply(table, DEFAULTS)
    assert outcome.kept.to_pydict() == {"id": ["kept"], "text": [FIVE_SENTENCES]}
    assert outcome.dropped.to_pydict() == {
        "id": ["dropped"], "text": ["No sentences here"], "reason": ["c4.too_few_sentences"]
    }
    assert outcome.counts["c4.lines_removed"] == 2


@pytest.mark.parametrize("values", [{"min_num_sentences": -1}, {"max_word_length": 0}])
def test_config_rejects_impossible_values(values):
    with pytest.raises(ConfigError):
        C4Config(**values)
