"""The word splitter against spaCy's blank English tokenizer, on the constructs the corpus is full of.

Each expectation is what `spacy.blank("en")` gives (whitespace tokens dropped, as datatrove does).
"""

from __future__ import annotations

import pytest

from pipelines.filters.words import split_words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("The cat sat.", ["The", "cat", "sat", "."]),
        ('He said: "stop (now)!"', ["He", "said", ":", '"', "stop", "(", "now", ")", "!", '"']),
        (
            "Don't stop, it's fine; I'm sure.",
            ["Do", "n't", "stop", ",", "it", "'s", "fine", ";", "I", "'m", "sure", "."],
        ),
        ("cannot dont id", ["can", "not", "do", "nt", "i", "d"]),  # contractions without apostrophe
        ("(e.g., Mr. Smith) a. A. U.S.A.", ["(", "e.g.", ",", "Mr.", "Smith", ")", "a.", "A.", "U.S.A."]),
        ("well-known and/or key=value", ["well", "-", "known", "and/or", "key", "=", "value"]),
        ("/usr/bin/foo --help x86_64", ["/usr", "/", "bin", "/", "foo", "--help", "x86_64"]),
        ("1,000 2020-01-01", ["1,000", "2020", "-", "01", "-", "01"]),
        ("64MB of 1.5GB, 10km.", ["64", "MB", "of", "1.5", "GB", ",", "10", "km", "."]),
        ("end.The foo...bar", ["end", ".", "The", "foo", "...", "bar"]),
        ("(http://kernel.org/doc/admin-guide/a.html).", ["(", "http://kernel.org/doc/admin-guide/a.html", ")", "."]),
        ("<first-last@debian.org> wrote", ["<", "first-last@debian.org", ">", "wrote"]),
        ("$HOME #include <stdio.h>", ["$", "HOME", "#", "include", "<", "stdio.h", ">"]),
        ("def main(): C++", ["def", "main", "(", "):", "C++"]),  # "):" is one of spaCy's emoticons
        ("├──foo 题目:《元日》", ["├", "─", "─", "foo", "题目", ":", "《元日", "》"]),
        ("chunk—like: a-b/c=d.", ["chunk", "—", "like", ":", "a", "-", "b", "/", "c", "=", "d."]),  # "d.": as "a."
        ("  tabs\tand\n\nnewlines  ", ["tabs", "and", "newlines"]),
        ("", []),
    ],
)
def test_words_are_spacy_english_tokens(text, words):
    assert split_words(text) == words

