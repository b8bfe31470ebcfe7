"""MinHash signatures and LSH band keys: pure functions of Arrow string arrays and numpy arrays.

Two documents are near duplicates when their sets of shingles (word or character n-grams of the
normalized text) overlap: Jaccard similarity |A ∩ B| / |A ∪ B|. MinHash (Broder 1997, "On the
resemblance and containment of documents") estimates it: for a random permutation h of shingles,
P[min h(A) = min h(B)] = J(A, B), so the fraction of equal minima over `num_hashes` permutations is an
unbiased estimate. LSH banding (Leskovec, Rajaraman, Ullman, Mining of Massive Datasets, ch. 3.4) cuts
a signature into `bands` bands of `rows` values; two documents become candidates when any band is
equal, with probability 1 - (1 - J^rows)^bands: an S-curve around (1 / bands)^(1 / rows).

How a signature is made, all in one compiled loop per batch of documents:
1. normalize (Arrow compute): lowercase; every run of characters that are neither letters nor digits
   (punctuation, symbols, whitespace) becomes one space, as datatrove's `simplify_text` and NeMo do;
2. tokens: the FNV-1a hash of each word, or each character's code point;
3. shingle hash: the n consecutive tokens as a polynomial mod 2^64, mixed by MurmurHash3's finalizer
   and cut to 32 bits. A document with fewer than n tokens is one shingle of all of them; one with no
   tokens has no shingles and gets EMPTY (every value 2^32 - 1), which takes part in no band;
4. permutations: h_k(x) = ((a_k * x + b_k) mod 2^64) >> 32 with random 64-bit a_k, b_k, the
   multiply-add-shift family (Dietzfelbinger 1996; Thorup 2015, "High speed hashing for integers and
   strings", section 3.3). It is 2-independent on 32-bit keys like the textbook (a x + b) mod p, but
   exact in native uint64 arithmetic: no 128-bit products, and the k loop vectorizes.

The params (shingle, ngram, bands, rows, seed) and the named presets are in pipelines.minhash_presets.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.minhash_presets import MinHashParams

EMPTY = np.uint32(0xFFFFFFFF)
"""Every value of the signature of a document without shingles (it joins no band)."""


def normalize(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Lowercase; each run of non-letter, non-digit characters becomes one space; trimmed."""
    lowered = pc.utf8_lower(texts)
    spaced = pc.replace_substring_regex(lowered, pattern=r"[^\p{L}\p{N}]+", replacement=" ")
    trimmed = pc.utf8_trim(spaced, characters=" ")
    return trimmed.combine_chunks() if isinstance(trimmed, pa.ChunkedArray) else trimmed


def permutations(num_hashes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) uint64 parameters of `num_hashes` multiply-add-shift hash functions."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**64, size=num_hashes, dtype=np.uint64, endpoint=False)
    b = rng.integers(0, 2**64, size=num_hashes, dtype=np.uint64, endpoint=False)
    return a, b


# -- compiled kernels ------------------------------------------------------------------------------

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_POLY_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it is a bijection mod 2^64
_SPACE = np.uint8(0x20)


@numba.njit(cache=True, inline="always")
def _mix64(x):
    """MurmurHash3's 64-bit finalizer (Appleby): every input bit flips each output bit with p ~ 1/2."""
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xC4CEB9FE1A85EC53)
    x ^= x >> np.uint64(33)
    return x


@numba.njit(cache=True)
def _tokens(data, start, end, char_mode, out):
    """Fill `out` with the tokens of data[start:end] (UTF-8); returns how many."""
    count = 0
    if char_mode:
        i = start
        while i < end:
            byte = np.uint64(data[i])
            if byte < 0x80:
                code, width = byte, 1
            elif byte < 0xE0:
                code, width = byte & np.uint64(0x1F), 2
            elif byte < 0xF0:
                code, width = byte & np.uint64(0x0F), 3
            else:
                code, width = byte & np.uint64(0x07), 4
            for j in range(1, width):
                code = (code << np.uint64(6)) | (np.uint64(data[i + j]) & np.uint64(0x3F))
            out[count] = code
            count += 1
            i += width
        return count
    h = _FNV_OFFSET
    in_word = False
    for i in range(start, end):
        byte = data[i]
        if byte == _SPACE:
            if in_word:
                out[count] = h
                count += 1
                h, in_word = _FNV_OFFSET, False
        else:
            h = (h ^ np.uint64(byte)) * _FNV_PRIME
            in_word = True
    if in_word:
        out[count] = h
        count += 1
    return count


@numba.njit(cache=True)
def _shingles(tokens, count, ngram, out):
    """Fill `out` with the 32-bit hash of every run of `ngram` tokens; returns how many."""
    if count == 0:
        return 0
    width = min(ngram, count)  # a short document is one shingle of all its tokens
    total = count - width + 1
    for i in range(total):
        h = np.uint64(0)
        for j in range(width):
            h = h * _POLY_BASE + tokens[i + j]
        out[i] = _mix64(h) >> np.uint64(32)
    return total


@numba.njit(cache=True)
def _signatures(data, offsets, char_mode, ngram, a, b):
    num_docs = len(offsets) - 1
    num_hashes = len(a)
    result = np.empty((num_docs, num_hashes), dtype=np.uint32)
    longest = 0
    for d in range(num_docs):
        longest = max(longest, offsets[d + 1] - offsets[d])
    tokens = np.empty(longest, dtype=np.uint64)
    shingles = np.empty(longest, dtype=np.uint64)
    minima = np.empty(num_hashes, dtype=np.uint64)
    for d in range(num_docs):
        count = _tokens(data, offsets[d], offsets[d + 1], char_mode, tokens)
        total = _shingles(tokens, count, ngram, shingles)
        minima[:] = np.uint64(EMPTY)
        for s in range(total):
            x = shingles[s]
            for k in range(num_hashes):  # vectorized: 8 lanes of uint64 multiply-add-shift
                minima[k] = min(minima[k], (a[k] * x + b[k]) >> np.uint64(32))
        for k in range(num_hashes):
            result[d, k] = minima[k]
    return result


@numba.njit(cache=True)
def _shingle_sets(data, offsets, char_mode, ngram):
    num_docs = len(offsets) - 1
    values = np.empty(len(data), dtype=np.uint32)  # a document has at most one shingle per byte
    set_offsets = np.zeros(num_docs + 1, dtype=np.int64)
    longest = 0
    for d in range(num_docs):
        longest = max(longest, offsets[d + 1] - offsets[d])
    tokens = np.empty(longest, dtype=np.uint64)
    shingles = np.empty(longest, dtype=np.uint64)
    end = 0
    for d in range(num_docs):
        count = _tokens(data, offsets[d], offsets[d + 1], char_mode, tokens)
        total = _shingles(tokens, count, ngram, shingles)
        ordered = np.sort(shingles[:total])
        for s in range(total):
            if s == 0 or ordered[s] != ordered[s - 1]:
                values[end] = ordered[s]
                end += 1
        set_offsets[d + 1] = end
    return values[:end].copy(), set_offsets


@numba.njit(cache=True)
def _set_jaccard(values_a, offsets_a, rows_a, values_b, offsets_b, rows_b):
    result = np.empty(len(rows_a), dtype=np.float64)
    for i in range(len(rows_a)):
        a, a_end = offsets_a[rows_a[i]], offsets_a[rows_a[i] + 1]
        b, b_end = offsets_b[rows_b[i]], offsets_b[rows_b[i] + 1]
        union = (a_end - a) + (b_end - b)
        common = 0
        while a < a_end and b < b_end:  # merge of two sorted sets
            if values_a[a] < values_b[b]:
                a += 1
            elif values_a[a] > values_b[b]:
                b += 1
            else:
                common += 1
                a += 1
                b += 1
        union -= common
        result[i] = common / union if union else 1.0
    return result


# -- on Arrow arrays -------------------------------------------------------------------------------


def _utf8_buffers(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(bytes, offsets) of a string or large_string array, without copying the text."""
    if texts.null_count:
        raise ValueError("texts hold nulls; every document needs a text")
    _, offsets, data = texts.buffers()
    offset_type = np.int64 if pa.types.is_large_string(texts.type) else np.int32
    offsets = np.frombuffer(offsets, dtype=offset_type)[texts.offset : texts.offset + len(texts) + 1]
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    return data, offsets


def signatures(normalized: pa.Array, params: MinHashParams) -> np.ndarray:
    """(documents, num_hashes) uint32 MinHash signatures of `normalize`d texts."""
    data, offsets = _utf8_buffers(normalized)
    a, b = permutations(params.num_hashes, params.seed)
    return _signatures(data, offsets, params.shingle == "char", params.ngram, a, b)


def shingle_hashes(normalized: str, params: MinHashParams) -> np.ndarray:
    """The 32-bit shingle hashes of one normalized text, in text order (for tests and evaluation)."""
    data = np.frombuffer(normalized.encode("utf-8"), dtype=np.uint8)
    tokens = np.empty(len(data), dtype=np.uint64)
    shingles = np.empty(len(data), dtype=np.uint64)
    count = _tokens(data, 0, len(data), params.shingle == "char", tokens)
    return shingles[: _shingles(tokens, count, params.ngram, shingles)].copy()


def shingle_sets(normalized: pa.Array, params: MinHashParams) -> tuple[np.ndarray, np.ndarray]:
    """Each document's distinct shingle hashes, sorted: (values uint32, offsets int64 of documents + 1);
    document d's set is values[offsets[d]:offsets[d + 1]]. The exact Jaccard similarity of two such sets
    is that of the documents' shingle sets, up to 32-bit hash collisions (the hashes MinHash permutes)."""
    data, offsets = _utf8_buffers(normalized)
    return _shingle_sets(data, offsets, params.shingle == "char", params.ngram)


def set_jaccard(
    sets_a: tuple[np.ndarray, np.ndarray], rows_a: np.ndarray, sets_b: tuple[np.ndarray, np.ndarray], rows_b: np.ndarray
) -> np.ndarray:
    """Per i: the Jaccard similarity of set rows_a[i] of sets_a and set rows_b[i] of sets_b, both
    (values, offsets) as `shingle_sets` returns them (the values may be memory-mapped); two empty sets: 1."""
    if len(rows_a) != len(rows_b):
        raise ValueError(f"set_jaccard: {len(rows_a)} rows against {len(rows_b)}")
    return _set_jaccard(sets_a[0], sets_a[1], rows_a.astype(np.int64), sets_b[0], sets_b[1], rows_b.astype(np.int64))


def has_shingles(sigs: np.ndarray) -> np.ndarray:
    """Per signature: False for EMPTY (a document without shingles)."""
    return ~np.all(sigs == EMPTY, axis=1)


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(documents, bands) uint64: a hash of each band's values and its index.

    Equal keys mean equal bands (up to 64-bit collisions, n^2 / 2^65 expected); the band index is mixed
    in so equal values in different bands do not meet.
    """
    values = sigs.reshape(len(sigs), bands, rows).astype(np.uint64)
    keys = np.broadcast_to(np.arange(1, bands + 1, dtype=np.uint64) * _POLY_BASE, (len(sigs), bands)).copy()
    for r in range(rows):
        keys = mix64(keys ^ values[:, :, r])
    return keys


def mix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's finalizer on a uint64 array (numpy wraps products mod 2^64)."""
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> np.uint64(33))


def estimated_jaccard(sigs_a: np.ndarray, sigs_b: np.ndarray) -> np.ndarray:
    """Per row: the fraction of equal signature values, MinHash's estimate of the Jaccard similarity."""
    return np.mean(sigs_a == sigs_b, axis=-1)
