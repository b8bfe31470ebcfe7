"""Model FLOPs utilisation of one GPU training llada_1b with the masked-diffusion pretraining loss.

One process, one device, no DeepSpeed: what a single rank can reach before any communication. Each
step: forward process, forward, masked-diffusion loss, backward, gradient clipping, AdamW step.
- attention: SDPA restricted to the flash kernel on CUDA (bidirectional, no mask: flash applies; the
  run fails loudly rather than fall back to a slower kernel);
- `--compile`: torch.compile of the model;
- `--activation-checkpointing`: recompute each block in the backward pass (ModelConfig's own flag);
- the trainer's AdamW (trainer/optim.py: no decay on 1-D parameters) with `fused=True`;
- precision `bf16` (bf16 weights, gradients and optimizer state, as DeepSpeed's bf16 compute) or `amp`
  (fp32 weights, bf16 autocast).
MFU = tokens/s x model.flops_per_token(seq) / peak, the LLaDA convention (6N non-embedding + attention,
output head not counted; docs/SPEC-diffusion.md cites about 21% for LLaDA-8B). The line after it counts the
output head too, and recomputation when activation checkpointing is on (hardware FLOPs).

    python bench/mfu_gpu.py                                  # llada_1b, seq 4096, bf16, on cuda
    python bench/mfu_gpu.py --compile --batch 4
    python bench/mfu_gpu.py --device cpu --layers 1 --seq 128 --steps 2   # CPU smoke test of the logic
    python bench/mfu_gpu.py --dry-run                         # the plan and FLOP counts, no step
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import torch

from trainer.diffusion import forward_process, masked_diffusion_loss
from trainer.model import MaskPredictor
from trainer.model_config import model_config
from trainer.optim import build_optimizer

H100_BF16_DENSE_TFLOPS = 989.0  # H100 SXM, dense (no sparsity) bf16 tensor-core peak


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="llada_1b", help="preset: tiny, llada_1b, llada_8b")
    parser.add_argument("--layers", type=int, default=None, help="override the preset's number of layers")
    parser.add_argument("--seq", type=int, default=4096, help="sequence length")
    parser.add_argument("--batch", type=int, default=2, help="sequences per step")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    parser.add_argument("--precision", choices=("bf16", "amp"), default="bf16")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--activation-checkpointing", action="store_true")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu for a smoke test")
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE_TFLOPS, help="the device's bf16 peak")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and FLOP counts; run nothing")
    return parser.parse_args(argv)


def flop_counts(model: MaskPredictor, seq: int, activation_checkpointing: bool) -> tuple[int, int]:
    """(model FLOPs per token as LLaDA counts them, hardware FLOPs per token: + output head + recompute)."""
    c = model.config
    model_flops = model.flops_per_token(seq)
    head = 6 * c.vocab_size * c.d_model
    # recomputing each block's forward adds a third of the blocks' forward + backward FLOPs
    recompute = (model_flops // 3) if activation_checkpointing else 0
    return model_flops, model_flops + head + recompute


def attention_kernel(device: torch.device):
    """Flash attention only, on CUDA; nothing to choose on CPU."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION])


def build(args: argparse.Namespace, device: torch.device):
    """(model, the module to call (compiled or not), optimizer)."""
    overrides = {"activation_checkpointing": args.activation_checkpointing}
    if args.layers is not None:
        overrides["n_layers"] = args.layers
    config = model_config(args.model, **overrides)
    torch.manual_seed(0)
    with torch.device(device):
        model = MaskPredictor(config)
    if args.precision == "bf16":
        model = model.to(torch.bfloat16)
    model.train()
    optimizer = build_optimizer(model, lr=4e-4, weight_decay=0.1, fused=True)
    forward = torch.compile(model) if args.compile else model
    return model, forward, optimizer


def train_step(model, forward, optimizer, ids: torch.Tensor, mask_id: int, generator, precision: str) -> torch.Tensor:
    autocast = (
        torch.autocast(ids.device.type, dtype=torch.bfloat16) if precision == "amp" else contextlib.nullcontext()
    )
    noisy, masked, p_mask = forward_process(ids, mask_id, generator=generator)
    with autocast, attention_kernel(ids.device):
        logits = forward(noisy)  # (B, T, V)
    loss = masked_diffusion_loss(logits, ids, masked, p_mask)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()  # the backward kernel follows the forward's choice
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)

    config = model_config(args.model, **({"n_layers": args.layers} if args.layers is not None else {}))
    with torch.device("meta"):  # counts without allocating
        counted = MaskPredictor(config)
    model_flops, hardware_flops = flop_counts(counted, args.seq, args.activation_checkpointing)
    print(
        f"# mfu_gpu: {args.model} ({config.n_layers} layers, {counted.num_params() / 1e9:.2f}B parameters, "
        f"{counted.num_params(non_embedding=True) / 1e9:.2f}B non-embedding), seq {args.seq}, batch {args.batch}, "
        f"{args.precision}, compile={args.compile}, activation_checkpointing={args.activation_checkpointing}, "
        f"device {device}"
    )
    print(
        f"model FLOPs/token {model_flops / 1e9:.2f} G "
        f"(hardware, with head and recompute: {hardware_flops / 1e9:.2f} G)"
    )
    if args.dry_run:
        return 0
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            "mfu_gpu: CUDA is not available on this machine (torch "
            f"{torch.__version__}, cuda build: {torch.version.cuda}). Run it on a GPU host, or smoke-test the "
            "logic here with: python bench/mfu_gpu.py --device cpu --layers 1 --seq 128 --steps 2",
            file=sys.stderr,
        )
        return 2

    if device.type == "cuda":
        print(f"gpu: {torch.cuda.get_device_name(device)}; peak used for MFU: {args.peak_tflops:.0f} TFLOP/s")
        torch.backends.cuda.matmul.allow_tf32 = True
    model, forward, optimizer = build(args, device)
    mask_id = config.vocab_size - 1
    generator = torch.Generator(device=device).manual_seed(0)
    ids = torch.randint(0, mask_id, (args.batch, args.seq), device=device, generator=generator)

    times = []
    for step in range(args.warmup + args.steps):
        synchronize(device)
        start = time.perf_counter()
        loss = train_step(model, forward, optimizer, ids, mask_id, generator, args.precision)
        synchronize(device)
        elapsed = time.perf_counter() - start
        if step >= args.warmup:
            times.append(elapsed)
        warm_up = " (warm-up)" if step < args.warmup else ""
        print(f"step {step}{warm_up}: {elapsed:.3f} s, loss {loss.item():.3f}", flush=True)
    step_seconds = sorted(times)[len(times) // 2]
    tokens_per_s = args.batch * args.seq / step_seconds
    peak = args.peak_tflops * 1e12
    print(f"median step {step_seconds:.3f} s, {tokens_per_s:,.0f} tokens/s")
    achieved = tokens_per_s * model_flops
    print(f"MFU {100 * achieved / peak:.1f}% ({achieved / 1e12:.1f} TFLOP/s, LLaDA convention)")
    print(f"HFU {100 * tokens_per_s * hardware_flops / peak:.1f}% (with output head and recompute)")
    if device.type == "cuda":
        print(f"peak memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
