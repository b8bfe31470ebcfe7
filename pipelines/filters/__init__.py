"""Document quality filters of the corpus cleaning pipeline: pure functions of Arrow tables.

Each module holds one filter: a typed config whose defaults are the published thresholds, a per-document
function (`drop_reason`, `clean` or `redact`) and `apply(table, config) -> FilterOutcome`. `FILTERS` lists
them in the order the pipeline runs them:

1. gopher_quality and 2. gopher_repetition (Gopher, arXiv:2112.11446): cheap document-level rules first,
   on the text as it came, as in Gopher's own pipeline (quality, then repetition). FineWeb's pipeline runs
   repetition first; since both only drop, the set of kept documents is the same either way, only which
   reason a document failing both is counted under differs.
3. c4 (Raffel et al. 2020): removes lines, so it comes after the rules that judge the page as written.
4. fineweb (arXiv:2406.17557): on the C4-cleaned text, as FineWeb runs it.
5. pii: last, so no filter sees placeholders, and only kept text is rewritten.

`run_filters` applies several in one pass per document, splitting its words once for all of them.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from common.config import ConfigError
from pipelines.filters import c4, fineweb, gopher_quality, gopher_repetition, pii
from pipelines.filters.base import FilterOutcome, apply_document_rewrite
from pipelines.filters.words import split_words

FILTERS = {
    "gopher_quality": (gopher_quality.GopherQualityConfig, gopher_quality.apply),
    "gopher_repetition": (gopher_repetition.GopherRepetitionConfig, gopher_repetition.apply),
    "c4": (c4.C4Config, c4.apply),
    "fineweb": (fineweb.FineWebConfig, fineweb.apply),
    "pii": (pii.PIIConfig, pii.apply),
}


# The filters that judge the text as it came, sharing its words.
_WORD_FILTERS = {"gopher_quality": gopher_quality.drop_reason, "gopher_repetition": gopher_repetition.drop_reason}


def run_filters(table: pa.Table, configs: dict[str, object]) -> FilterOutcome:
    """The filters named in `configs` (name -> its config) applied in `FILTERS` order, one document at a
    time: the same outcome as calling their `apply` one after the other, with words split once."""
    unknown = sorted(set(configs) - set(FILTERS))
    if unknown:
        raise ConfigError(f"unknown filter {', '.join(unknown)}; known: {', '.join(FILTERS)}")

    def rewrite(text: str, counts: Counter) -> tuple[str, str | None]:
        words = split_words(text) if _WORD_FILTERS.keys() & configs.keys() else None
        for name, drop_reason in _WORD_FILTERS.items():
            if name in configs and (reason := drop_reason(text, configs[name], words)):
                return text, reason
        if "c4" in configs:
            cleaned, reason, removed = c4.clean(text, configs["c4"])
            if reason:
                return text, reason
            counts["c4.lines_removed"] += removed
            words, text = (words if cleaned == text else None), cleaned
        if "fineweb" in configs and (reason := fineweb.drop_reason(text, configs["fineweb"], words)):
            return text, reason
        if "pii" in configs:
            text, emails, ips = pii.redact(text, configs["pii"])
            counts["pii.emails"] += emails
            counts["pii.ips"] += ips
        return text, None

    return apply_document_rewrite(table, rewrite)

