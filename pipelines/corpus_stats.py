"""Per-stage accounting of the corpus build: documents and bytes in, kept and dropped by reason, time.

Each read task returns one `StageTally` per stage; the driver adds them up (in task order, so the
totals do not depend on which task finished first) and prints them as a table.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields

import pyarrow as pa
import pyarrow.compute as pc


def text_bytes(table: pa.Table) -> int:
    return (pc.sum(pc.binary_length(table["text"])).as_py() or 0) if table.num_rows else 0


@dataclass
class StageTally:
    documents_in: int = 0
    bytes_in: int = 0
    documents_kept: int = 0
    bytes_kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    """Documents dropped, by reason."""
    dropped_bytes: Counter = field(default_factory=Counter)
    counts: Counter = field(default_factory=Counter)
    """What the stage counted besides drops (e.g. pii.emails, c4.lines_removed)."""
    seconds: float = 0.0

    def record(self, before: pa.Table, kept: pa.Table, dropped: pa.Table, counts: Counter, seconds: float) -> None:
        self.documents_in += before.num_rows
        self.bytes_in += text_bytes(before)
        self.documents_kept += kept.num_rows
        self.bytes_kept += text_bytes(kept)
        if dropped.num_rows:
            sizes = pc.binary_length(dropped["text"]).to_pylist()
            for reason, size in zip(dropped["reason"].to_pylist(), sizes):
                self.dropped[reason] += 1
                self.dropped_bytes[reason] += size
        self.counts.update(counts)
        self.seconds += seconds

    def add(self, other: StageTally) -> None:
        for name in ("documents_in", "bytes_in", "documents_kept", "bytes_kept", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.dropped.update(other.dropped)
        self.dropped_bytes.update(other.dropped_bytes)
        self.counts.update(other.counts)

    def to_dict(self) -> dict:
        # Not dataclasses.asdict: it rebuilds a Counter from its (key, value) pairs, counting the pairs.
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["seconds"] = round(self.seconds, 3)
        for name in ("dropped", "dropped_bytes", "counts"):
            values[name] = dict(sorted(values[name].items()))
        return values

    @classmethod
    def from_dict(cls, values: dict) -> StageTally:
        values = dict(values)
        for name in ("dropped", "dropped_bytes", "counts"):
            values[name] = Counter(values.get(name, {}))
        return cls(**values)


def sum_stages(per_task: list[dict[str, dict]]) -> dict[str, StageTally]:
    """Stage name -> the tallies of every task added up, stages in pipeline order."""
    totals: dict[str, StageTally] = {}
    for stages in per_task:
        for name, values in stages.items():
            totals.setdefault(name, StageTally()).add(StageTally.from_dict(values))
    return totals


def stage_table(stages: dict[str, StageTally]) -> list[str]:
    """The per-stage table printed at the end of the job."""
    header = f"  {'stage':<20} {'docs in':>10} {'kept':>10} {'MB in':>9} {'MB kept':>9} {'cpu s':>8}   dropped by reason"
    lines = [header, "  " + "-" * (len(header) + 10)]
    for name, tally in stages.items():
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in tally.dropped.most_common())
        extra = ", ".join(f"{key} {count:,}" for key, count in sorted(tally.counts.items()))
        lines.append(
            f"  {name:<20} {tally.documents_in:>10,} {tally.documents_kept:>10,} {tally.bytes_in / 1e6:>9.2f} "
            f"{tally.bytes_kept / 1e6:>9.2f} {tally.seconds:>8.1f}   {reasons}{'; ' + extra if extra else ''}"
        )
    return lines
