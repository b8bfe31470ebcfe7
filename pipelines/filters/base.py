"""What every stage of the cleaning pipeline returns, and the helpers that build it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class FilterOutcome:
    """A stage's result: the rows kept (text possibly rewritten), the rows dropped with a `reason`
    column, and extra counters (e.g. `pii.emails`)."""

    kept: pa.Table
    dropped: pa.Table
    counts: Counter = field(default_factory=Counter)


def split_by_reason(
    table: pa.Table, reasons: pa.Array | pa.ChunkedArray | list[str | None], texts: list[str] | None = None
) -> FilterOutcome:
    """Rows with a null reason are kept; the others are dropped with their reason.

    `texts`, one per row, replaces the kept rows' `text` (a stage that rewrites documents); dropped rows
    keep the text they came with, so a reader of the dropped samples sees what the stage saw.
    """
    reasons = pa.array(reasons, type=pa.string()) if isinstance(reasons, list) else reasons
    drop = pc.is_valid(reasons)
    kept = table.filter(pc.invert(drop))
    if texts is not None:
        field_ = table.schema.field("text")
        kept_texts = pa.array([text for text, reason in zip(texts, reasons.to_pylist()) if reason is None], field_.type)
        kept = kept.set_column(table.schema.get_field_index("text"), field_, kept_texts)
    dropped = table.filter(drop).append_column("reason", pc.filter(reasons, drop).cast(pa.string()))
    return FilterOutcome(kept, dropped)


def apply_document_filter(table: pa.Table, drop_reason: Callable[[str], str | None]) -> FilterOutcome:
    """Apply a per-document decision `drop_reason(text) -> reason or None` to every row."""
    return split_by_reason(table, [drop_reason(text) for text in table["text"].to_pylist()])


def apply_document_rewrite(table: pa.Table, rewrite: Callable[[str, Counter], tuple[str, str | None]]) -> FilterOutcome:
    """Apply `rewrite(text, counts) -> (new text, reason or None)` to every row; it may add to `counts`."""
    counts: Counter = Counter()
    results = [rewrite(text, counts) for text in table["text"].to_pylist()]
    outcome = split_by_reason(table, [reason for _, reason in results], texts=[text for text, _ in results])
    outcome.counts.update(counts)
    return outcome
