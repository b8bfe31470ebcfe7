"""Rebuild the local lm-eval tasks in data/eval_tasks/ from the real debian-docs corpus (offline, seeded).

    .venv/bin/python data/make_eval_tasks.py [CORPUS_DIR] [--out data/eval_tasks]

All tasks are held out: no document they are made from is in data/demo/corpus (what the demo
pretrains on), and no page is one that data/demo/conversations.jsonl (what it fine-tunes on) asks about.

demo_cloze.jsonl -- a four-way cloze, lm-eval `multiple_choice`: the first words of a sentence of a man
page, a Python or Linux document, and four endings: its own, and those of three sentences of other
documents. A language model of this kind of text should prefer the sentence's own ending; chance is 25%.

demo_order.jsonl -- the same kind of sentences, `multiple_choice` on word order: the sentence's last
words in their own order, and three shuffles of the same words. Each choice holds the same words, so
only a model that has learned how words follow each other in English beats chance (25%).

demo_whatis.jsonl -- `generate_until`: "What does the `ls` command do?" in the words of the demo's
conversations, for pages of the same kinds; the answer the demo's SFT learned to give starts with the
page's name in backticks (`ls`: list directory contents.). Scored by exact match of that name: a test
that the model answers in its fine-tuned form about something it was never told of.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from pathlib import Path

import make_demo_data as demo

CLOZE_ITEMS = 200
ORDER_ITEMS = 200
WHATIS_ITEMS = 100
CLOZE_SOURCES = ("manpages", "linux-doc", "python3.11-doc", "git-doc")
DEFAULT_OUT = demo.REPO_ROOT / "data" / "eval_tasks"


def demo_ids(demo_dir: Path) -> tuple[set[str], set[str]]:
    """(ids of the demo corpus' documents, source ids of the demo conversations)."""
    import gzip

    import zstandard

    corpus_ids = set()
    for path in sorted((demo_dir / "corpus").iterdir()):
        raw = path.read_bytes()
        text = zstandard.ZstdDecompressor().stream_reader(raw).read() if path.suffix == ".zst" else gzip.decompress(raw)
        corpus_ids |= {json.loads(line)["id"] for line in text.decode("utf-8").splitlines() if line.strip()}
    conversation_sources = {json.loads(line)["source"] for line in (demo_dir / "conversations.jsonl").read_text().splitlines()}
    return corpus_ids, conversation_sources


def sentences(text: str) -> list[str]:
    """Prose sentences of a document: paragraphs' lines joined, 10 to 30 words, letters and plain punctuation."""
    found = []
    for paragraph in re.split(r"\n\s*\n", text):
        joined = demo.clean(paragraph)
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", joined):
            words = sentence.split()
            if not 10 <= len(words) <= 30 or not sentence.endswith("."):
                continue
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9 ,;:'()\-.]*", sentence):
                continue
            found.append(sentence)
    return found


def cloze_items(records: list[dict]) -> list[dict]:
    pool = []
    for rec in sorted(records, key=lambda r: r["id"]):
        found = sentences(rec["text"])
        if found:
            sentence = demo.rng("cloze-sentence", rec["id"]).choice(found)
            words = sentence.split()
            cut = max(5, round(len(words) * 0.6))
            pool.append({"context": " ".join(words[:cut]), "ending": " ".join(words[cut:]), "source": rec["id"]})
    chosen = demo.rng("cloze").sample(pool, min(CLOZE_ITEMS, len(pool)))
    items = []
    for i, item in enumerate(chosen):
        r = demo.rng("cloze-choices", item["source"])
        others = [o["ending"] for o in r.sample(pool, 8) if o["source"] != item["source"] and o["ending"] != item["ending"]][:3]
        label = r.randrange(4)
        choices = others[:label] + [item["ending"]] + others[label:]
        items.append({"id": i, "context": item["context"], "choices": choices, "label": label, "source": item["source"]})
    return items


def order_items(records: list[dict]) -> list[dict]:
    pool = []
    for rec in sorted(records, key=lambda r: r["id"]):
        found = [s for s in sentences(rec["text"]) if len(s.split()) >= 12]
        if found:
            words = demo.rng("order-sentence", rec["id"]).choice(found).rstrip(".").split()
            cut = len(words) // 2
            pool.append((rec["id"], " ".join(words[:cut]), words[cut:]))
    items = []
    for i, (doc_id, context, ending) in enumerate(demo.rng("order").sample(pool, min(ORDER_ITEMS, len(pool)))):
        r = demo.rng("order-choices", doc_id)
        shuffles = []
        while len(shuffles) < 3:
            words = ending[:]
            r.shuffle(words)
            if words != ending and words not in shuffles:
                shuffles.append(words)
        label = r.randrange(4)
        choices = [" ".join(w) + "." for w in shuffles[:label] + [ending] + shuffles[label:]]
        items.append({"id": i, "context": context, "choices": choices, "label": label, "source": doc_id})
    return items


def whatis_items(records: list[dict], conversation_sources: set[str]) -> list[dict]:
    parsers = {"manpages": demo.man_page, "git-doc": demo.git_page, "perl-doc-pod": demo.pod_page}
    seen, pool = set(), []
    for rec in sorted(records, key=lambda r: r["id"]):
        parse = parsers.get(rec["source"])
        page = parse(rec) if parse and rec["id"] not in conversation_sources else None
        if not page:
            continue
        kind, names, desc, sec, _ = page
        if kind in ("manual", "perldoc") or (names[0].lower(), desc.lower()) in seen:
            continue
        seen.add((names[0].lower(), desc.lower()))
        pool.append((rec["id"], kind, names[0], sec))
    items = []
    for i, (doc_id, kind, name, sec) in enumerate(demo.rng("whatis").sample(pool, min(WHATIS_ITEMS, len(pool)))):
        question = demo.rng("whatis-question", doc_id).choice(demo.QUESTIONS[kind]).format(n=name, s=sec)
        items.append({"id": i, "question": question, "answer": f"`{name}`", "kind": kind, "source": doc_id})
    return items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", nargs="?", type=Path, default=demo.DEFAULT_CORPUS)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    corpus_ids, conversation_sources = demo_ids(demo.DEFAULT_OUT)
    records = []
    for _, _, raw in demo.iter_lines(args.corpus.resolve()):
        rec = json.loads(raw)
        if rec["id"] not in corpus_ids and rec["source"] in (*CLOZE_SOURCES, "perl-doc-pod"):
            records.append(rec)
    prose = [r for r in records if r["source"] in CLOZE_SOURCES]
    tasks = {"demo_cloze.jsonl": cloze_items(prose), "demo_order.jsonl": order_items(prose),
             "demo_whatis.jsonl": whatis_items(records, conversation_sources)}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, items in tasks.items():
        with (args.out / name).open("w", encoding="utf-8", newline="\n") as fh:
            for item in items:
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
        by_source = collections.Counter(i["source"].split("/")[0] if "/" in i["source"] else i.get("kind", "") for i in items)
        print(f"{args.out / name}: {len(items)} items", by_source.most_common(6), file=sys.stderr)


if __name__ == "__main__":
    main()
