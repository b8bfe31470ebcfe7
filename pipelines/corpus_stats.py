"""Accounting of the corpus build: per stage, documents and bytes in, kept and dropped by reason, time;
and what the job reports of it: stats.json (common/job_harness.py writes it, logs it to MLflow and prints
its table), the per-stage lines of that table, the error of a build that kept nothing.

Each read task returns one `StageTally` per stage; the driver adds them up (in task order, so the
totals do not depend on which task finished first) and prints them as a table.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from common.job_harness import STATS


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
    header = f"{'stage':<20} {'docs in':>10} {'kept':>10} {'MB in':>9} {'MB kept':>9} {'cpu s':>8}   dropped by reason"
    lines = [header, "-" * (len(header) + 10)]
    for name, tally in stages.items():
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in tally.dropped.most_common())
        extra = ", ".join(f"{key} {count:,}" for key, count in sorted(tally.counts.items()))
        lines.append(
            f"{name:<20} {tally.documents_in:>10,} {tally.documents_kept:>10,} {tally.bytes_in / 1e6:>9.2f} "
            f"{tally.bytes_kept / 1e6:>9.2f} {tally.seconds:>8.1f}   {reasons}{'; ' + extra if extra else ''}"
        )
    return lines


def build_stats(
    *, files: int, shards: list[dict], cleans: list[dict], dedups: list[dict], writes: list[dict], seconds: dict[str, float]
) -> dict:
    """stats.json from the results of the three rounds (in task order) and the manifest's shard entries."""
    documents_kept, bytes_kept = sum(s["documents"] for s in shards), sum(s["bytes"] for s in shards)
    stages = sum_stages([r["stages"] for r in cleans])
    stages["dedup"] = StageTally(
        documents_in=sum(r["documents"] for r in cleans),
        bytes_in=sum(w["bytes"] + w["duplicate_bytes"] for w in writes),
        documents_kept=documents_kept,
        bytes_kept=bytes_kept,
        dropped=Counter(duplicate=sum(d["duplicates"] for d in dedups)),
        dropped_bytes=Counter(duplicate=sum(w["duplicate_bytes"] for w in writes)),
        seconds=seconds["dedup"],
    )
    dropped: Counter = Counter()
    for tally in stages.values():
        dropped.update(tally.dropped)
    return {
        "files": files,
        "read_tasks": len(cleans),
        "shards": len(shards),
        "documents_in": stages["read"].documents_in,
        "documents_kept": documents_kept,
        "bytes_in": stages["read"].bytes_in,
        "bytes_kept": bytes_kept,
        "dropped": dict(sorted(dropped.items())),
        "quarantined": sum(stages["read"].dropped.values()),
        "blank_lines": sum(r["blank_lines"] for r in cleans),
        "skipped_records": dict(sum((Counter(r["skipped_records"]) for r in cleans), Counter())),
        "stages": {name: tally.to_dict() for name, tally in stages.items()},
        "seconds": {name: round(value, 3) for name, value in seconds.items()},
        "peak_rss_mb": {
            name: max(r["peak_rss_mb"] for r in results) for name, results in (("clean", cleans), ("dedup", dedups), ("write", writes))
        },
    }


def summary_lines(stats: dict) -> list[str]:
    """The corpus build's lines of its end-of-job table (common/job_harness.py): the per-stage table, then
    what was quarantined and skipped."""
    lines = stage_table({name: StageTally.from_dict(values) for name, values in stats["stages"].items()})
    if stats["quarantined"]:
        lines.append(f"{stats['quarantined']:,} records quarantined (quarantine.jsonl): {stats['stages']['read']['dropped']}")
    if stats["skipped_records"]:
        lines.append(f"records that are not documents, skipped: {stats['skipped_records']}")
    return lines


def nothing_kept(stats: dict, output_dir: Path) -> str:
    """The error of a build that kept no document: what dropped the most, so the fix (a setting, the
    inputs) is found at once instead of at the next stage."""
    dropped = stats["dropped"]
    culprit = f"; {max(dropped, key=dropped.get)} dropped the most ({max(dropped.values()):,})" if dropped else ""
    return (f"corpus_build kept no document of {stats['documents_in']:,}{culprit}; see {output_dir / STATS} "
            "for every stage's counts, and loosen its settings or check the inputs")
