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


def split_by_reason(table: pa.Table, reasons: pa.Array | pa.ChunkedArray | list[str | None]) -> FilterOutcome:
    """Rows with a null reason are kept; the others are dropped with their reason."""
    reasons = pa.array(reasons, type=pa.string()) if isinstance(reasons, list) else reasons
    drop = pc.is_valid(reasons)
    kept = table.filter(pc.invert(drop))
    dropped = table.filter(drop).append_column("reason", pc.filter(reasons, drop).cast(pa.string()))
    return FilterOutcome(kept, dropped)


def apply_document_filter(table: pa.Table, drop_reason: Callable[[str], str | None]) -> FilterOutcome:
    """Apply a per-document decision `drop_reason(text) -> reason or None` to every row."""
    return split_by_reason(table, [drop_reason(text) for text in table["text"].to_pylist()])
