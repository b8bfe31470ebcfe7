"""SFT at LLaDA's scale (4.5M pairs): the real `python -m trainer.sft` job, its worker's memory against a
set 100 times smaller, and an exact resume after a SIGKILL.

    .venv/bin/python bench/sft_scale.py [--pairs 45000,4500000] [--seq-len 64] [--steps 60]

For each size, random pairs in pipelines.sft_shards' layout (token rows with prompt_length and length
columns; the ids drawn from a small trained tokenizer's vocabulary, whose sha256 the manifest carries)
are trained on from a random tiny checkpoint: one Ray Train worker, ZeRO 0, fp32, on a local Ray head.
The Ray Train worker's memory is polled from /proc every 0.2 s: peak anonymous memory (what it
allocates; the pairs are memory-mapped, so their pages are page cache, counted apart as file MB).

On the largest set a second run is SIGKILLed (the whole process group) after its first checkpoint and
rerun with the same command: its metrics.jsonl must equal the uninterrupted run's, and its weights be
torch.equal to them. Needs about 3 GB of disk for 4.5M pairs of 64 tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402

MICRO_BATCH, LOG_EVERY = 8, 5


def write_pairs(folder: Path, pairs: int, seq_len: int, vocab_size: int, tokenizer_sha256: str, per_file: int = 500_000) -> float:
    """Random SFT pair rows (ids 8..vocab_size-1, a prompt of a quarter to half of each length); GB written."""
    from formats.token_shards import write_manifest
    from tests.formats import write_token_folder

    rng = np.random.default_rng(0)
    bounds = list(range(0, pairs, per_file)) + [pairs]
    files, columns = [], []
    for lo, hi in zip(bounds, bounds[1:]):
        files.append({"pairs": rng.integers(8, vocab_size, (hi - lo, seq_len), dtype=np.uint32)})
        length = rng.integers(8, seq_len + 1, hi - lo, dtype=np.int32)
        columns.append({"prompt_length": length // 4 + rng.integers(0, length // 4 + 1, dtype=np.int32), "length": length})
    manifest = write_token_folder(folder, files, tokenizer_sha256=tokenizer_sha256, hash_files=False, columns=columns)
    counts = {"conversations": pairs, "pairs": pairs, "bad_lines": 0, "truncated": 0, "too_long": 0}
    write_manifest(folder, manifest | {"counts": counts})  # what pipelines.sft_shards records beside the pairs
    return sum(p.stat().st_size for p in folder.iterdir()) / 1e9


def init_checkpoint(folder: Path, tokenizer) -> None:
    import torch

    from formats.checkpoint import write_tokenizer_ref
    from trainer.checkpoint import save_model
    from trainer.model import MaskPredictor
    from trainer.model_config import model_config

    torch.manual_seed(0)
    save_model(MaskPredictor(model_config("tiny", vocab_size=tokenizer.vocab_size)), folder)
    write_tokenizer_ref(folder, tokenizer.sha256, tokenizer.vocab_size)


class WorkerMemory(threading.Thread):
    """Polls the Ray Train worker processes' RssAnon and RssFile; keeps the peaks (MB)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.anon_mb = self.file_mb = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for process in psutil.process_iter(["cmdline"]):
                if "RayTrainWorker" not in " ".join(process.info["cmdline"] or []):
                    continue
                try:
                    status = Path(f"/proc/{process.pid}/status").read_text()
                except OSError:
                    continue
                fields = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("Rss")}
                self.anon_mb = max(self.anon_mb, fields.get("RssAnon", 0))
                self.file_mb = max(self.file_mb, fields.get("RssFile", 0))
            time.sleep(0.2)


def sft(pairs: Path, checkpoint: Path, tokenizer: Path, output_dir: Path, steps: int, ray_address: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "trainer.sft", f"sft_tokens_dir={pairs}", f"init_checkpoint={checkpoint}",
               f"tokenizer_dir={tokenizer}", f"output_dir={output_dir}", f"steps={steps}", f"micro_batch_size={MICRO_BATCH}",
               "num_workers=1", "precision=fp32", f"log_every={LOG_EVERY}", f"checkpoint_every={steps // 3}", "val_sequences=0",
               "warmup_steps=5"]
    return subprocess.Popen(command, cwd=ROOT, env=dict(os.environ, RAY_ADDRESS=ray_address), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(process: subprocess.Popen) -> str:
    output = process.communicate()[0]
    if process.returncode:
        raise RuntimeError(f"trainer.sft failed:\n{output[-4000:]}")
    return output


def killed_after_first_checkpoint(process: subprocess.Popen, output_dir: Path, steps: int) -> int:
    """SIGKILL the run's process group once its first checkpoint is published and before its end; the step it reached."""
    while not list((output_dir / "checkpoints").glob("step-*")):
        if process.poll() is not None:
            raise RuntimeError("the run ended before its first checkpoint")
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    reached = max(json.loads(line)["step"] for line in (output_dir / "metrics.jsonl").read_text().splitlines())
    assert reached < steps and not (output_dir / "complete.json").exists(), "the kill came after the end"
    while any("RayTrainWorker" in " ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])):
        time.sleep(0.5)  # Ray ends the dead driver's actors; the rerun must not share output_dir with them
    return reached


def same_run(output_dir: Path, reference: Path) -> bool:
    import torch

    if (output_dir / "metrics.jsonl").read_text() != (reference / "metrics.jsonl").read_text():
        return False
    ours, theirs = (torch.load(d / "model.pt", map_location="cpu", weights_only=True) for d in (output_dir, reference))
    return ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default="45000,4500000")
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tempfile.mkdtemp(prefix='bench-mlflow-')}/mlflow.db")
    from stack.local_ray import start_head
    from tests.tokenizer import conversation_tokenizer
    from tokenizer.encode import Tokenizer

    work = Path(tempfile.mkdtemp(prefix="bench-sft-"))
    tokenizer_dir = conversation_tokenizer(work)
    tokenizer = Tokenizer.load(tokenizer_dir)
    init_checkpoint(work / "init", tokenizer)
    sizes = [int(n) for n in args.pairs.split(",")]
    print(f"# sft_scale: tiny model, 1 worker, micro-batch {MICRO_BATCH}, {args.steps} steps, pairs of {args.seq_len} tokens")
    print("| pairs | data GB | tokens/s | worker peak anon MB | worker peak file MB | killed at step | resumed run equal |")
    print("|---|---|---|---|---|---|---|")
    head = start_head()
    try:
        for pairs in sizes:
            folder = work / f"pairs-{pairs}"
            gigabytes = write_pairs(folder, pairs, args.seq_len, tokenizer.vocab_size, tokenizer.sha256)
            memory = WorkerMemory()
            memory.start()
            output = finish(sft(folder, work / "init", tokenizer_dir, work / f"run-{pairs}", args.steps, head.gcs_address))
            memory.done.set()
            memory.join()
            rates = [float(m.group(2)) for m in re.finditer(r"\[sft\] step (\d+)/\d+ .*tokens/s (\d+)", output)
                     if int(m.group(1)) > LOG_EVERY]
            killed, equal = "-", "-"
            if pairs == max(sizes):
                resumed = work / f"resumed-{pairs}"
                killed = killed_after_first_checkpoint(
                    sft(folder, work / "init", tokenizer_dir, resumed, args.steps, head.gcs_address), resumed, args.steps)
                rerun = finish(sft(folder, work / "init", tokenizer_dir, resumed, args.steps, head.gcs_address))
                equal = "yes" if "resuming from" in rerun and same_run(resumed, work / f"run-{pairs}") else "NO"
            print(f"| {pairs:,} | {gigabytes:.2f} | {sum(rates) / max(len(rates), 1):,.0f} | {memory.anon_mb:,.0f} | "
                  f"{memory.file_mb:,.0f} | {killed} | {equal} |", flush=True)
            shutil.rmtree(folder)
    finally:
        head.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
