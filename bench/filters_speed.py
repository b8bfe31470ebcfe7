"""Throughput of our document filters vs datatrove's, per filter and all together, on one core.

    .venv/bin/python bench/filters_speed.py [--every K]

The same sample for both (every K-th document of ../shared/corpora/debian-docs, default 7: about 20 MB),
one process, CPU time. Per filter, each side runs that filter alone on every document; "all together" runs
Gopher quality, Gopher repetition, C4, FineWeb and PII one after the other (a dropped document stops, C4's
rewritten text goes on), ours as the corpus build runs them: each filter's `apply` on an Arrow table of
the documents the previous one kept (each filter splits its words; the word cache serves the repeats).
Our word cache starts empty for every measurement, and numba's compiled code is loaded (or compiled)
before timing. datatrove runs its filters' `filter`/`format` methods directly, without its
pipeline around them (its fastest case); it needs spaCy and the `regex` package.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from filter_agreement import CONFIGS, Datatrove, read_corpus  # noqa: E402

from pipelines.filters import FILTERS, c4, fineweb, gopher_quality, gopher_repetition, pii  # noqa: E402
from pipelines.filters import words as words_module  # noqa: E402


def our_steps() -> dict:
    """Per filter, a function of one text that runs our filter with its default config."""
    return {
        "gopher_quality": lambda text: gopher_quality.drop_reason(text, CONFIGS["gopher_quality"]),
        "gopher_repetition": lambda text: gopher_repetition.drop_reason(text, CONFIGS["gopher_repetition"]),
        "c4": lambda text: c4.clean(text, CONFIGS["c4"]),
        "fineweb": lambda text: fineweb.drop_reason(text, CONFIGS["fineweb"]),
        "pii": lambda text: pii.redact(text, CONFIGS["pii"]),
    }


def ours_all(table: pa.Table) -> pa.Table:
    """Our filters in pipeline order, each on the rows the previous one kept; the rows kept by all."""
    for name, (_, apply) in FILTERS.items():
        table = apply(table, CONFIGS[name]).kept
    return table


def datatrove_steps(datatrove: Datatrove) -> dict:
    from datatrove.data import Document

    steps = {
        name: (lambda text, step=step: step.filter(Document(text=text, id="")))
        for name, step in datatrove.filters.items()
    }
    return steps | {"pii": datatrove.pii.format}


def datatrove_all(datatrove: Datatrove, texts: list[str]) -> None:
    from datatrove.data import Document

    for text in texts:
        document = Document(text=text, id="")
        if all(step.filter(document) is True for step in datatrove.filters.values()):  # stops at the first drop
            datatrove.pii.format(document.text)


def cpu_seconds(run) -> float:
    words_module._CACHE.clear()
    start = time.process_time()
    run()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=7, help="take every K-th document of the corpus")
    args = parser.parse_args()
    texts = [document["text"] for document in read_corpus(args.every)]
    megabytes = sum(len(text.encode()) for text in texts) / 1e6
    datatrove = Datatrove()
    ours, theirs = our_steps(), datatrove_steps(datatrove)
    for name in FILTERS:  # load numba's code and spaCy before timing
        ours[name]("warm up " * 20)
        theirs[name]("warm up " * 20)
    table = pa.table({"text": texts})
    seconds = Counter()
    for name in FILTERS:
        seconds["ours", name] = cpu_seconds(lambda: [ours[name](text) for text in texts])
        seconds["datatrove", name] = cpu_seconds(lambda: [theirs[name](text) for text in texts])
    seconds["ours", "all together"] = cpu_seconds(lambda: ours_all(table))
    seconds["datatrove", "all together"] = cpu_seconds(lambda: datatrove_all(datatrove, texts))

    print(f"{len(texts)} documents, {megabytes:.1f} MB; one core, CPU time\n")
    header = ("ours MB/s", "docs/s", "datatrove MB/s", "docs/s", "ours/datatrove")
    print(f"{'filter':18s} {header[0]:>10s} {header[1]:>8s} {header[2]:>15s} {header[3]:>8s} {header[4]:>15s}")
    for name in [*FILTERS, "all together"]:
        mine, theirs_ = seconds["ours", name], seconds["datatrove", name]
        print(f"{name:18s} {megabytes / mine:10.2f} {len(texts) / mine:8.0f} {megabytes / theirs_:15.2f} "
              f"{len(texts) / theirs_:8.0f} {theirs_ / mine:14.1f}x")


if __name__ == "__main__":
    main()
