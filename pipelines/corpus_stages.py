"""The cleaning stages of the corpus build, built from its config in the order of `pipelines.config.STAGES`.

A stage is a pure function of an Arrow table of documents that returns a FilterOutcome (kept rows,
dropped rows with their reason, counts); the clean task runs them one after the other on every batch.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pyarrow as pa

from common.config import from_dict
from pipelines.config import STAGES, CorpusBuildConfig
from pipelines.filters.base import FilterOutcome

Stage = Callable[[pa.Table], FilterOutcome]


def build_stages(config: CorpusBuildConfig) -> list[tuple[str, Stage]]:
    """(name, stage) for each of STAGES that `config` switches on, in that order; a bad filter setting
    fails here, naming it."""
    stages = [(name, stage_of(name, config)) for name in STAGES]
    return [(name, stage) for name, stage in stages if stage is not None]


def stage_of(name: str, config: CorpusBuildConfig) -> Stage | None:
    """The stage `name` as `config` sets it up, or None where `config` switches it off."""
    if name == "normalize":
        from pipelines.normalize import drop_short, normalize

        def normalize_and_drop_short(table: pa.Table) -> FilterOutcome:
            normalized = normalize(table, remove_control_characters=config.remove_control_characters)
            return drop_short(normalized, config.min_chars)

        return normalize_and_drop_short
    if name == "repair":
        from pipelines.normalize import repair_mojibake

        return repair_mojibake if config.fix_mojibake else None
    if name == "language":
        from pipelines.langid import filter_language

        return partial(filter_language, languages=config.languages, min_score=config.language_threshold)
    if not getattr(config, name):
        return None
    from pipelines.filters import FILTERS

    config_class, apply = FILTERS[name]
    settings = from_dict(config_class, config.filter_settings.get(name, {}), source=f"filter_settings.{name}")
    return partial(apply, config=settings)
