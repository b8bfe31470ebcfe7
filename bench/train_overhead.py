"""What our training job costs over a plain torch loop: the same model, data, steps and optimizer.

    .venv/bin/python bench/train_overhead.py [--steps 120] [--precisions fp32,bf16] [--repeats 3]

1. Token shards of one demo file (seq_len 256), made in-process (runner=local).
2. A plain single-process loop on all of this machine's cores: MaskPredictor (tiny), the pretraining
   objective, AdamW from trainer/optim.py, gradient clipping, warmup-stable-decay, batches of 8 from the
   same streaming loader; bf16 as torch.autocast (DeepSpeed's bf16 also keeps fp32 master weights).
3. `python -m trainer.pretrain` with its defaults (1 Ray Train worker, ZeRO 0, the cores Ray gives it),
   on a local Ray head, no validation and no intermediate checkpoint.

Steady-state tokens/s of each: ours from its console lines after the first log step (the first steps
hold one-off costs), the plain loop's over the same steps. The job's fixed cost is reported apart:
its wall time less its steps at the steady rate (Ray Train's worker start, DeepSpeed's initialisation,
the final save and export).

On a shared machine one pair of runs can move by 20%: each precision runs `--repeats` pairs, the plain
loop and our job one after the other, and the table gives the median of the pairs' ratios and their range.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")  # before torch: oneDNN reads it at load

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH, SEQ_LEN, LOG_EVERY = 8, 256, 10


def make_tokens(work: Path) -> Path:
    no_filters = [f"{stage}=false" for stage in ("gopher_quality", "gopher_repetition", "c4", "fineweb")]
    commands = [
        ["pipelines.corpus_build", f"inputs={ROOT / 'data/demo/corpus/part-00003.jsonl.gz'}", f"output_dir={work / 'corpus'}",
         "languages=[]", "language_threshold=0", *no_filters, "runner=local"],
        ["tokenizer.train", f"corpus_dir={work / 'corpus'}", f"output_dir={work / 'tokenizer'}", "vocab_size=512"],
        ["pipelines.token_shards", f"corpus_dir={work / 'corpus'}", f"tokenizer_dir={work / 'tokenizer'}",
         f"output_dir={work / 'tokens'}", f"seq_len={SEQ_LEN}", "runner=local"],
    ]
    for module, *args in commands:
        subprocess.run([sys.executable, "-m", module, *args, "log_to_mlflow=false"], cwd=ROOT, check=True, capture_output=True)
    return work / "tokens"


def plain_loop(tokens: Path, precision: str, steps: int) -> float:
    """Steady-state tokens/s of a single-process loop on all cores (the steps after the first LOG_EVERY)."""
    import numpy as np
    import torch

    from trainer.data import SequenceLoader
    from trainer.diffusion import forward_process, masked_diffusion_loss
    from trainer.model import MaskPredictor
    from trainer.model_config import model_config
    from trainer.optim import build_optimizer
    from trainer.schedule import wsd_lr_factor

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    loader = SequenceLoader(str(tokens), global_batch_size=BATCH, seed=0)
    model = MaskPredictor(model_config("tiny", vocab_size=loader.vocab_size)).train()
    optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: wsd_lr_factor(s, total_steps=steps, warmup_steps=10, decay_fraction=0.1, final_ratio=0.1))
    mask_id = loader.special_tokens["mask"]
    generator = torch.Generator().manual_seed(0)
    started = None
    for step in range(steps):
        if step == LOG_EVERY:
            started = time.perf_counter()
        (batch,) = loader.next_step(rank=0, world_size=1, micro_batch_size=BATCH)
        ids = torch.from_numpy(batch.tokens.astype(np.int64))
        noisy, masked, p_mask = forward_process(ids, mask_id, generator=generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(noisy)
        loss = masked_diffusion_loss(logits, ids, masked, p_mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        float(loss.detach())  # the job syncs at log steps only; here every step, the stricter case
    return (steps - LOG_EVERY) * BATCH * SEQ_LEN / (time.perf_counter() - started)


def our_job(tokens: Path, output_dir: Path, precision: str, steps: int, ray_address: str) -> tuple[float, float]:
    """(steady-state tokens/s, wall seconds) of `python -m trainer.pretrain` with its defaults."""
    command = [sys.executable, "-m", "trainer.pretrain", f"tokens_dir={tokens}", f"output_dir={output_dir}", f"steps={steps}",
               f"micro_batch_size={BATCH}", f"log_every={LOG_EVERY}", f"precision={precision}", "val_sequences=0",
               "resume=never", "lr=1e-3", "warmup_steps=10"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=dict(os.environ, RAY_ADDRESS=ray_address), capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    rates = [float(m.group(2)) for m in re.finditer(r"\[pretrain\] step (\d+)/\d+ .*tokens/s (\d+)", result.stdout)
             if int(m.group(1)) > LOG_EVERY]
    return sum(rates) / len(rates), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{tempfile.mkdtemp(prefix='bench-mlflow-')}/mlflow.db")
    from stack.local_ray import start_head

    work = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    tokens = make_tokens(work)
    print(f"# train_overhead: tiny model, batch {BATCH} x {SEQ_LEN}, {args.steps} steps, {os.cpu_count()} cores; "
          f"tokens/s after step {LOG_EVERY}; medians of {args.repeats} pairs of runs")
    print("| precision | plain torch loop tokens/s | our job tokens/s | ratio (median) | ratios of the pairs | job wall s | of which fixed cost s |")
    print("|---|---|---|---|---|---|---|")
    head = start_head()
    try:
        for precision in args.precisions.split(","):
            pairs = []
            for repeat in range(args.repeats):
                plain = plain_loop(tokens, precision, args.steps)
                ours, wall = our_job(tokens, work / f"pretrain-{precision}-{repeat}", precision, args.steps, head.gcs_address)
                pairs.append((ours / plain, plain, ours, wall))
            ratio, plain, ours, wall = sorted(pairs)[len(pairs) // 2]
            fixed = wall - args.steps * BATCH * SEQ_LEN / ours
            ratios = ", ".join(f"{pair[0]:.2f}" for pair in pairs)
            print(f"| {precision} | {plain:,.0f} | {ours:,.0f} | {ratio:.2f} | {ratios} | {wall:.0f} | {fixed:.0f} |", flush=True)
    finally:
        head.stop()


if __name__ == "__main__":
    main()
