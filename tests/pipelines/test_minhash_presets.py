"""The named MinHash-LSH presets, and how a preset and the knobs given beside it resolve."""

from __future__ import annotations

import pytest

from common.config import ConfigError
from pipelines.minhash_presets import MinHashParams, fineweb, nemo, resolve_params


def test_presets_and_their_resolution():
    assert (fineweb().ngram, fineweb().num_hashes, fineweb().shingle) == (5, 112, "word")
    assert (nemo().ngram, nemo().num_hashes, nemo().shingle) == (24, 260, "char")
    none = {"shingle": None, "ngram": None, "bands": None, "rows": None}
    assert resolve_params("nemo", **none, seed=3) == MinHashParams("char", 24, 20, 13, seed=3)
    assert resolve_params("fineweb", **{**none, "bands": 14}, seed=1) == fineweb()
    with pytest.raises(ConfigError, match="preset=custom"):
        resolve_params("fineweb", **{**none, "bands": 20}, seed=1)
    with pytest.raises(ConfigError, match="ngram, bands"):
        resolve_params("custom", **{**none, "shingle": "word", "rows": 2}, seed=1)
    custom = resolve_params("custom", shingle="char", ngram=5, bands=2, rows=3, seed=1)
    assert custom.num_hashes == 6
