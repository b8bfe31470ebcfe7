"""MinHash signature throughput, ours vs datasketch, on the same real texts, one core each.

    .venv/bin/python bench/minhash_speed.py [--megabytes 24] [--corpus ../shared/corpora/debian-docs]

Both make 128-permutation signatures of word 5-gram shingles from raw text. Ours: pipelines.minhash
(Arrow-compute normalization, then one compiled loop per batch). datasketch 2.0: the same normalized
words joined into 5-gram byte strings in Python, `MinHash(num_perm=128).update_batch`, then
`LeanMinHash` (its sha1 hash of each shingle and numpy permutations). Timed after a warm-up (numba's
compile, or loading its cache); MB are UTF-8 bytes of the raw texts.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipelines import minhash
from bench.near_duplicates import read_documents

NUM_PERM = 128
OURS = minhash.MinHashParams(shingle="word", ngram=5, bands=16, rows=8)  # 128 hashes


def load_texts(corpus: Path, megabytes: float) -> list[str]:
    files = sorted(corpus.glob("*.jsonl*")) or sorted(Path("data/demo/corpus").glob("*.jsonl*"))
    texts, size = [], 0
    for _, text, _ in read_documents(files):
        texts.append(text)
        size += len(text.encode("utf-8"))
        if size >= megabytes * 1e6:
            break
    return texts


def ours(texts: pa.Array) -> np.ndarray:
    return minhash.signatures(minhash.normalize(texts), OURS)


def datasketch(texts: pa.Array) -> list:
    from datasketch import LeanMinHash, MinHash

    signatures = []
    for normalized in minhash.normalize(texts).to_pylist():
        words = normalized.split()
        shingles = [" ".join(words[i : i + 5]).encode("utf-8") for i in range(max(1, len(words) - 4))]
        sketch = MinHash(num_perm=NUM_PERM)
        sketch.update_batch(shingles)
        signatures.append(LeanMinHash(sketch))
    return signatures


def best_of(repeats: int, run, texts: pa.Array) -> float:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(texts)
        seconds.append(time.perf_counter() - started)
    return min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=24.0)
    parser.add_argument("--corpus", type=Path, default=Path("../shared/corpora/debian-docs"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    texts = pa.array(load_texts(args.corpus, args.megabytes), pa.large_string())
    megabytes = sum(len(t.encode("utf-8")) for t in texts.to_pylist()) / 1e6
    ours(texts[:100])  # compile (or load numba's cache)
    datasketch(texts[:100])
    results = {"ours": best_of(args.repeats, ours, texts), "datasketch": best_of(args.repeats, datasketch, texts)}
    print(f"{len(texts):,} documents, {megabytes:.1f} MB, {NUM_PERM} permutations, word 5-grams, one core, best of {args.repeats}")
    print(f"{'':<12}{'seconds':>10}{'MB/s':>10}")
    for name, seconds in results.items():
        print(f"{name:<12}{seconds:>10.2f}{megabytes / seconds:>10.1f}")
    print(f"ours / datasketch: {results['datasketch'] / results['ours']:.1f}x")


if __name__ == "__main__":
    main()
