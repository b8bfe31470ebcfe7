"""C4 cleaning rules: remove boilerplate lines, drop pages that are not prose.

Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer"
(JMLR 21, arXiv:1910.10683), section 2.2, plus two rules of its reference code (tensorflow_datasets
c4_utils: words over 1,000 characters, cookie and terms-of-use lines). Lines without terminal punctuation,
with fewer than 3 words, mentioning javascript or a cookie/terms policy are removed; a page mentioning
"lorem ipsum", holding a curly bracket, or left with fewer than 5 sentences is dropped. The kept text is
rewritten without the removed lines. Rules, order and reasons follow datatrove's C4QualityFilter (0.10.1),
which counts sentences with spaCy's rule-based sentencizer; `count_sentences` re-implements it on our words.
(C4's bad-words list is a separate filter, not applied here.)
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

import pyarrow as pa

from common.config import ConfigError
from pipelines.filters.base import FilterOutcome, apply_document_rewrite
from pipelines.filters.words import TERMINAL_PUNCTUATION, char_class, split_words

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")  # Wikipedia's "[1]", "[edit]"
END_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
# A token of punctuation only (spaCy's is_punct): it does not start a sentence.
_PUNCTUATION_WORD = re.compile(f"[{char_class(lambda c: unicodedata.category(c).startswith('P'))}]+")
# spaCy's sentencizer ends sentences at Unicode's sentence terminals, but for a few it does not list.
SENTENCE_ENDS = TERMINAL_PUNCTUATION - set("؝؞࠷࠹࠽࠾។៕៖៙៚᭽᭾⹓⹔")
_WHITESPACE_TOKEN = re.compile(r"\s{2,}|[^\S ]")  # spaCy makes a token of any whitespace but a single space


@dataclass(kw_only=True)
class C4Config:
    """Switches and thresholds of the C4 rules (defaults: the C4 paper and its reference code)."""

    remove_citations: bool = True
    """Delete Wikipedia-style citation marks ("[1]", "[edit]", "[citation needed]") from lines."""

    filter_no_terminal_punct: bool = True
    """Remove lines that do not end in . ? ! " or ' (or that end in an ellipsis)."""

    min_num_sentences: int = 5
    """Drop documents with fewer sentences than this in their kept lines (0: keep any non-empty result)."""

    min_words_per_line: int = 3
    """Remove lines with fewer whitespace-separated words than this."""

    max_word_length: int = 1000
    """Remove lines holding a word longer than this many characters."""

    filter_lorem_ipsum: bool = True
    """Drop documents with a kept line containing "lorem ipsum" (any case)."""

    filter_javascript: bool = True
    """Remove lines mentioning "javascript" (any case): "please enable JavaScript" banners."""

    filter_curly_bracket: bool = True
    """Drop documents with a kept line containing "{": code rather than prose."""

    filter_policy: bool = True
    """Remove lines about cookies, terms of use or privacy policies."""

    def __post_init__(self) -> None:
        for name in ("min_num_sentences", "min_words_per_line"):
            if getattr(self, name) < 0:
                raise ConfigError(f"c4: {name} must be >= 0, got {getattr(self, name)}")
        if self.max_word_length < 1:
            raise ConfigError(f"c4: max_word_length must be >= 1, got {self.max_word_length}")


def count_sentences(line: str) -> int:
    """Sentences in `line` by spaCy's sentencizer: a new one starts at the first token that is not
    punctuation after a sentence-ending mark (". ! ?" and the like, as a word of their own)."""
    pieces = _WHITESPACE_TOKEN.split(line)
    tokens = split_words(pieces[0])
    for piece in pieces[1:]:  # a whitespace token (" ") between pieces: not punctuation, so it counts
        tokens += [" ", *split_words(piece)]
    sentences, after_end = 1, False
    for word in tokens:
        if word in SENTENCE_ENDS:
            after_end = True
        elif after_end and not _PUNCTUATION_WORD.fullmatch(word):
            sentences += 1
            after_end = False
    return sentences


def clean(text: str, config: C4Config) -> tuple[str | None, str | None, int]:
    """(kept text, None, lines removed), or (None, drop reason, 0) when a C4 rule drops the document."""
    kept: list[str] = []
    sentences = removed = 0
    for line in text.splitlines():
        line = line.strip()
        words = line.split()
        if len(line) > config.max_word_length and any(len(word) > config.max_word_length for word in words):
            removed += 1
            continue
        if config.remove_citations:
            line = CITATION.sub("", line)
        if config.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith("...")):
            removed += bool(line)
            continue
        if len(words) < config.min_words_per_line:  # words as they were before citations went
            removed += bool(line)
            continue
        lowered = line.lower()
        if config.filter_lorem_ipsum and "lorem ipsum" in lowered:
            return None, "c4.lorem_ipsum", 0
        if config.filter_javascript and "javascript" in lowered:
            removed += 1
            continue
        if config.filter_curly_bracket and "{" in line:
            return None, "c4.curly_bracket", 0
        if config.filter_policy and any(phrase in lowered for phrase in POLICY_PHRASES):
            removed += 1
            continue
        if sentences < config.min_num_sentences:  # past the threshold, more sentences change nothing
            sentences += count_sentences(line)
        kept.append(line)
    if sentences < config.min_num_sentences or not kept:
        return None, "c4.too_few_sentences", 0
    return "\n".join(kept).strip(), None, removed


Config = C4Config  # the name the registry reads from every filter (pipelines/filters/__init__.py)


def apply(table: pa.Table, config: C4Config) -> FilterOutcome:
    """Rewrite each row's `text` without the lines C4 removes; drop the rows a C4 rule drops, with its reason.
    Counts `c4.lines_removed` (non-blank lines removed from the kept documents)."""

    def rewrite(text: str, counts: Counter) -> tuple[str, str | None]:
        cleaned, reason, removed = clean(text, config)
        counts["c4.lines_removed"] += removed
        return (text if cleaned is None else cleaned), reason

    return apply_document_rewrite(table, rewrite)
