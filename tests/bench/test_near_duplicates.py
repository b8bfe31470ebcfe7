"""The labelled near-duplicate set of bench/near_duplicates.py, built from the demo corpus: sizes and true Jaccards."""

from __future__ import annotations

from pathlib import Path

from bench import near_duplicates

DEMO_CORPUS = sorted((Path(__file__).resolve().parents[2] / "data" / "demo" / "corpus").glob("*.jsonl*"))


def test_the_labelled_set_has_duplicates_and_hard_negatives():
    labelled_set = near_duplicates.build(DEMO_CORPUS, bases=40, seed=0)
    assert len(labelled_set.documents) == 40 * (1 + 3 * 5 + 1)
    by_rate = {}
    for pair in labelled_set.pairs:
        if pair.kind == "substitute":
            by_rate.setdefault(pair.rate, []).append(pair.jaccard)
    # Each substituted word breaks up to 5 shingles: Jaccard ~ (1 - rate)^5 / (2 - (1 - rate)^5).
    assert min(by_rate[0.01]) > 0.85 and max(by_rate[0.2]) < 0.4
    assert sum(p.jaccard >= near_duplicates.DUPLICATE_JACCARD for p in labelled_set.pairs) > 200
