"""Tokens/s of the exact sampler against the fast modes, on the same models.

Modes: exact (`trainer.sampler.generate`), and `trainer.fast_sampler.generate_fast` with threshold 0.9
(--threshold), prefix cache, dual cache, threshold 0.9 + dual cache, and the last two with the cache rebuilt every 2
steps of a block (refresh_every=2) instead of once per block. Two models:

1. tiny: the diffusion model trained by `experiments.reversal` (loaded from --reversal-dir, trained there
   first when missing), asked the forward question of every fact at once (a batch of N prompts
   `<bos> A1 A2 's parent is`, the answer generated in one block, one step per token, as the experiment
   does). With the experiment's defaults the answer is 4 tokens (`B1 B2 . <eos>`): 4 steps, little to
   save. --canvas-length 32 trains (once, into out/reversal-canvas32) and asks a model whose facts were
   padded with <eos> to 32 tokens, so the answer is 26 tokens, mostly <eos>: LLaDA's own usage, a fixed
   generous gen_length, and the setting Fast-dLLM measures. Beside the speed: forward-direction accuracy,
   and agreement with the exact mode's output.
2. 1B-shaped: llada_1b (22 layers, d_model 2048, 32 heads, 4 kv heads, ffn 5634, vocab 126464; --layers
   for fewer, the table says how many) with random weights, fp32, one random prompt; tokens/s only.
   Random weights are never confident, so threshold decoding commits one token per step there: its
   speed-up shows on the trained model.

Tokens/s = generated tokens (batch x gen_length) / wall seconds, best of a few rounds over all modes;
forward passes, positions run and cache MB (the most keys and values a call holds for its cache) come from
the fast sampler's stats (exact: steps, steps x canvas, no cache).
Runs about 4 minutes on 2 cores.

    ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 python bench/sampler_speed.py [--canvas-length 32] [--layers 4] [--skip-1b]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")  # before torch: oneDNN reads it at load

import torch  # noqa: E402

from trainer.sampler import generate  # noqa: E402

def modes(threshold: float) -> list[tuple[str, dict | None]]:
    """(name, generate_fast keyword arguments) of every mode; None: the exact sampler."""
    t = f"threshold {threshold:g}"
    return [
        ("exact", None),
        (t, {"threshold": threshold, "cache": "none"}),
        ("prefix cache", {"cache": "prefix"}),
        ("dual cache", {"cache": "dual"}),
        (f"{t} + dual", {"threshold": threshold, "cache": "dual"}),
        ("dual, refresh every 2", {"cache": "dual", "refresh_every": 2}),
        (f"{t} + dual, refresh every 2", {"threshold": threshold, "cache": "dual", "refresh_every": 2}),
    ]


def run_mode(model, prompt, fast_kwargs, *, steps, gen_length, block_length, mask_id, batch_size=None):
    """One mode over all prompts, `batch_size` rows per call (all at once when None): (output ids, seconds,
    forward passes per call (mean over the calls), token positions run through the model in all, the most
    bytes of cached keys and values held by a call)."""
    from trainer.fast_sampler import generate_fast

    chunks = prompt.split(batch_size or prompt.shape[0])
    outputs, passes, positions, cache_bytes = [], 0, 0, 0
    start = time.perf_counter()
    for chunk in chunks:
        stats: dict = {}
        kwargs = {"steps": steps, "gen_length": gen_length, "block_length": block_length, "mask_id": mask_id}
        if fast_kwargs is None:
            outputs.append(generate(model, chunk, **kwargs))
            canvas_positions = chunk.shape[0] * (chunk.shape[1] + gen_length)
            stats = {"forward_passes": steps, "positions_computed": steps * canvas_positions, "cache_bytes": 0}
        else:
            outputs.append(generate_fast(model, chunk, **kwargs, **fast_kwargs, stats=stats))
        passes += stats["forward_passes"]
        positions += stats["positions_computed"]
        cache_bytes = max(cache_bytes, stats["cache_bytes"])
    seconds = time.perf_counter() - start
    return torch.cat(outputs), seconds, passes / len(chunks), positions, cache_bytes


def run_modes(model, prompt, *, modes: list, repeats: int, **kwargs) -> list[dict]:
    """Every mode, `repeats` rounds: per mode its output, best seconds, passes and positions. Rounds go
    over all modes in turn, so that a burst of load from elsewhere slows every mode, not one."""
    results = [{"mode": name, "seconds": float("inf")} for name, _ in modes]
    for _ in range(repeats):
        for result, (_, fast_kwargs) in zip(results, modes):
            output, seconds, passes, positions, cache_bytes = run_mode(model, prompt, fast_kwargs, **kwargs)
            result.update(output=output, forward_passes=passes, positions=positions, cache_bytes=cache_bytes)
            result["seconds"] = min(result["seconds"], seconds)
    return results


def print_header(title: str, with_accuracy: bool) -> None:
    print(f"\n{title}")
    head = "| mode | tokens/s | speed-up vs exact | forward passes | positions run | cache MB |"
    rule = "|---|---|---|---|---|---|"
    if with_accuracy:
        head += " forward accuracy % | same as exact % |"
        rule += "---|---|"
    print(head)
    print(rule, flush=True)


def print_row(row: dict, exact_tokens_per_s: float) -> None:
    line = (
        f"| {row['mode']} | {row['tokens_per_s']:,.1f} | {row['tokens_per_s'] / exact_tokens_per_s:.2f}x | "
        f"{row['forward_passes']:g} | {row['positions']:,} | {row['cache_bytes'] / 2**20:,.1f} |"
    )
    if "accuracy" in row:
        line += f" {100 * row['accuracy']:.1f} | {100 * row['agreement']:.1f} |"
    print(line, flush=True)


def bench_tiny(
    reversal_dir: Path, *, modes: list, canvas_length: int, block_length: int | None, batch_size: int | None, repeats: int
) -> None:
    from common.config import from_dict
    from experiments import reversal
    from trainer.checkpoint import load_model

    results = reversal_dir / "results.json"
    if not results.is_file():
        print(f"[sampler_speed] no reversal run in {reversal_dir}: training one (minutes)", flush=True)
        reversal.main(reversal.ReversalConfig(output_dir=str(reversal_dir), canvas_length=canvas_length))
    config = from_dict(reversal.ReversalConfig, json.loads(results.read_text())["config"])
    model = load_model(reversal_dir / "diffusion")
    facts = reversal.fact_tensor(reversal.make_pairs(config.num_pairs, config.seed), config.canvas_length)
    prompt = reversal.forward_prompts(facts)  # (N, 6)
    gen_length = config.canvas_length - reversal.FORWARD_PROMPT_LENGTH  # B1 B2 . <eos> and any padding
    block_length = block_length or gen_length
    print_header(
        f"tiny (reversal-trained, {reversal_dir}): {prompt.shape[0]} prompts x {gen_length} tokens, "
        f"{batch_size or prompt.shape[0]} per call, block {block_length}, {gen_length} steps, "
        f"{torch.get_num_threads()} thread(s), best of {repeats}",
        with_accuracy=True,
    )
    rows = run_modes(
        model, prompt, modes=modes, repeats=repeats, steps=gen_length, gen_length=gen_length, block_length=block_length,
        mask_id=reversal.MASK_ID, batch_size=batch_size,
    )
    exact = rows[0]
    for row in rows:
        row["tokens_per_s"] = prompt.shape[0] * gen_length / row["seconds"]
        row["accuracy"] = reversal.exact_match(row["output"][:, reversal.OBJECT], facts[:, reversal.OBJECT])
        row["agreement"] = reversal.exact_match(row["output"], exact["output"])
        print_row(row, prompt.shape[0] * gen_length / exact["seconds"])


def bench_1b(
    *, modes: list, layers: int, prompt_length: int, gen_length: int, block_length: int, steps: int, repeats: int
) -> None:
    from trainer.model import MaskPredictor
    from trainer.model_config import llada_1b

    config = dataclasses.replace(llada_1b(), n_layers=layers)
    torch.manual_seed(0)
    model = MaskPredictor(config).eval()
    mask_id = config.vocab_size - 1
    prompt = torch.randint(0, mask_id, (1, prompt_length), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # warm-up: the first call pays for allocations and oneDNN's kernel choices
        model(torch.cat([prompt, torch.full((1, gen_length), mask_id)], dim=1))
    print_header(
        f"1B-shaped, random weights, fp32, {layers} of llada_1b's 22 layers "
        f"({model.num_params() / 1e6:.0f}M parameters): prompt {prompt_length}, {gen_length} tokens, "
        f"block {block_length}, {steps} steps, {torch.get_num_threads()} thread(s), best of {repeats}",
        with_accuracy=False,
    )
    rows = run_modes(
        model, prompt, modes=modes, repeats=repeats, steps=steps, gen_length=gen_length, block_length=block_length,
        mask_id=mask_id,
    )
    for row in rows:
        row["tokens_per_s"] = gen_length / row["seconds"]
        print_row(row, gen_length / rows[0]["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--canvas-length", type=int, default=10, help="tiny: the reversal run's canvas_length")
    parser.add_argument(
        "--reversal-dir", default=None, help="output_dir of an experiments.reversal run (default: out/reversal, or "
        "out/reversal-canvas<N> with --canvas-length N other than 10)"
    )
    parser.add_argument("--tiny-block-length", type=int, default=None, help="default: one block, as the experiment")
    parser.add_argument("--tiny-batch", type=int, default=None, help="prompts per call (default: all at once)")
    parser.add_argument("--tiny-threads", type=int, default=1, help="threads for the tiny model (one is fastest)")
    parser.add_argument("--repeats", type=int, default=3, help="tiny: best of this many rounds over the modes")
    parser.add_argument("--repeats-1b", type=int, default=2, help="1B-shaped: best of this many rounds")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for the 1B-shaped model")
    parser.add_argument("--layers", type=int, default=22, help="1B-shaped model: layers (llada_1b has 22)")
    parser.add_argument("--prompt-length", type=int, default=32, help="1B-shaped model")
    parser.add_argument("--gen-length", type=int, default=32, help="1B-shaped model")
    parser.add_argument("--block-length", type=int, default=16, help="1B-shaped model")
    parser.add_argument("--steps", type=int, default=32, help="1B-shaped model")
    parser.add_argument("--threshold", type=float, default=0.9, help="the threshold modes' confidence threshold")
    parser.add_argument("--skip-tiny", action="store_true")
    parser.add_argument("--skip-1b", action="store_true")
    args = parser.parse_args()

    print(f"# sampler_speed: torch {torch.__version__}, {os.cpu_count()} CPUs", flush=True)
    if not args.skip_tiny:
        torch.set_num_threads(args.tiny_threads)
        default_dir = "out/reversal" if args.canvas_length == 10 else f"out/reversal-canvas{args.canvas_length}"
        bench_tiny(
            Path(args.reversal_dir or default_dir),
            modes=modes(args.threshold),
            canvas_length=args.canvas_length,
            block_length=args.tiny_block_length,
            batch_size=args.tiny_batch,
            repeats=args.repeats,
        )
    if not args.skip_1b:
        torch.set_num_threads(args.threads)
        bench_1b(
            modes=modes(args.threshold), layers=args.layers, prompt_length=args.prompt_length, gen_length=args.gen_length,
            block_length=args.block_length, steps=args.steps, repeats=args.repeats_1b,
        )


if __name__ == "__main__":
    main()
