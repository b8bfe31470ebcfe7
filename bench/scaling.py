"""Cost as the work grows: the whole corpus chain (build, fuzzy dedup, token shards) on 0.25 to 10 GB.

    .venv/bin/python bench/scaling.py [--sizes 0.25,1,4,10] [--work /tmp/scaling] [--keep-inputs]

Input per size: the shared debian-docs corpus (../shared/corpora/debian-docs) replicated by the benches'
generator (bench.near_duplicates.replicated: copy 0 as it is, later copies with 0-10% word edits) to
that many GB of text, as zstd JSON lines files of about 64 MB of text each: raw input, as a user brings
it. The largest size is generated once; each smaller size is its first files (input_prefix). One
tokenizer (vocabulary 8,192) is trained once on the smallest size's corpus and used for all.
The corpus build runs without its quality filters and language ID (NO_FILTERS), so that every stage
sees the whole volume.

Each stage is its job's own command line (`python -m pipelines.corpus_build ...`, log_to_mlflow=false)
joined to one local Ray head on this machine's cores, one size after the other. Per size and stage:

- wall seconds;
- CPU seconds per GB of input text: the busy time of every core during the stage, from /proc/stat, so
  it counts Ray's own processes too (keep the machine otherwise idle);
- peak RSS per worker, from the job's stats (each task's getrusage);
- peak work-file bytes and files: the most the job's output folder (with its _work/) held during the
  stage, less what it holds at the end, sampled every second;
- each size's per-GB cost over the 1 GB run's (the target: within 20% from 1 to 10 GB, RSS flat);
- after the table, each job's rounds (its stats.json "seconds"), in wall seconds per GB: where a
  ratio above 1 comes from. Every figure is also in WORK/results.json, written after each size.

Disk: the largest size's input (0.3 GB per GB of text) stays until the end; a size's corpus, fuzzy
corpus and tokens stay until its chain ends (1.25 GB per GB of text), beside the running stage's work
files (up to 0.65 GB per GB): about 16 GB at the peak of `--sizes 1,10`. --keep-inputs keeps the input.
Time: `--sizes 1,10` took 102 min here (24 of them generating the 10 GB input), `--sizes 0.25,1,4` 40 min.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.near_duplicates import read_documents, replicated  # noqa: E402

SHARED_CORPUS = ROOT.parent / "shared" / "corpora" / "debian-docs"
FILE_TEXT_BYTES = 64_000_000
JOBS = ("corpus_build", "fuzzy_dedup", "token_shards")
# Every document flows through every stage: the quality filters and language ID would drop most of these
# manuals (the filters' own cost per core is bench/cleaning_vs_datatrove.py's); normalization, reading,
# writing and the exact dedup stay.
NO_FILTERS = [*(f"{stage}=false" for stage in ("gopher_quality", "gopher_repetition", "c4", "fineweb")), "languages=[]",
              "language_threshold=0"]


def make_input(folder: Path, size_gb: float, seed: int = 0) -> dict:
    """Raw zstd JSON lines of the replicated corpus in `folder` (made once; info.json marks it complete)."""
    import zstandard

    info_file = folder / "info.json"
    if info_file.is_file():
        return json.loads(info_file.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    originals = list(read_documents(sorted(SHARED_CORPUS.glob("docs-*.jsonl*"))))
    rng = np.random.default_rng(seed)
    vocabulary = sorted({w for _, text, _ in originals[:5000] for w in text.split() if w.isalpha()})
    files = documents = total = 0
    lines: list[bytes] = []
    text_bytes = 0

    per_file: list[dict] = []

    def flush() -> None:
        nonlocal files, lines, text_bytes
        data = zstandard.ZstdCompressor(level=3).compress(b"".join(lines))
        (folder / f"part-{files:05d}.jsonl.zst").write_bytes(data)
        per_file.append({"documents": len(lines), "text_bytes": text_bytes})
        files, lines, text_bytes = files + 1, [], 0

    started = time.perf_counter()
    for doc_id, text, source, _ in replicated(originals, size_gb * 1e9, vocabulary, rng):
        lines.append(json.dumps({"id": doc_id, "text": text, "source": source}).encode() + b"\n")
        size = len(text.encode("utf-8"))
        documents, total, text_bytes = documents + 1, total + size, text_bytes + size
        if text_bytes >= FILE_TEXT_BYTES:
            flush()
            print(f"  input {size_gb:g} GB: {total / 1e9:.2f} GB written ({time.perf_counter() - started:.0f} s)", flush=True)
    if lines:
        flush()
    info = {"documents": documents, "text_bytes": total, "files": files,
            "file_bytes": sum(p.stat().st_size for p in folder.glob("*.zst")), "per_file": per_file}
    info_file.write_text(json.dumps(info))
    return info


def input_prefix(full: Path, full_info: dict, folder: Path, size_gb: float) -> dict:
    """The first files of the largest size's input, up to `size_gb` of text, linked into `folder`.

    The generator is a seeded stream, so a smaller size made on its own holds the same documents up to
    its last (partial) file: taking whole files saves generating every size (7-9 MB/s on one core).
    """
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    documents = total = file_bytes = files = 0
    for part in full_info["per_file"]:
        if total >= size_gb * 1e9:
            break
        name = f"part-{files:05d}.jsonl.zst"
        (folder / name).symlink_to(full / name)
        documents, total, files = documents + part["documents"], total + part["text_bytes"], files + 1
        file_bytes += (full / name).stat().st_size
    return {"documents": documents, "text_bytes": total, "files": files, "file_bytes": file_bytes}


CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_seconds() -> dict[str, float]:
    """CPU time of all cores since boot, by kind (/proc/stat's first line), and "busy": all but idle and iowait."""
    fields = [int(x) / os.sysconf("SC_CLK_TCK") for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    times = dict(zip(CPU_FIELDS, fields))
    return times | {"busy": sum(fields) - times["idle"] - times["iowait"]}


def folder_usage(folder: Path) -> tuple[int, int]:
    """(bytes, files) under `folder`."""
    total = files = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
                files += 1
            except OSError:  # renamed or removed meanwhile
                pass
    return total, files


class PeakUsage(threading.Thread):
    """The most bytes and files `folder` held, sampled every second."""

    def __init__(self, folder: Path):
        super().__init__(daemon=True)
        self.folder, self.bytes, self.files, self.done = folder, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            size, files = folder_usage(self.folder)
            self.bytes, self.files = max(self.bytes, size), max(self.files, files)


def stage(module: str, args: list[str], output_dir: Path, ray_address: str) -> dict:
    """Run one job; its wall and busy CPU seconds, peak folder bytes, and its stats."""
    watcher = PeakUsage(output_dir)
    watcher.start()
    before, started = cpu_seconds(), time.perf_counter()
    result = subprocess.run([sys.executable, "-m", module, *args, "log_to_mlflow=false"], cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, RAY_ADDRESS=ray_address))
    wall, after = time.perf_counter() - started, cpu_seconds()
    cpu_split = {kind: round(after[kind] - before[kind], 1) for kind in CPU_FIELDS if kind != "idle"}
    cpu = after["busy"] - before["busy"]
    watcher.done.set()
    watcher.join()
    if result.returncode:
        raise RuntimeError(f"{module} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    final, final_files = folder_usage(output_dir)
    stats = json.loads((output_dir / "stats.json").read_text())
    return {"wall": wall, "cpu": cpu, "work_bytes": max(watcher.bytes - final, 0), "work_files": max(watcher.files - final_files, 0),
            "output_bytes": final,
            "peak_rss_mb": max(stats["peak_rss_mb"].values()), "rounds": stats.get("seconds", {}),
            "cpu_split": cpu_split}


def chain(size_gb: float, largest_gb: float, work: Path, tokenizer: Path | None, ray_address: str
          ) -> tuple[dict, dict[str, dict], Path | None]:
    """Input info, per-stage figures, and the tokenizer (trained here when `tokenizer` is None)."""
    full = work / f"input-{largest_gb:g}gb"
    full_info = make_input(full, largest_gb)
    inputs = work / f"input-{size_gb:g}gb"
    info = full_info if size_gb == largest_gb else input_prefix(full, full_info, inputs, size_gb)
    out = work / f"out-{size_gb:g}gb"
    shutil.rmtree(out, ignore_errors=True)
    figures = {"corpus_build": stage("pipelines.corpus_build", [f"inputs={inputs}", f"output_dir={out / 'corpus'}", *NO_FILTERS],
                                     out / "corpus", ray_address)}
    figures["fuzzy_dedup"] = stage("pipelines.fuzzy_dedup", [f"corpus_dir={out / 'corpus'}", f"output_dir={out / 'corpus_fuzzy'}"],
                                   out / "corpus_fuzzy", ray_address)
    if tokenizer is None:
        tokenizer = work / "tokenizer"
        subprocess.run([sys.executable, "-m", "tokenizer.train", f"corpus_dir={out / 'corpus_fuzzy'}", f"output_dir={tokenizer}",
                        "vocab_size=8192", "log_to_mlflow=false"], cwd=ROOT, check=True, capture_output=True)
    figures["token_shards"] = stage("pipelines.token_shards", [f"corpus_dir={out / 'corpus_fuzzy'}", f"tokenizer_dir={tokenizer}",
                                                               f"output_dir={out / 'tokens'}", "seq_len=2048"], out / "tokens", ray_address)
    return info, figures, tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0.25,1,4,10")
    parser.add_argument("--work", type=Path, default=Path("/tmp/scaling"))
    parser.add_argument("--keep-inputs", action="store_true")
    args = parser.parse_args()
    from stack.local_ray import start_head

    sizes = [float(s) for s in args.sizes.split(",")]
    print(f"# scaling: corpus_build -> fuzzy_dedup -> token_shards, {os.cpu_count()} cores, sizes {', '.join(f'{s:g}' for s in sizes)} GB")
    print("| GB of text | stage | wall s | CPU s per GB | per-GB cost / 1 GB's | peak RSS per worker MB | peak work files GB | work files | output GB |")
    print("|---|---|---|---|---|---|---|---|---|")
    head = start_head()
    tokenizer, per_gb, results = None, {}, []
    try:
        for size in sorted(sizes):
            info, figures, tokenizer = chain(size, max(sizes), args.work, tokenizer, head.gcs_address)
            gigabytes = info["text_bytes"] / 1e9
            figures["chain"] = {"wall": sum(f["wall"] for f in figures.values()), "cpu": sum(f["cpu"] for f in figures.values()),
                                "peak_rss_mb": max(f["peak_rss_mb"] for f in figures.values()),
                                "work_bytes": max(f["work_bytes"] for f in figures.values()),
                                "work_files": max(f["work_files"] for f in figures.values()),
                                "output_bytes": sum(f["output_bytes"] for f in figures.values())}
            results.append({"size_gb": size, "input": {k: v for k, v in info.items() if k != "per_file"}, "figures": figures})
            (args.work / "results.json").write_text(json.dumps(results, indent=1))  # kept if a later size fails
            for name, f in figures.items():
                per_gb[(size, name)] = f["cpu"] / gigabytes
                baseline = per_gb.get((1.0, name))
                ratio = f"{per_gb[(size, name)] / baseline:.2f}" if baseline else "-"
                row = (f"| {gigabytes:.2f} | {name} | {f['wall']:.0f} | {per_gb[(size, name)]:.0f} | {ratio} | {f['peak_rss_mb']:.0f} | "
                       f"{f['work_bytes'] / 1e9:.2f} | {f['work_files']:,} | {f['output_bytes'] / 1e9:.2f} |")
                print(row, flush=True)
            shutil.rmtree(args.work / f"out-{size:g}gb", ignore_errors=True)
            if not args.keep_inputs and size != max(sizes):  # the largest input's files make every smaller one
                shutil.rmtree(args.work / f"input-{size:g}gb", ignore_errors=True)
        if not args.keep_inputs:
            shutil.rmtree(args.work / f"input-{max(sizes):g}gb", ignore_errors=True)
    finally:
        head.stop()
    print("\nper GB of text: each job's rounds in wall seconds (its stats.json), and its CPU seconds by kind (/proc/stat;\n"
          "busy is all but idle and iowait; nice is niced user time: Ray's task workers run at niceness 15):")
    for result in results:
        gigabytes = result["input"]["text_bytes"] / 1e9
        for name in JOBS:
            f = result["figures"][name]
            print(f"  {name} {result['size_gb']:g} GB: " + ", ".join(f"{r} {t / gigabytes:.1f}" for r, t in f["rounds"].items())
                  + "; CPU " + ", ".join(f"{k} {v / gigabytes:.0f}" for k, v in f["cpu_split"].items()))
    if any(size < 1 for size in sizes) and 1.0 in sizes:  # the sizes below 1 GB were printed before the baseline existed
        print("\nper-GB cost / 1 GB's for the smaller sizes: " + ", ".join(
            f"{size:g} GB {name} {per_gb[(size, name)] / per_gb[(1.0, name)]:.2f}"
            for size in sizes if size < 1 for name in (*JOBS, "chain")))


if __name__ == "__main__":
    main()
