"""Document quality filters of the corpus cleaning pipeline: pure functions of Arrow tables.

Each module holds one filter, named as its stage in `pipelines.config.FILTER_STAGES` (which says why they
run in that order): `Config`, a typed config whose defaults are the published thresholds; a per-document
function (`drop_reason`, `clean` or `redact`); and `apply(table, config) -> FilterOutcome`.
"""

from __future__ import annotations

import importlib

from pipelines.config import FILTER_STAGES


def _config_and_apply(name: str) -> tuple[type, object]:
    module = importlib.import_module(f"{__name__}.{name}")
    return module.Config, module.apply


FILTERS = {name: _config_and_apply(name) for name in FILTER_STAGES}
"""Stage name -> (its config class, its `apply`), in pipeline order."""
