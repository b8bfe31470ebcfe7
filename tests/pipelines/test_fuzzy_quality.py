"""Fuzzy dedup quality on a labelled near-duplicate set built from the demo corpus, for both presets.

Done when: recall >= 0.95 on pairs with true word 5-gram Jaccard >= 0.8, and at most 0.5% of the
non-duplicate pairs (true Jaccard < 0.5: heavily edited copies, and every pair across families) merged.
`bench/fuzzy_quality.py` prints the same per edit kind and rate on a larger set. The jobs run in this
process (runner=local); the set itself is tested in tests/bench/test_near_duplicates.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import near_duplicates
from pipelines.fuzzy_dedup import main
from pipelines.fuzzy_dedup_config import FuzzyDedupConfig

DEMO_CORPUS = sorted((Path(__file__).resolve().parents[2] / "data" / "demo" / "corpus").glob("*.jsonl*"))


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> tuple[near_duplicates.NearDuplicateSet, Path]:
    labelled = near_duplicates.build(DEMO_CORPUS, bases=40, seed=0)
    corpus_dir = tmp_path_factory.mktemp("near-duplicates")
    near_duplicates.write_corpus(labelled.documents, corpus_dir, shards=2)
    return labelled, corpus_dir


@pytest.mark.parametrize("preset", ["fineweb", "nemo"])
def test_recall_and_false_merges(labelled, preset, tmp_path):
    labelled_set, corpus_dir = labelled
    settings = {"preset": preset, "runner": "local", "log_to_mlflow": False}
    main(FuzzyDedupConfig(corpus_dir=str(corpus_dir), output_dir=str(tmp_path), **settings))
    score = near_duplicates.score(labelled_set, near_duplicates.read_clusters(tmp_path / "duplicates.parquet"))
    assert score.recall >= 0.95, score
    assert score.false_merges <= 0.005, score
    assert score.unrelated_merged <= 0.005, score
