"""Gopher repetition rules: hand-built documents for each reason, and the compiled n-gram counting
checked against a plain transcription of the definitions (datatrove's) on random texts."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from common.config import ConfigError
from pipelines.filters.gopher_repetition import GopherRepetitionConfig, drop_reason
from pipelines.filters.words import split_words

DEFAULTS = GopherRepetitionConfig()
NO_RULES = GopherRepetitionConfig(
    dup_para_frac=1, dup_para_char_frac=1, dup_line_frac=1, dup_line_char_frac=1, top_n_gram_fracs=[1] * 3,
    dup_n_gram_fracs=[1] * 6,
)  # every rule off: tests switch on the one they look at


def sentence(i: int) -> str:
    """A line of its own: ten words no other line shares."""
    return " ".join(f"w{i}x{j}" for j in range(10))


def test_varied_text_passes():
    assert drop_reason("\n".join(sentence(i) for i in range(30)), DEFAULTS) is None
    assert drop_reason("", DEFAULTS) == "gopher_repetition.empty"


def test_duplicate_paragraphs():
    unique = [sentence(i) for i in range(7)]
    only_this_rule = replace(NO_RULES, dup_para_frac=0.3)
    # 3 repeats in 10 paragraphs is 0.3, not more; 4 in 10 is.
    assert drop_reason("\n\n".join(unique + [unique[0]] * 3), only_this_rule) is None
    four = "\n\n".join(unique[:6] + [unique[0]] * 4)
    assert drop_reason(four, only_this_rule) == "gopher_repetition.dup_para_frac"
    assert drop_reason(four, DEFAULTS) == "gopher_repetition.dup_para_frac"  # the first rule in order
    # One long paragraph repeated once: 1 of 11 paragraphs, but most of the characters.
    long = " ".join(sentence(i) for i in range(50))
    assert drop_reason("\n\n".join(unique[:9] + [long, long]), DEFAULTS) == "gopher_repetition.dup_para_char_frac"


def test_duplicate_lines():
    unique = [sentence(i) for i in range(7)]
    assert drop_reason("\n".join(unique[:6] + [unique[0]] * 4), DEFAULTS) == "gopher_repetition.dup_line_frac"
    long = " ".join(sentence(i) for i in range(50))
    assert drop_reason("\n".join(unique + [long, long]), DEFAULTS) == "gopher_repetition.dup_line_char_frac"


def test_top_n_grams():
    filler = " ".join(sentence(i) for i in range(20))
    # "alpha beta" 40 times: 40 * 10 characters of 2,800 or so -> over 0.20 of the text.
    assert drop_reason(filler + " alpha beta" * 40, DEFAULTS) == "gopher_repetition.top_2_gram"
    assert drop_reason(filler + " alpha beta" * 10, DEFAULTS) is None


def test_duplicated_n_grams():
    words = [f"u{i}" for i in range(300)]
    # A 100-word passage said twice: 290 of 1,779 characters in repeated 5-grams, each 2-gram at most twice.
    text = " ".join(words[:150] + words[:100] + words[150:])
    assert drop_reason(text, DEFAULTS) == "gopher_repetition.dup_5_gram"
    text = " ".join(words[:150] + words[:20] + words[150:])
    assert drop_reason(text, DEFAULTS) is None


def reference_reason(text: str, config: GopherRepetitionConfig) -> str | None:
    """The n-gram rules exactly as datatrove writes them (strings joined in Python), paragraph and
    line rules switched off by the caller."""
    words = split_words(text)
    for n, max_frac in zip(config.top_n_grams, config.top_n_gram_fracs):
        grams = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
        if grams:
            gram, count = Counter(grams).most_common(1)[0]
            if len(gram) * count / len(text) > max_frac:
                return f"gopher_repetition.top_{n}_gram"
    for n, max_frac in zip(config.dup_n_grams, config.dup_n_gram_fracs):
        seen, repeated, i = set(), 0, 0
        while i < len(words) - n + 1:
            gram = "\x00".join(words[i : i + n])  # a separator: datatrove's "" join can merge two n-grams
            if gram in seen:
                repeated += len(gram) - (n - 1)
                i += n
            else:
                seen.add(gram)
                i += 1
        if repeated / len(text) > max_frac:
            return f"gopher_repetition.dup_{n}_gram"
    return None


@pytest.mark.parametrize("seed", range(40))
def test_n_gram_rules_match_their_definition(seed):
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(rng.choice([3, 8, 30, 200]))] + [",", "."]
    text = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 400)))
    config = GopherRepetitionConfig(
        dup_para_frac=1,
        dup_para_char_frac=1,
        dup_line_frac=1,
        dup_line_char_frac=1,
        top_n_gram_fracs=[rng.uniform(0.05, 0.6) for _ in range(3)],
        dup_n_gram_fracs=[rng.uniform(0.02, 0.5) for _ in range(6)],
    )
    assert drop_reason(text, config) == reference_reason(text, config)


@pytest.mark.parametrize(
    "values",
    [{"dup_line_frac": 2}, {"top_n_grams": [2, 3]}, {"dup_n_grams": [0, 6, 7, 8, 9, 10]}],
)
def test_config_rejects_impossible_values(values):
    with pytest.raises(ConfigError):
        GopherRepetitionConfig(**values)
