"""Which copy of a duplicate survives: one priority, lower wins, for the exact and the fuzzy dedup.

Ties go to the first copy in input order in both dedups, so "input_order" is priority 0 for every
document. The configs read SURVIVOR_RULES and `check_survivor` at DAG parse time, which is why
pyarrow is imported inside `survivor_priority` only.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from common.config import ConfigError, one_of

SURVIVOR_RULES = ("input_order", "longest", "source_rank")



@dataclass(kw_only=True)
class SurvivorSettings:
    """The two keys both dedup configs share, with one meaning (each config calls `check_survivor`)."""

    survivor: str = one_of("input_order", SURVIVOR_RULES)
    """Which copy of a duplicate survives: input_order (the first in input order), longest (most UTF-8
    bytes of text, then input order) or source_rank (the source matching the earliest pattern of
    source_ranking, then input order)."""

    source_ranking: list[str] = field(default_factory=list)
    """For survivor=source_rank: glob patterns (fnmatch: *, ?, [...]) matched against each document's
    `source`, best first. A name without wildcards matches only itself; a source that matches no pattern
    ranks last. Must be empty for the other rules."""


def check_survivor(survivor: str, source_ranking: Sequence[str]) -> None:
    """Reject a rule that does not exist, and a ranking that means nothing: the ConfigError names the key."""
    if survivor not in SURVIVOR_RULES:
        raise ConfigError(f"survivor must be one of {', '.join(SURVIVOR_RULES)}, got {survivor!r}")
    if survivor == "source_rank" and not source_ranking:
        raise ConfigError("survivor=source_rank needs source_ranking (glob patterns on the source, best first)")
    if survivor != "source_rank" and source_ranking:
        raise ConfigError(f"source_ranking is read only with survivor=source_rank (survivor is {survivor!r}); empty it")
    blank = [p for p in source_ranking if not isinstance(p, str) or not p.strip()]
    if blank:
        raise ConfigError(f"source_ranking holds empty patterns: {blank!r}")
    repeated = sorted({p for p in source_ranking if list(source_ranking).count(p) > 1})
    if repeated:
        raise ConfigError(f"source_ranking repeats {', '.join(repeated)}: a pattern can rank once")


def source_rank(sources: Sequence[str], ranking: Sequence[str]) -> list[int]:
    """Index of the first glob pattern of `ranking` each source matches; len(ranking) when none does."""
    ranks: dict[str, int] = {}
    for source in set(sources):
        ranks[source] = next((i for i, pattern in enumerate(ranking) if fnmatch.fnmatchcase(source, pattern)), len(ranking))
    return [ranks[source] for source in sources]


def survivor_priority(table: Any, rule: str, ranking: Sequence[str] = ()) -> Any:
    """Per row of a table or record batch (columns text, source), the priority of that copy as an int64
    Arrow array: 0 for input_order, minus the text's UTF-8 length for longest, the source's rank for source_rank."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if rule == "input_order":
        return pa.array([0] * table.num_rows, type=pa.int64())
    if rule == "longest":
        return pc.negate(pc.binary_length(table["text"]).cast(pa.int64()))
    if rule == "source_rank":
        return pa.array(source_rank(table["source"].to_pylist(), list(ranking)), type=pa.int64())
    raise ValueError(f"unknown survivor rule {rule!r}")
