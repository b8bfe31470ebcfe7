"""Training-step throughput on this machine's CPU, against the matmul peak measured here.

1. matmul peak: best of a few n x n x n matmuls, fp32 and bf16 (2 n^3 FLOP each);
2. training steps of the masked-diffusion pretraining objective (forward process, forward, backward,
   gradient clipping, AdamW step as the trainer builds it: trainer/optim.py) for the `tiny` preset and a
   "small" shape, fp32 and bf16;
3. per row: tokens/s, achieved FLOP/s = model.flops_per_token(seq_len) * tokens/s (6N non-embedding
   + attention, the LLaDA/PaLM convention; the output head is not counted) and that as a fraction of the
   matmul peak of the same precision.

bf16 here means bf16 weights, activations and optimizer state (`model.to(torch.bfloat16)`), the compute
DeepSpeed's bf16 mode runs forward and backward in; its fp32 master copy is not modelled.

    ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 python bench/train_throughput.py [--threads 2] [--steps 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")  # before torch: oneDNN reads it at load

import torch  # noqa: E402

from trainer.diffusion import forward_process, masked_diffusion_loss  # noqa: E402
from trainer.model import MaskPredictor  # noqa: E402
from trainer.model_config import ModelConfig, tiny  # noqa: E402
from trainer.optim import build_optimizer  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def small() -> ModelConfig:
    """8 layers, d_model 512 (25M non-embedding parameters at LLaDA's 2.7x SwiGLU width)."""
    return dataclasses.replace(tiny(), n_layers=8, d_model=512, n_heads=8, n_kv_heads=8, mlp_hidden_size=1376)


SHAPES = {"tiny": tiny, "small": small}


def matmul_peak(n: int, dtype: torch.dtype, repeats: int) -> float:
    """Best FLOP/s of `repeats` n x n @ n x n products (after one warm-up)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def train_step_time(
    config: ModelConfig, dtype: torch.dtype, *, batch: int, seq_len: int, steps: int, warmup: int
) -> float:
    """Median seconds of one optimizer step of the pretraining loss."""
    torch.manual_seed(0)
    model = MaskPredictor(config).to(dtype).train()
    optimizer = build_optimizer(model, lr=1e-4, weight_decay=0.1)
    generator = torch.Generator().manual_seed(0)
    mask_id = config.vocab_size - 1
    ids = torch.randint(0, mask_id, (batch, seq_len), generator=generator)
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        noisy, masked, p_mask = forward_process(ids, mask_id, generator=generator)
        loss = masked_diffusion_loss(model(noisy), ids, masked, p_mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--matmul-n", type=int, default=2048, help="matmul size for the peak")
    parser.add_argument("--matmul-repeats", type=int, default=5)
    parser.add_argument("--shapes", default="tiny,small", help="comma list of: " + ", ".join(SHAPES))
    parser.add_argument("--precisions", default="fp32,bf16", help="comma list of: fp32, bf16")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8, help="sequences per step")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    precisions = args.precisions.split(",")
    shapes = args.shapes.split(",")
    for name in precisions:
        if name not in DTYPES:
            parser.error(f"unknown precision {name!r}; choose from {', '.join(DTYPES)}")
    for name in shapes:
        if name not in SHAPES:
            parser.error(f"unknown shape {name!r}; choose from {', '.join(SHAPES)}")

    print(f"# train_throughput: {platform.processor() or platform.machine()}, {args.threads} threads, "
          f"torch {torch.__version__}, ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA')}")
    peaks = {}
    for name in precisions:
        peaks[name] = matmul_peak(args.matmul_n, DTYPES[name], args.matmul_repeats)
        print(f"matmul peak {name} ({args.matmul_n}^3, best of {args.matmul_repeats}): {peaks[name] / 1e9:.1f} GFLOP/s")
    print()
    print(f"training step: masked-diffusion loss + backward + AdamW, batch {args.batch} x seq {args.seq_len}")
    print("| shape | params (non-emb) | precision | step s | tokens/s | GFLOP/s | of matmul peak |")
    print("|---|---|---|---|---|---|---|")
    for shape in shapes:
        config = SHAPES[shape]()
        flops_per_token = MaskPredictor(config).flops_per_token(args.seq_len)
        params = MaskPredictor(config).num_params(non_embedding=True)
        for name in precisions:
            seconds = train_step_time(
                config, DTYPES[name], batch=args.batch, seq_len=args.seq_len, steps=args.steps, warmup=args.warmup
            )
            tokens_per_s = args.batch * args.seq_len / seconds
            achieved = flops_per_token * tokens_per_s
            print(
                f"| {shape} | {params / 1e6:.2f}M | {name} | {seconds:.3f} | {tokens_per_s:,.0f} | "
                f"{achieved / 1e9:.1f} | {100 * achieved / peaks[name]:.1f}% |",
                flush=True,
            )


if __name__ == "__main__":
    main()
