"""Survivor priorities, shared by the exact and the fuzzy dedup, and the checks of their two config keys."""

from __future__ import annotations

import pyarrow as pa
import pytest

from common.config import ConfigError, load_config
from pipelines.config import CorpusBuildConfig
from pipelines.fuzzy_dedup_config import FuzzyDedupConfig
from pipelines.survivors import check_survivor, source_rank, survivor_priority


def test_survivor_priorities():
    table = pa.table({"text": ["aa", "aaaa", "a"], "source": ["web/x.warc.gz", "books/y.jsonl", "other.parquet"]})
    assert survivor_priority(table, "input_order").to_pylist() == [0, 0, 0]
    assert survivor_priority(table, "longest").to_pylist() == [-2, -4, -1]
    assert survivor_priority(table, "source_rank", ["books/*", "web/*"]).to_pylist() == [1, 0, 2]
    assert source_rank(["a/b.jsonl", "c.jsonl"], ["*.jsonl"]) == [0, 0]


def test_exact_names_are_patterns_that_match_only_themselves():
    assert source_rank(["C", "B", "CB", "A"], ["C", "B"]) == [0, 1, 2, 2]


def test_a_record_batch_ranks_like_a_table():
    batch = pa.record_batch({"text": ["aa", "a"], "source": ["web/x", "books/y"]})
    assert survivor_priority(batch, "source_rank", ["books/*"]).to_pylist() == [1, 0]
    assert survivor_priority(batch, "longest").to_pylist() == [-2, -1]


@pytest.mark.parametrize("config_cls", [CorpusBuildConfig, FuzzyDedupConfig])
def test_both_dedups_reject_rankings_that_mean_nothing(config_cls):
    with pytest.raises(ConfigError, match="needs source_ranking"):
        load_config(config_cls, overrides=["survivor=source_rank"])
    with pytest.raises(ConfigError, match="read only with survivor=source_rank"):
        load_config(config_cls, overrides=["source_ranking=web/*"])
    with pytest.raises(ConfigError, match="survivor must be one of input_order, longest, source_rank"):
        load_config(config_cls, overrides=["survivor=shortest"])
    assert load_config(config_cls, overrides=["survivor=source_rank", "source_ranking=books/*,web/*"]).source_ranking == ["books/*", "web/*"]


def test_blank_and_repeated_patterns_are_errors():
    with pytest.raises(ConfigError, match="empty patterns"):
        check_survivor("source_rank", ["books/*", " "])
    with pytest.raises(ConfigError, match="repeats web/\\*"):
        check_survivor("source_rank", ["web/*", "books/*", "web/*"])
