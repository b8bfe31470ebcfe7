"""A labelled near-duplicate set made from real documents, and how a fuzzy dedup run scores on it.

Base documents are long real documents that are unrelated to one another (word 5-gram Jaccard below
`max_base_jaccard` with every other base: the source corpus has near duplicates of its own). Each base
gets a family of variants with realistic edits at known rates:

- substitute / insert / delete: that share of its words replaced by, preceded by a random word of the
  corpus vocabulary, or removed (whitespace and punctuation around the other words kept);
- boilerplate: a site header and footer around the text (one of several, as web pages carry).

Every pair of documents of a family is labelled with its true Jaccard similarity of word 5-gram sets
(lowercase, runs of non-letters/digits as separators): a duplicate at >= DUPLICATE_JACCARD, a
non-duplicate below DISTINCT_JACCARD; documents of different families are non-duplicates too. A run's
clusters (its duplicates.parquet) then give recall on duplicates and the share of non-duplicate pairs
merged, per edit kind and rate.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from formats.corpus import DOCUMENT_SCHEMA, existing_shard_entries, write_manifest

EDIT_KINDS = ("substitute", "insert", "delete")
EDIT_RATES = (0.01, 0.03, 0.05, 0.10, 0.20)
DUPLICATE_JACCARD = 0.8
DISTINCT_JACCARD = 0.5
SHINGLE_WORDS = 5
BOILERPLATE = (
    ("Home | Documentation | Downloads | Community | Search this site",
     "Copyright 2024 The Project contributors. All rights reserved. Privacy policy | Terms of use | Contact us"),
    ("Skip to main content. Menu: Getting started, Reference, Tutorials, Blog, Support forum",
     "Was this page helpful? Yes No. Last updated on March 3. Edit this page on GitHub. Report an issue"),
    ("You are here: Docs > Manuals > Current release. Sign in or create an account to comment",
     "Related articles: installation guide, upgrade notes, frequently asked questions. Subscribe to our newsletter"),
)
_SEPARATORS = re.compile(r"[\W_]+")
_TOKENS = re.compile(r"(\s+)")


def words(text: str) -> list[str]:
    """Lowercase words, with every run of characters that are not letters or digits as a separator."""
    return [w for w in _SEPARATORS.split(text.lower()) if w]


def shingle_set(text: str, n: int = SHINGLE_WORDS) -> set[tuple[str, ...]]:
    """The word n-grams of `text` (a shorter text is one shingle of all its words)."""
    tokens = words(text)
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def read_documents(paths: Iterable[Path]) -> Iterator[tuple[str, str, str]]:
    """(id, text, source) of JSON lines files (.jsonl, .jsonl.gz, .jsonl.zst) with those fields."""
    for path in paths:
        with open(path, "rb") as raw:
            if path.name.endswith(".zst"):
                stream = zstandard.ZstdDecompressor().stream_reader(raw)
            elif path.name.endswith(".gz"):
                stream = gzip.open(raw)
            else:
                stream = raw
            for line_number, line in enumerate(stream.read().splitlines(), start=1):
                record = json.loads(line)
                document_id = str(record.get("id", f"{path}:{line_number}"))
                yield document_id, record["text"], str(record.get("source", path.name))


def choose_bases(
    documents: Iterable[tuple[str, str, str]],
    count: int,
    *,
    min_words: int,
    max_words: int,
    max_base_jaccard: float,
    seed: int,
) -> list[tuple[str, str, str]]:
    """Up to `count` documents of min_words..max_words words, in a seeded random order, skipping any whose
    Jaccard with an already chosen one reaches `max_base_jaccard` (an inverted index of shingles finds them)."""
    candidates = list(documents)
    rng = np.random.default_rng(seed)
    chosen: list[tuple[str, str, str]] = []
    chosen_sets: list[set] = []
    holders: dict[tuple, list[int]] = defaultdict(list)
    for index in rng.permutation(len(candidates)):
        document = candidates[index]
        if not min_words <= len(words(document[1])) <= max_words:
            continue
        shingles = shingle_set(document[1])
        overlaps = Counter(h for s in shingles for h in holders.get(s, ()))
        if any(jaccard(shingles, chosen_sets[h]) >= max_base_jaccard for h in overlaps):
            continue
        for s in shingles:
            holders[s].append(len(chosen))
        chosen.append(document)
        chosen_sets.append(shingles)
        if len(chosen) == count:
            break
    return chosen


def edit(text: str, kind: str, rate: float, vocabulary: list[str], rng: np.random.Generator) -> str:
    """`text` with round(rate x words) of its words substituted, inserted before or deleted (at least one)."""
    parts = _TOKENS.split(text)  # words at even positions, the whitespace after each at odd ones
    positions = [i for i in range(0, len(parts), 2) if parts[i]]
    chosen = rng.choice(positions, size=min(len(positions), max(1, round(rate * len(positions)))), replace=False)
    for i in chosen:
        word = vocabulary[rng.integers(len(vocabulary))]
        if kind == "substitute":
            parts[i] = word
        elif kind == "insert":
            parts[i] = f"{word} {parts[i]}"
        else:
            parts[i] = ""
            if i + 1 < len(parts):
                parts[i + 1] = ""
    return "".join(parts)


@dataclass(frozen=True)
class Variant:
    id: str
    base_id: str
    kind: str
    """An EDIT_KINDS name, "boilerplate", or "original" for the base itself."""
    rate: float


def replicated(originals: list[tuple[str, str, str]], size_bytes: float, vocabulary: list[str],
               rng: np.random.Generator) -> Iterator[tuple[str, str, str, int]]:
    """(id, text, source, copy) until `size_bytes` of text: copy 0 of `originals` as they are, every later
    copy with each document's words substituted, inserted or deleted (one kind per document) at a rate
    drawn uniformly from 0-10%; ids get "/<copy>"."""
    total, copy = 0, 0
    while total < size_bytes:
        for doc_id, text, source in originals:
            if copy:
                text = edit(text, EDIT_KINDS[rng.integers(3)], rng.uniform(0, 0.1), vocabulary, rng)
            total += len(text.encode("utf-8"))
            yield f"{doc_id}/{copy}", text, source, copy
            if total >= size_bytes:
                return
        copy += 1


def make_family(
    base: tuple[str, str, str], vocabulary: list[str], rng: np.random.Generator
) -> list[tuple[Variant, str, str]]:
    """(variant, text, source) of a base document and its edited copies."""
    base_id, text, source = base
    family = [(Variant(base_id, base_id, "original", 0.0), text, source)]
    for kind in EDIT_KINDS:
        for rate in EDIT_RATES:
            variant = Variant(f"{base_id}~{kind}-{rate:g}", base_id, kind, rate)
            family.append((variant, edit(text, kind, rate, vocabulary, rng), source))
    header, footer = BOILERPLATE[rng.integers(len(BOILERPLATE))]
    variant = Variant(f"{base_id}~boilerplate", base_id, "boilerplate", 0.0)
    family.append((variant, f"{header}\n\n{text}\n\n{footer}", source))
    return family


@dataclass(frozen=True)
class LabelledPair:
    a: str
    b: str
    kind: str
    """The edit between the two: a variant's kind when one is the original, else "variant-variant"."""
    rate: float
    jaccard: float


@dataclass
class NearDuplicateSet:
    documents: list[tuple[str, str, str]]
    """(id, text, source), shuffled: input order says nothing about families."""
    variants: dict[str, Variant]
    pairs: list[LabelledPair]
    """Every pair within a family, with its true word 5-gram Jaccard."""


def build(
    sources: Iterable[Path],
    *,
    bases: int,
    seed: int = 0,
    min_words: int = 300,
    max_words: int = 3000,
    max_base_jaccard: float = 0.2,
) -> NearDuplicateSet:
    """The labelled set from the JSON lines `sources`."""
    rng = np.random.default_rng(seed)
    chosen = choose_bases(
        read_documents(sources), bases, min_words=min_words, max_words=max_words, max_base_jaccard=max_base_jaccard, seed=seed
    )
    vocabulary = sorted({w for _, text, _ in chosen for w in text.split() if w.isalpha()})
    documents, variants, pairs = [], {}, []
    for base in chosen:
        family = make_family(base, vocabulary, rng)
        sets = [shingle_set(text) for _, text, _ in family]
        for i, j in combinations(range(len(family)), 2):
            a, b = family[i][0], family[j][0]
            kind, rate = (b.kind, b.rate) if a.kind == "original" else ("variant-variant", 0.0)
            pairs.append(LabelledPair(a.id, b.id, kind, rate, jaccard(sets[i], sets[j])))
        for variant, text, source in family:
            variants[variant.id] = variant
            documents.append((variant.id, text, source))
    order = rng.permutation(len(documents))
    return NearDuplicateSet([documents[i] for i in order], variants, pairs)


def write_corpus(documents: list[tuple[str, str, str]], corpus_dir: Path, shards: int) -> None:
    """`documents` as a corpus folder (documents/shard-NNNNN.parquet and the manifest the readers require),
    split into `shards` in order."""
    folder = corpus_dir / "documents"
    folder.mkdir(parents=True, exist_ok=True)
    for index, chunk in enumerate(np.array_split(np.arange(len(documents)), shards)):
        rows = [documents[i] for i in chunk]
        table = pa.table([[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]], schema=DOCUMENT_SCHEMA)
        pq.write_table(table, folder / f"shard-{index:05d}.parquet")
    write_manifest(corpus_dir, existing_shard_entries(corpus_dir), {})


def read_clusters(duplicates_file: Path) -> dict[str, int]:
    """id -> cluster_id of a fuzzy dedup run's duplicates.parquet (documents not in it are alone)."""
    table = pq.read_table(duplicates_file, columns=["id", "cluster_id"])
    return dict(zip(table["id"].to_pylist(), table["cluster_id"].to_pylist()))


def removed_without_a_kept_match(labelled: NearDuplicateSet, duplicates_file: Path, threshold: float = 0.5) -> tuple[int, int]:
    """(removed documents that reach `threshold` true Jaccard with no kept document, removed documents) of
    a fuzzy dedup run: what connected components' chaining removes (documents of other families share
    nearly nothing, so only a document's own family is searched)."""
    table = pq.read_table(duplicates_file, columns=["id", "survivor_id"]).to_pylist()
    removed = {row["id"] for row in table if row["id"] != row["survivor_id"]}
    best: dict[str, float] = {}
    for pair in labelled.pairs:
        for one, other in ((pair.a, pair.b), (pair.b, pair.a)):
            if one in removed and other not in removed:
                best[one] = max(best.get(one, 0.0), pair.jaccard)
    return sum(best.get(document, 0.0) < threshold for document in removed), len(removed)


@dataclass
class Score:
    rows: list[dict]
    """Per (kind, rate) of original-variant pairs: pairs, mean Jaccard, duplicates, recall, distinct, merged."""
    recall: float
    """Share of all duplicate pairs (Jaccard >= DUPLICATE_JACCARD) put in one cluster."""
    duplicate_pairs: int
    distinct_merged: float
    """Share of non-duplicate pairs within families (Jaccard < DISTINCT_JACCARD) put in one cluster."""
    distinct_pairs: int
    unrelated_merged: float
    """Share of pairs of documents from different families put in one cluster."""
    unrelated_pairs: int

    @property
    def false_merges(self) -> float:
        """Share of all non-duplicate pairs (distinct within families, and unrelated) put in one cluster."""
        merged = self.distinct_merged * self.distinct_pairs + self.unrelated_merged * self.unrelated_pairs
        return merged / (self.distinct_pairs + self.unrelated_pairs)


def score(labelled: NearDuplicateSet, clusters: dict[str, int]) -> Score:
    def together(a: str, b: str) -> bool:
        return a in clusters and clusters.get(a) == clusters.get(b)

    groups: dict[tuple[str, float], list[LabelledPair]] = defaultdict(list)
    for pair in labelled.pairs:
        groups[(pair.kind, pair.rate)].append(pair)
    rows = []
    for (kind, rate), pairs in sorted(groups.items(), key=lambda item: (item[0][0] == "variant-variant", item[0])):
        duplicates = [p for p in pairs if p.jaccard >= DUPLICATE_JACCARD]
        distinct = [p for p in pairs if p.jaccard < DISTINCT_JACCARD]
        rows.append({
            "kind": kind,
            "rate": rate,
            "pairs": len(pairs),
            "mean_jaccard": float(np.mean([p.jaccard for p in pairs])),
            "duplicates": len(duplicates),
            "recall": _share(duplicates, together),
            "distinct": len(distinct),
            "distinct_merged": _share(distinct, together),
        })
    duplicates = [p for p in labelled.pairs if p.jaccard >= DUPLICATE_JACCARD]
    distinct = [p for p in labelled.pairs if p.jaccard < DISTINCT_JACCARD]
    # Pairs across families: count, per cluster, the pairs whose members come from different bases.
    family_sizes = Counter(v.base_id for v in labelled.variants.values())
    total = len(labelled.variants)
    unrelated_pairs = (total * total - sum(n * n for n in family_sizes.values())) // 2
    members: dict[int, Counter] = defaultdict(Counter)
    for document_id, cluster in clusters.items():
        members[cluster][labelled.variants[document_id].base_id] += 1
    unrelated_merged = sum((sum(c.values()) ** 2 - sum(n * n for n in c.values())) // 2 for c in members.values())
    return Score(
        rows=rows,
        recall=_share(duplicates, together),
        duplicate_pairs=len(duplicates),
        distinct_merged=_share(distinct, together),
        distinct_pairs=len(distinct),
        unrelated_merged=unrelated_merged / unrelated_pairs if unrelated_pairs else 0.0,
        unrelated_pairs=unrelated_pairs,
    )


def _share(pairs: list[LabelledPair], together) -> float:
    return sum(together(p.a, p.b) for p in pairs) / len(pairs) if pairs else float("nan")
