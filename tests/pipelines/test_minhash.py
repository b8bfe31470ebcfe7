"""MinHash: normalization, shingles, signatures, Jaccard estimates and band keys, against hand-made texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from bench.near_duplicates import jaccard, shingle_set
from pipelines import minhash
from pipelines.minhash_presets import fineweb

WORDS = minhash.MinHashParams(shingle="word", ngram=5, bands=64, rows=4)
CHARS = minhash.MinHashParams(shingle="char", ngram=3, bands=16, rows=4)


def sigs(texts: list[str], params: minhash.MinHashParams) -> np.ndarray:
    return minhash.signatures(minhash.normalize(pa.array(texts)), params)


def counting_text(start: int, count: int) -> str:
    """Distinct words w<start> .. w<start+count-1>: every 5-gram occurs once."""
    return " ".join(f"w{i}" for i in range(start, start + count))


def test_normalize_lowercases_and_collapses_punctuation_and_whitespace():
    texts = pa.array(["Hello, World!  It's\tfine…", "  --Ünïcode—DASHES_and 42 numbers.  ", "!!!"])
    assert minhash.normalize(texts).to_pylist() == ["hello world it s fine", "ünïcode dashes and 42 numbers", ""]


def test_word_shingles_are_runs_of_n_words():
    hashes = minhash.shingle_hashes("a b c d e a b c d e", WORDS)
    assert len(hashes) == 6
    assert hashes[0] == hashes[5]  # the same five words, the same shingle
    assert len(set(hashes.tolist())) == 5
    assert len(minhash.shingle_hashes("only three words", WORDS)) == 1  # short: one shingle of all
    assert len(minhash.shingle_hashes("", WORDS)) == 0


def test_char_shingles_count_characters_not_bytes():
    assert len(minhash.shingle_hashes("abcdef", CHARS)) == 4
    repeated = minhash.shingle_hashes("ééééé", CHARS)  # two bytes each in UTF-8
    assert len(repeated) == 3 and len(set(repeated.tolist())) == 1
    assert minhash.shingle_hashes("ab ", CHARS)[0] != minhash.shingle_hashes("abc", CHARS)[0]


def test_word_shingle_hashes_have_no_collisions_on_real_text():
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    normalized = minhash.normalize(pa.array([text]))[0].as_py()
    assert len(set(minhash.shingle_hashes(normalized, WORDS).tolist())) == len(shingle_set(text))


def test_equal_texts_give_equal_signatures_whatever_the_batch():
    texts = [counting_text(0, 50), "Another document, with words.", counting_text(0, 50)]
    together = sigs(texts, WORDS)
    assert together.shape == (3, WORDS.num_hashes) and together.dtype == np.uint32
    np.testing.assert_array_equal(together[0], together[2])
    np.testing.assert_array_equal(together[1], sigs(texts[1:2], WORDS)[0])
    assert not np.array_equal(together[0], together[1])
    reseeded = minhash.MinHashParams(shingle="word", ngram=5, bands=64, rows=4, seed=2)
    assert not np.array_equal(together[0], sigs(texts[:1], reseeded)[0])


def test_text_without_shingles_gets_the_empty_signature():
    result = sigs(["... !!! ---", "some words"], WORDS)
    assert (result[0] == minhash.EMPTY).all()
    assert minhash.has_shingles(result).tolist() == [False, True]


@pytest.mark.parametrize("overlap", [0.2, 0.5, 0.8, 0.95])
def test_estimated_jaccard_is_close_to_the_true_value(overlap):
    # Two texts sharing a run of words: their 5-gram sets overlap by a known amount.
    shared = int(1000 * overlap)
    a, b = counting_text(0, 1000), counting_text(1000 - shared, 1000)
    true = jaccard(shingle_set(a), shingle_set(b))
    params = minhash.MinHashParams(shingle="word", ngram=5, bands=128, rows=4)  # 512 hashes
    estimate = float(minhash.estimated_jaccard(*sigs([a, b], params)))
    assert abs(estimate - true) < 4 * np.sqrt(true * (1 - true) / params.num_hashes) + 1e-9


def test_shingle_sets_are_the_sorted_distinct_shingles_of_each_document():
    texts = ["a b c d e a b c d e", "", "... !!!", "one two", counting_text(0, 50)]
    values, offsets = minhash.shingle_sets(minhash.normalize(pa.array(texts)), WORDS)
    assert offsets.tolist() == [0, 5, 5, 5, 6, 52] and values.dtype == np.uint32
    for d, text in enumerate(texts):
        expected = np.unique(minhash.shingle_hashes(minhash.normalize(pa.array([text]))[0].as_py(), WORDS))
        np.testing.assert_array_equal(values[offsets[d] : offsets[d + 1]], expected)


@pytest.mark.parametrize("params", [WORDS, CHARS], ids=["words", "chars"])
def test_set_jaccard_is_the_exact_jaccard_of_the_shingle_sets(params):
    rng = np.random.default_rng(3)
    vocabulary = [f"w{i}" for i in range(60)]
    texts = [" ".join(rng.choice(vocabulary, size=int(rng.integers(0, 80)))) for _ in range(30)]
    texts += [texts[0], ""]  # a copy; a second empty text
    normalized = minhash.normalize(pa.array(texts))
    sets = minhash.shingle_sets(normalized, params)
    rows_a, rows_b = np.repeat(np.arange(len(texts)), len(texts)), np.tile(np.arange(len(texts)), len(texts))
    found = minhash.set_jaccard(sets, rows_a, sets, rows_b)
    as_sets = [set(minhash.shingle_hashes(t, params).tolist()) for t in normalized.to_pylist()]
    expected = [len(as_sets[a] & as_sets[b]) / len(as_sets[a] | as_sets[b]) if as_sets[a] | as_sets[b] else 1.0
                for a, b in zip(rows_a, rows_b)]
    np.testing.assert_array_equal(found, expected)
    assert found[len(texts) * (len(texts) - 2)] == 1.0  # text 30 is a copy of text 0
    with pytest.raises(ValueError, match="3 rows against 2"):
        minhash.set_jaccard(sets, rows_a[:3], sets, rows_b[:2])


def test_estimates_are_unbiased_over_many_pairs():
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(40):
        shared = int(rng.integers(100, 900))
        a, b = counting_text(0, 1000), counting_text(1000 - shared, 1000)
        errors.append(float(minhash.estimated_jaccard(*sigs([a, b], fineweb()))) - jaccard(shingle_set(a), shingle_set(b)))
    assert abs(np.mean(errors)) < 0.015  # the standard error of the mean of 40 estimates at 112 hashes


def test_band_keys_match_exactly_when_a_band_matches():
    rng = np.random.default_rng(1)
    first = rng.integers(0, 2**32, size=(1, 12), dtype=np.uint64).astype(np.uint32)
    second = first.copy()
    second[0, 5] ^= 1  # differs in band 1 (values 4..7) only
    keys = minhash.band_keys(np.concatenate([first, second]), bands=3, rows=4)
    assert keys.shape == (2, 3) and keys.dtype == np.uint64
    assert (keys[0] == keys[1]).tolist() == [True, False, True]
    same_values = np.tile(first[:, :4], 3)  # every band holds the same four values
    assert len(set(minhash.band_keys(same_values, bands=3, rows=4)[0].tolist())) == 3
