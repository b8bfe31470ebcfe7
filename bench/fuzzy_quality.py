"""Fuzzy dedup quality by edit kind and rate, for both presets, on a labelled near-duplicate set.

    .venv/bin/python bench/fuzzy_quality.py [--bases 300] [--corpus ../shared/corpora/debian-docs] [--verify-method signature]

Builds the set of bench.near_duplicates (each base document with 15 edited copies and one in
boilerplate; every pair within a family labelled with its true word 5-gram Jaccard) from real
documents (the shared corpus when present, else data/demo/corpus), runs the job (pipelines.fuzzy_dedup,
local Ray) for each preset twice: with FineWeb's setting (no verification: verify_threshold=none
survivor_threshold=none) and with the defaults (candidate pairs verified at J >= 0.7, each removed
document at J >= 0.5 with its survivor; true Jaccard of the shingle sets, or with --verify-method
signature MinHash's estimate). It prints per edit kind and rate: recall on duplicate pairs (Jaccard >=
0.8) and the share of non-duplicate pairs (Jaccard < 0.5) merged; then the totals, including pairs across
families, and the share of removed documents that reach J = 0.5 with no kept document.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
from pathlib import Path

from bench import near_duplicates
from pipelines.fuzzy_dedup import main as fuzzy_dedup
from pipelines.fuzzy_dedup_config import FuzzyDedupConfig


def percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", type=int, default=300)
    parser.add_argument("--corpus", type=Path, default=Path("../shared/corpora/debian-docs"))
    parser.add_argument("--verify-method", choices=("shingles", "signature"), default="shingles")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fuzzy-quality"))
    args = parser.parse_args()
    sources = sorted(args.corpus.glob("*.jsonl*")) or sorted(Path("data/demo/corpus").glob("*.jsonl*"))
    labelled = near_duplicates.build(sources, bases=args.bases, seed=0)
    corpus_dir = args.work / f"corpus-{args.bases}"
    near_duplicates.write_corpus(labelled.documents, corpus_dir, shards=4)

    runs = {}
    for preset in ("fineweb", "nemo"):
        runs[f"{preset} unverified"] = {"preset": preset, "verify_threshold": None, "survivor_threshold": None}
        runs[f"{preset} default"] = {"preset": preset, "verify_method": args.verify_method}
    scores, orphans = {}, {}
    for name, settings in runs.items():
        output_dir = args.work / f"out-{name}"
        with contextlib.redirect_stdout(io.StringIO()):
            fuzzy_dedup(FuzzyDedupConfig(corpus_dir=str(corpus_dir), output_dir=str(output_dir), log_to_mlflow=False, **settings))
        scores[name] = near_duplicates.score(labelled, near_duplicates.read_clusters(output_dir / "duplicates.parquet"))
        orphans[name] = near_duplicates.removed_without_a_kept_match(labelled, output_dir / "duplicates.parquet")

    print(f"{len(labelled.documents):,} documents: {args.bases} real bases from {sources[0].parent}, each with its edited copies")
    print("recall: % of pairs with Jaccard >= 0.8 in one cluster; merged: % of pairs with Jaccard < 0.5 in one cluster")
    names = list(runs)
    header = f"{'edit':<16}{'rate':>6}{'pairs':>8}{'mean J':>8}{'J>=0.8':>8}" + "".join(f"{'recall ' + n:>22}" for n in names)
    header += f"{'J<0.5':>7}" + "".join(f"{'merged ' + n:>22}" for n in names)
    print(header)
    first = scores[names[0]]
    for index, row in enumerate(first.rows):
        rate = f"{row['rate']:.0%}" if row["kind"] in near_duplicates.EDIT_KINDS else "-"
        line = f"{row['kind']:<16}{rate:>6}{row['pairs']:>8,}{row['mean_jaccard']:>8.2f}{row['duplicates']:>8,}"
        line += "".join(f"{percent(scores[n].rows[index]['recall']):>22}" for n in names)
        line += f"{row['distinct']:>7,}" + "".join(f"{percent(scores[n].rows[index]['distinct_merged']):>22}" for n in names)
        print(line)
    print()
    totals = [
        ("recall, all duplicate pairs", lambda s: f"{percent(s.recall)} of {s.duplicate_pairs:,}"),
        ("merged, non-duplicates within families", lambda s: f"{percent(s.distinct_merged)} of {s.distinct_pairs:,}"),
        ("merged, pairs across families", lambda s: f"{100 * s.unrelated_merged:.4f} of {s.unrelated_pairs:,}"),
        ("false merges, all non-duplicate pairs", lambda s: f"{100 * s.false_merges:.4f}"),
    ]
    print(f"{'total (%)':<40}" + "".join(f"{n:>22}" for n in names))
    for label, show in totals:
        print(f"{label:<40}" + "".join(f"{show(scores[n]):>22}" for n in names))
    line = "".join(f"{f'{100 * o / max(r, 1):.1f} of {r:,}':>22}" for o, r in (orphans[n] for n in names))
    print(f"{'removed, no kept document at J >= 0.5':<40}" + line)


if __name__ == "__main__":
    main()
