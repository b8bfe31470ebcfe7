"""Rebuild the committed demo data in data/demo/ from the real debian-docs corpus.

    .venv/bin/python data/make_demo_data.py [CORPUS_DIR] [--out data/demo]

CORPUS_DIR defaults to ../shared/corpora/debian-docs relative to the repository root. The output is
byte-for-byte reproducible: every choice comes from a fixed seed (SEED) keyed by a name, records
are visited in a fixed order, and the gzip/zstd writers carry no timestamps.

What is selected
----------------
demo/corpus/ -- whole original JSON lines (never re-serialised, so ids, text and every field stay
exactly as in the corpus), chosen per source:

* a byte budget per source (BUDGETS) filled from a seeded shuffle of that source's documents, skipping
  documents longer than MAX_DOC_BYTES so no single file (MAINTAINERS, a 2 MB info node) dominates; the
  budgets keep every source under 15% of the bytes while fortunes still make up most of
  the documents, as in the real corpus;
* deliberate exact duplicates (the same text twice in the corpus, kept both times): DUP_PAIRS pairs of
  linux-doc / linux-doc-html-sources (the two copies land in different files), pairs inside manpages
  (pages that render identically) and inside fortunes-en/-de/-pl; no other exact duplicate is let in,
  so the count of duplicates in the demo is exactly the deliberate one;
* a few near duplicates: a Perl POD source (perl-doc-pod) with its rendered man page (manpages);
* every language of the corpus (fortunes-en/de/es/it/pl; other sources have no lang field).

Records are written in corpus order into four files: part-00000.jsonl.zst (linux-doc and the Python
and git docs), part-00001.jsonl.zst (linux-doc-html-sources, manpages, perl-doc-pod), part-00002
.jsonl.zst (fortunes en/de/es/it) and a small plain part-00003.jsonl.gz (fortunes-pl, copyright and
the second copy of each fortune duplicate pair, so a duplicate also crosses compression formats).

demo/conversations.jsonl -- short SFT conversations built from the NAME line (and, for some, the
SYNOPSIS) of man pages (manpages), git manuals (git-doc) and Perl PODs (perl-doc-pod): "What does the
`ls` command do?" -> "`ls`: list directory contents." The answer's description is the page's own text
(wrapped lines joined, groff's end-of-line hyphenation undone, runs of spaces collapsed). Pages are
deduplicated by (name, description), capped per kind of page (CONV_CAPS), and a seeded share of those
with a short one-line synopsis / prototype / `use` line get a second turn asking for it.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import hashlib
import io
import json
import random
import re
import sys
from pathlib import Path

import zstandard

SEED = 20240611
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT / ".." / "shared" / "corpora" / "debian-docs"
DEFAULT_OUT = REPO_ROOT / "data" / "demo"

MAX_DOC_BYTES = 64_000  # longest JSON line taken by the budget fill
# Uncompressed bytes of JSON lines per source, deliberate duplicates included.
BUDGETS = {
    "linux-doc": 700_000,
    "linux-doc-html-sources": 520_000,
    "python3.11-doc": 520_000,
    "python3.11-info": 520_000,
    "git-doc": 420_000,
    "perl-doc-pod": 520_000,
    "manpages": 800_000,
    "fortunes-en": 500_000,
    "fortunes-de": 400_000,
    "fortunes-es": 260_000,
    "fortunes-it": 260_000,
    "fortunes-pl": 260_000,
    "copyright": 40_000,
}
DUP_PAIRS = {  # (source, source) -> number of exact-duplicate pairs kept
    ("linux-doc", "linux-doc-html-sources"): 40,
    ("manpages", "manpages"): 8,
    ("fortunes-en", "fortunes-en"): 4,
    ("fortunes-de", "fortunes-de"): 4,
    ("fortunes-pl", "fortunes-pl"): 2,
}
DUP_MAX_BYTES = 24_000  # each copy of a deliberate duplicate pair is at most this long
NEAR_DUP_PERL = 3  # perl-doc-pod PODs kept together with their rendered man page

FILES = {
    "part-00000.jsonl.zst": {"linux-doc", "python3.11-doc", "python3.11-info", "git-doc"},
    "part-00001.jsonl.zst": {"linux-doc-html-sources", "manpages", "perl-doc-pod"},
    "part-00002.jsonl.zst": {"fortunes-en", "fortunes-de", "fortunes-es", "fortunes-it"},
    "part-00003.jsonl.gz": {"fortunes-pl", "copyright"},
}
ZSTD_LEVEL = 3

CONV_CAPS = {  # kind of page -> most conversations of that kind
    "command": 200,
    "git": 200,
    "syscall": 160,
    "libc": 260,
    "type": 30,
    "perlmod": 180,
    "perldoc": 90,
    "manual": 90,
}
MULTI_TURN_SHARE = 0.3
MAX_ANSWER = 200

QUESTIONS = {
    "command": ["What does the `{n}` command do?", "What is `{n}` used for?", "Briefly, what does `{n}` do?"],
    "git": ["What does `{n}` do?", "What is the `{n}` command for?", "Briefly, what does `{n}` do?"],
    "syscall": ["What does the `{n}` system call do?", "What is the Linux system call `{n}` for?"],
    "libc": ["What does `{n}` do?", "What is `{n}` in the C library for?"],
    "type": ["What is the `{n}` type?", "What is `{n}` in C?"],
    "perlmod": ["What does the Perl module `{n}` do?", "What is the `{n}` Perl module for?"],
    "perldoc": ["What is the `{n}` Perl document about?", "What does `{n}` in the Perl docs cover?"],
    "manual": ["What does the `{n}({s})` manual page describe?", "What is `{n}({s})` about?"],
}
FOLLOW_UPS = {
    "usage": ["How is it invoked?", "What is its synopsis?", "And how do I run it?"],
    "proto": ["Which header declares {it}, and what is its prototype?", "How is {it} declared?"],
    "use": ["How do I load it?", "How do I use it in a script?"],
}


def rng(*key: object) -> random.Random:
    return random.Random(":".join(map(str, (SEED, *key))))


def corpus_files(corpus: Path) -> list[Path]:
    files = sorted(corpus.glob("docs-*.jsonl.zst"))
    if not files:
        sys.exit(f"no docs-*.jsonl.zst in {corpus}")
    return files


def iter_lines(corpus: Path):
    """(file index, line number, raw line bytes without newline) in corpus order."""
    for fi, path in enumerate(corpus_files(corpus)):
        with path.open("rb") as fh:
            reader = io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(fh))
            for ln, raw in enumerate(reader):
                yield fi, ln, raw.rstrip(b"\n")


# --------------------------------------------------------------------------- corpus sample


def select_corpus(corpus: Path) -> tuple[dict[tuple[int, int], str], dict]:
    """Pass 1: index the corpus (no text kept) and decide which lines to keep."""
    meta = {}  # (fi, ln) -> (source, id, nbytes, text hash, path)
    by_hash = collections.defaultdict(list)
    for fi, ln, raw in iter_lines(corpus):
        rec = json.loads(raw)
        h = hashlib.sha1(rec["text"].encode()).digest()
        meta[(fi, ln)] = (rec["source"], rec["id"], len(raw) + 1, h, rec["path"])
        by_hash[h].append((fi, ln))

    chosen: dict[tuple[int, int], str] = {}  # key -> why ("dup", "near-dup", "sample")
    used_hashes: set[bytes] = set()
    spent = collections.Counter()

    def take(key, why):
        chosen[key] = why
        used_hashes.add(meta[key][3])
        spent[meta[key][0]] += meta[key][2]

    # Deliberate exact-duplicate pairs: hash groups of exactly two copies from the wanted sources.
    dup_pairs = collections.Counter()
    for (sa, sb), n in DUP_PAIRS.items():
        groups = [
            sorted(keys)
            for keys in by_hash.values()
            if len(keys) == 2
            and sorted(meta[k][0] for k in keys) == sorted([sa, sb])
            and all(meta[k][2] <= DUP_MAX_BYTES for k in keys)
        ]
        groups.sort(key=lambda ks: meta[ks[0]][1])
        for keys in rng("dup", sa, sb).sample(groups, min(n, len(groups))):
            for k in keys:
                take(k, "dup")
            dup_pairs[(sa, sb)] += 1

    # Near duplicates: a Perl POD and the man page rendered from it (same NAME, different markup).
    pods = {
        Path(m[4]).stem: k
        for k, m in meta.items()
        if m[0] == "perl-doc-pod" and m[2] <= DUP_MAX_BYTES and len(by_hash[m[3]]) == 1
    }
    mans = {
        m[4][len("man1/"):-len(".1.gz")]: k
        for k, m in meta.items()
        if m[0] == "manpages" and m[4].startswith("man1/perl") and m[4].endswith(".1.gz")
        and len(by_hash[m[3]]) == 1 and m[2] <= DUP_MAX_BYTES
    }
    near = sorted(set(pods) & set(mans))
    near_pairs = rng("near").sample(near, min(NEAR_DUP_PERL, len(near)))
    for name in near_pairs:
        take(pods[name], "near-dup")
        take(mans[name], "near-dup")

    # Budget fill: seeded shuffle per source, no further exact duplicates.
    per_source = collections.defaultdict(list)
    for k, m in meta.items():
        per_source[m[0]].append(k)
    for source, budget in BUDGETS.items():
        keys = sorted(per_source[source], key=lambda k: meta[k][1])
        rng("fill", source).shuffle(keys)
        for k in keys:
            m = meta[k]
            if k in chosen or m[3] in used_hashes or m[2] > MAX_DOC_BYTES:
                continue
            if spent[source] + m[2] > budget:
                continue
            take(k, "sample")

    stats = {"meta": meta, "dup_pairs": dup_pairs, "near_pairs": near_pairs}
    return chosen, stats


def write_corpus(corpus: Path, out: Path, chosen: dict, stats: dict) -> dict[str, list[bytes]]:
    """Pass 2: copy the chosen raw lines, in corpus order, into the demo files."""
    meta = stats["meta"]
    file_of = {src: name for name, srcs in FILES.items() for src in srcs}
    # The later copy of each fortune duplicate pair goes to the gzip file.
    seen_fortune_dups: set[bytes] = set()
    lines: dict[str, list[bytes]] = {name: [] for name in FILES}
    for fi, ln, raw in iter_lines(corpus):
        key = (fi, ln)
        if key not in chosen:
            continue
        source, _, _, h, _ = meta[key]
        name = file_of[source]
        if chosen[key] == "dup" and source.startswith("fortunes-"):
            if h in seen_fortune_dups:
                name = "part-00003.jsonl.gz"
            seen_fortune_dups.add(h)
        lines[name].append(raw + b"\n")

    out_dir = out / "corpus"
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.jsonl*"):
        old.unlink()
    for name, chunk in lines.items():
        data = b"".join(chunk)
        path = out_dir / name
        if name.endswith(".zst"):
            path.write_bytes(zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data))
        else:
            with path.open("wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
                gz.write(data)
    return lines


# --------------------------------------------------------------------------- conversations


def clean(s: str) -> str:
    """Join a wrapped man-page paragraph: undo groff's end-of-line hyphen (U+2010), collapse spaces."""
    s = re.sub("\u2010\n\\s*", "", s)
    return re.sub(r"\s+", " ", s).strip()


def split_name_line(line: str) -> tuple[list[str], str] | None:
    """'gzip, gunzip, zcat - compress or expand files' -> (['gzip', 'gunzip', 'zcat'], 'compress ...')."""
    m = re.match(r"^(.+?)\s+(?:-|\\-|\u2010|\u2014)\s+(.+)$", line)
    if not m:
        return None
    names = [n.strip() for n in m.group(1).split(",") if n.strip()]
    desc = m.group(2).strip()
    if not names or not desc or any(" " in n or "`" in n for n in names) or "`" in desc:
        return None
    if " - " in desc or re.search(r"[A-Z]<", desc):  # a second NAME entry, or POD markup
        return None
    return names, desc


def first_line_of_block(block: str) -> str | None:
    """The first line of a synopsis block when it stands alone (no continuation line after it)."""
    lines = [ln for ln in block.split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return None
    first = lines[0]
    indent = len(first) - len(first.lstrip())
    if len(lines) > 1 and lines[1].strip() and len(lines[1]) - len(lines[1].lstrip()) > indent:
        return None
    return clean(first)


def man_page(rec: dict):
    t, path = rec["text"], rec["path"]
    m = re.search(r"^NAME\n((?:[ \t]+\S.*\n)+)", t, re.M)
    if not m:
        return None
    parsed = split_name_line(clean(m.group(1)))
    if not parsed:
        return None
    names, desc = parsed
    base = Path(path).name.removesuffix(".gz")
    sec = base.rsplit(".", 1)[1] if "." in base else path.split("/")[0].removeprefix("man")
    header = t.split("\n", 1)[0]
    syn_m = re.search(r"^SYNOPSIS\n((?:(?:[ \t]+\S.*)?\n)+?)(?=^\S)", t, re.M)
    syn = syn_m.group(1) if syn_m else ""
    follow = None
    if sec in ("1", "6", "8") and "Perl" in header:
        kind = "perldoc"
    elif names[0] == "intro":
        kind = "manual"
    elif sec in ("1", "6", "8"):
        kind = "command"
        first = first_line_of_block(syn)
        if first and first.split()[0] == names[0]:
            follow = ("usage", f"`{first}`")
    elif sec in ("2", "3"):
        kind = "syscall" if sec == "2" else "libc"
        includes = re.findall(r"^\s*#include (<[^>]+>)", syn.split(names[0] + "(")[0], re.M)
        proto = re.search(rf"^\s*(\S[^\n]*\b{re.escape(names[0])}\([^\n]*\);)\s*$", syn, re.M)
        if includes and proto and len(includes) <= 2:
            follow = ("proto", f"Include {' and '.join(f'`{i}`' for i in includes)}; "
                      f"the prototype is `{clean(proto.group(1))}`")
    elif sec == "3type":
        kind = "type"
    elif sec == "3perl":
        kind = "perlmod"
        first = first_line_of_block(syn)
        if first and re.fullmatch(rf"use {re.escape(names[0])}\b[^;]*;", first):
            follow = ("use", f"`{first}`")
    else:
        kind = "manual"
    return kind, names, desc, sec, follow


def git_page(rec: dict):
    t = rec["text"]
    m = re.search(r"^NAME\n-+\n((?:\S.*\n)+)", t, re.M)
    if not m:
        return None
    parsed = split_name_line(clean(m.group(1)))
    if not parsed:
        return None
    names, desc = parsed
    follow = None
    if names[0].startswith("git-") and Path(rec["path"]).stem == names[0]:
        cmd = "git " + names[0][4:]
        names = [cmd]
        s = re.search(r"^SYNOPSIS\n-+\n\[verse\]\n((?:.*\n)+?)\n", t, re.M)
        if s:
            first = first_line_of_block(s.group(1))
            if first and first.startswith(f"'{cmd}'"):
                follow = ("usage", f"`{first.replace(repr(cmd), cmd, 1)}`")
        return "git", names, desc, "1", follow
    title = re.match(rf"{re.escape(names[0])}\((\w+)\)\n", t)
    return ("manual", names, desc, title.group(1), None) if title else None


def pod_page(rec: dict):
    m = re.search(r"^=head1 NAME\s*\n\n((?:\S.*\n)+)", rec["text"], re.M)
    if not m:
        return None
    parsed = split_name_line(clean(m.group(1)))
    if not parsed:
        return None
    names, desc = parsed
    if not re.fullmatch(r"perl\w*", names[0]):
        return None
    return "perldoc", names, desc, "1", None


def answer_line(names: list[str], desc: str) -> str:
    shown = names if len(names) <= 3 else names[:1]
    text = f"{', '.join(f'`{n}`' for n in shown)}: {desc}"
    return text if text[-1] in ".!?" else text + "."


def build_conversations(corpus: Path) -> tuple[list[dict], collections.Counter]:
    parsers = {"manpages": man_page, "git-doc": git_page, "perl-doc-pod": pod_page}
    candidates = []
    for _, _, raw in iter_lines(corpus):
        rec = json.loads(raw)
        parse = parsers.get(rec["source"])
        if not parse:
            continue
        page = parse(rec)
        if page:
            candidates.append((rec["source"] == "perl-doc-pod", rec["id"], page))
    # Deduplicate (pages rendered twice, .so links, POD vs man page): prefer the rendered man page
    # over the POD source, then id order.
    candidates.sort(key=lambda c: (c[0], c[1]))
    seen, by_kind = set(), collections.defaultdict(list)
    for _, doc_id, (kind, names, desc, sec, follow) in candidates:
        key = (names[0].lower(), desc.lower())
        if key in seen or len(answer_line(names, desc)) > MAX_ANSWER:
            continue
        seen.add(key)
        by_kind[kind].append((doc_id, names, desc, sec, follow))

    conversations, counts = [], collections.Counter()
    for kind, cap in CONV_CAPS.items():
        pool = sorted(by_kind[kind], key=lambda c: c[0])
        for doc_id, names, desc, sec, follow in rng("conv", kind).sample(pool, min(cap, len(pool))):
            r = rng("turn", doc_id)
            several = 1 < len(names) <= 3 and kind not in ("manual", "perldoc")
            q = r.choice(QUESTIONS[kind]).format(n=names[0], s=sec)
            if several:
                q = f"What do {', '.join(f'`{n}`' for n in names[:-1])} and `{names[-1]}` do?"
            messages = [{"role": "user", "content": q},
                        {"role": "assistant", "content": answer_line(names, desc)}]
            if follow and r.random() < MULTI_TURN_SHARE:
                fkind, fanswer = follow
                if len(fanswer) <= MAX_ANSWER:
                    it = f"`{names[0]}`" if several else "it"
                    messages += [{"role": "user", "content": r.choice(FOLLOW_UPS[fkind]).format(it=it)},
                                 {"role": "assistant", "content": fanswer}]
                    counts["multi-turn"] += 1
            conversations.append({"messages": messages, "source": doc_id})
            counts[kind] += 1
    rng("conv-order").shuffle(conversations)
    return conversations, counts


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS,
                    help="debian-docs corpus folder (default: ../shared/corpora/debian-docs "
                         "from the repository root)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: data/demo)")
    args = ap.parse_args()
    corpus = args.corpus.resolve()

    chosen, stats = select_corpus(corpus)
    lines = write_corpus(corpus, args.out, chosen, stats)
    conversations, conv_counts = build_conversations(corpus)
    with (args.out / "conversations.jsonl").open("w", encoding="utf-8", newline="\n") as fh:
        for conv in conversations:
            fh.write(json.dumps(conv, ensure_ascii=False) + "\n")

    # Summary (the numbers data/README.md quotes).
    per_source, per_lang, bytes_per_source = (collections.Counter() for _ in range(3))
    hashes = collections.Counter()
    for name, chunk in lines.items():
        for raw in chunk:
            rec = json.loads(raw)
            per_source[rec["source"]] += 1
            per_lang[rec.get("lang") or "-"] += 1
            bytes_per_source[rec["source"]] += len(raw)
            hashes[hashlib.sha1(rec["text"].encode()).digest()] += 1
    total = sum(bytes_per_source.values())
    print(f"corpus: {sum(per_source.values())} documents, {total:,} bytes uncompressed")
    for name, chunk in lines.items():
        path = args.out / "corpus" / name
        print(f"  {name}: {len(chunk)} docs, {sum(map(len, chunk)):,} B raw, "
              f"{path.stat().st_size:,} B on disk")
    print(f"  on disk in all: {sum(p.stat().st_size for p in (args.out / 'corpus').iterdir()):,} B")
    for src, n in sorted(per_source.items(), key=lambda kv: -bytes_per_source[kv[0]]):
        nbytes = bytes_per_source[src]
        print(f"  {src:24s} {n:5d} docs {nbytes:9,d} B ({100 * nbytes / total:4.1f}%)")
    print("  languages:", dict(sorted(per_lang.items())))
    print("  exact-duplicate pairs:", {f"{a}/{b}": n for (a, b), n in stats["dup_pairs"].items()},
          "| texts present twice:", sum(1 for c in hashes.values() if c == 2),
          "| more than twice:", sum(1 for c in hashes.values() if c > 2))
    print("  near-duplicate POD/man pairs:", stats["near_pairs"])
    print(f"conversations: {len(conversations)}", dict(conv_counts))


if __name__ == "__main__":
    main()
