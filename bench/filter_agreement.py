"""Do our document filters decide like datatrove's? Per filter, on the debian-docs corpus.

    .venv/bin/python bench/filter_agreement.py [--every K] [--examples N]

Runs each of our filters (pipelines/filters/, published defaults) and datatrove 0.10.1's same one
(GopherQualityFilter, GopherRepetitionFilter, C4QualityFilter, FineWebQualityFilter, PIIFormatter; English)
on the same texts, each on the text as read (not chained), every document of ../shared/corpora/debian-docs
(or every K-th). Prints per filter: the share of documents with the same keep/drop decision, the
disagreements by (our reason, datatrove's reason), the documents both drop for reasons that differ, how
many texts both keep come out identical (C4 and PII rewrite text), and a few disagreements with what
explains them (where our words or sentences differ from spaCy's). About 12 minutes for the whole corpus,
nearly all of it datatrove's.

datatrove needs the `regex` package besides spaCy. Its PII formatter takes placeholders in turn across
documents; ours restarts the turn in each document, so datatrove's turn is reset before each document.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpora" / "debian-docs"

from pipelines.filters import FILTERS, c4, fineweb, gopher_quality, gopher_repetition, pii  # noqa: E402
from pipelines.filters.words import split_words  # noqa: E402

CONFIGS = {name: config_class() for name, (config_class, _) in FILTERS.items()}  # the published defaults
# Our reason -> datatrove's, where the names differ.
DATATROVE_REASONS = {
    "gopher_quality.short_doc": "gopher_short_doc",
    "gopher_quality.long_doc": "gopher_long_doc",
    "gopher_quality.short_avg_word_length": "gopher_below_avg_threshold",
    "gopher_quality.long_avg_word_length": "gopher_above_avg_threshold",
    "gopher_quality.too_many_hashes": "gopher_too_many_hashes",
    "gopher_quality.too_many_ellipsis": "gopher_too_many_ellipsis",
    "gopher_quality.too_many_bullet_lines": "gopher_too_many_bullets",
    "gopher_quality.too_many_ellipsis_lines": "gopher_too_many_end_ellipsis",
    "gopher_quality.few_alpha_words": "gopher_below_alpha_threshold",
    "gopher_quality.few_stop_words": "gopher_enough_stop_words",
} | {f"gopher_repetition.dup_{n}_gram": f"duplicated_{n}_n_grams" for n in range(5, 11)}


def read_corpus(every: int = 1, corpus: Path = CORPUS) -> list[dict]:
    """Every `every`-th document of the corpus's docs-*.jsonl.zst files, in file order."""
    documents, index = [], 0
    for path in sorted(corpus.glob("docs-*.jsonl.zst")):
        with path.open("rb") as file:
            for line in io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(file), encoding="utf-8"):
                if index % every == 0:
                    documents.append(json.loads(line))
                index += 1
    return documents


def ours(text: str) -> dict[str, tuple[str | None, str]]:
    """Per filter: (drop reason or None, output text) of our filters, each on `text`."""
    c4_text, c4_reason, _ = c4.clean(text, CONFIGS["c4"])
    return {
        "gopher_quality": (gopher_quality.drop_reason(text, CONFIGS["gopher_quality"]), text),
        "gopher_repetition": (gopher_repetition.drop_reason(text, CONFIGS["gopher_repetition"]), text),
        "c4": (c4_reason, c4_text),
        "fineweb": (fineweb.drop_reason(text, CONFIGS["fineweb"]), text),
        "pii": (None, pii.redact(text, CONFIGS["pii"])[0]),
    }


class Datatrove:
    """datatrove's filters with their defaults, imported only when used (they need spaCy and regex)."""

    def __init__(self):
        from datatrove.pipeline.filters import (
            C4QualityFilter,
            FineWebQualityFilter,
            GopherQualityFilter,
            GopherRepetitionFilter,
        )
        from datatrove.pipeline.formatters import PIIFormatter

        self.filters = {
            "gopher_quality": GopherQualityFilter(),
            "gopher_repetition": GopherRepetitionFilter(),
            "c4": C4QualityFilter(),
            "fineweb": FineWebQualityFilter(),
        }
        self.pii = PIIFormatter()

    def __call__(self, text: str) -> dict[str, tuple[str | None, str]]:
        """Per filter: (drop reason or None, output text), each on `text`."""
        from datatrove.data import Document

        results = {}
        for name, step in self.filters.items():
            document = Document(text=text, id="")
            result = step.filter(document)  # True, or (False, reason)
            results[name] = (None if result is True else result[1], document.text)
        for replacer in (self.pii.emails_replacer, self.pii.ip_replacer):
            replacer._replace_i = 0  # start each document with the first placeholder, as ours does
        results["pii"] = (None, self.pii.format(text))
        return results


@dataclass
class Agreement:
    """What one filter's comparison found."""

    documents: int = 0
    same_decision: int = 0
    disagreements: Counter = field(default_factory=Counter)  # (our reason, datatrove's reason) -> documents
    other_reason: Counter = field(default_factory=Counter)  # both drop, reasons differ
    texts_compared: int = 0
    texts_identical: int = 0
    examples: list = field(default_factory=list)  # (document, our reason, datatrove's reason)

    @property
    def percent(self) -> float:
        return 100 * self.same_decision / max(self.documents, 1)


def compare(documents: list[dict], datatrove: Datatrove, examples: int = 3) -> dict[str, Agreement]:
    """Run both sides on every document and tally the agreement of each filter."""
    agreements = {name: Agreement() for name in FILTERS}
    for document in documents:
        mine, theirs = ours(document["text"]), datatrove(document["text"])
        for name, agreement in agreements.items():
            (our_reason, our_text), (their_reason, their_text) = mine[name], theirs[name]
            agreement.documents += 1
            if (our_reason is None) != (their_reason is None):
                agreement.disagreements[(our_reason, their_reason)] += 1
                if len(agreement.examples) < examples:
                    agreement.examples.append((document, our_reason, their_reason))
                continue
            agreement.same_decision += 1
            if our_reason is None:
                agreement.texts_compared += 1
                agreement.texts_identical += our_text == their_text
            elif DATATROVE_REASONS.get(our_reason, our_reason.split(".", 1)[1]) != their_reason:
                agreement.other_reason[(our_reason, their_reason)] += 1
    return agreements


def explain(name: str, text: str) -> str:
    """Where our view of `text` differs from spaCy's (datatrove's words and sentences)."""
    from datatrove.utils.text import split_into_sentences, split_into_words

    if name == "c4":  # sentences of the lines C4 keeps, counted both ways
        kept, _, _ = c4.clean(text, c4.C4Config(min_num_sentences=0))
        lines = (kept or "").splitlines()
        ours_count = sum(map(c4.count_sentences, lines))
        theirs_count = sum(len(split_into_sentences(line)) for line in lines)
        text = kept or ""
        summary = f"sentences in kept lines: ours {ours_count}, spaCy {theirs_count}; "
    else:
        summary = ""
    mine, theirs = split_words(text), split_into_words(text)
    differences = [
        f"{' '.join(mine[i1:i2])!r} vs {' '.join(theirs[j1:j2])!r}"
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, mine, theirs, autojunk=False).get_opcodes()
        if op != "equal"
    ]
    if not differences and name == "gopher_repetition":
        differences = ["none; datatrove joins the words of duplicated n-grams without a separator ('a bc' = 'ab c')"]
    words = f"words: ours {len(mine)}, spaCy {len(theirs)}; ours vs spaCy: {'; '.join(differences[:3]) or 'none'}"
    return summary + words


def report(agreements: dict[str, Agreement]) -> None:
    for name, agreement in agreements.items():
        print(f"\n== {name}: {agreement.percent:.3f}% same decision ({agreement.same_decision}/{agreement.documents})")
        for (our_reason, their_reason), n in agreement.disagreements.most_common():
            print(f"   {n:6d}  ours {our_reason or 'kept'}  /  datatrove {their_reason or 'kept'}")
        for (our_reason, their_reason), n in agreement.other_reason.most_common():
            print(f"   {n:6d}  both drop: ours {our_reason}, datatrove {their_reason}")
        if name in ("c4", "pii"):
            print(f"   kept texts identical: {agreement.texts_identical}/{agreement.texts_compared}")
        for document, our_reason, their_reason in agreement.examples:
            print(f"   e.g. {document['id']} ({len(document['text'])} chars): ours {our_reason or 'kept'}, "
                  f"datatrove {their_reason or 'kept'}; {explain(name, document['text'])[:400]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=1, help="compare every K-th document (default: all)")
    parser.add_argument("--examples", type=int, default=3, help="disagreements shown per filter")
    args = parser.parse_args()
    documents = read_corpus(args.every)
    start = time.perf_counter()
    agreements = compare(documents, Datatrove(), args.examples)
    print(f"{len(documents)} documents ({sum(len(d['text']) for d in documents) / 1e6:.1f} M characters) "
          f"compared in {time.perf_counter() - start:.0f} s")
    report(agreements)


if __name__ == "__main__":
    main()
