"""The lm-eval adapter on the demo's tiny models: is its loglikelihood the estimator, and what does a request cost?

1. Equality: for the first --requests loglikelihood requests of demo_cloze, the adapter's value against a
   direct `trainer.likelihood.log_likelihood` call with a generator seeded the same way (counts equal).
2. loglikelihood: demo_cloze (four choices per document) on the pretraining checkpoint through lm-eval's
   own simple_evaluate, at LLaDA's mc_num=128 (32 copies per call) and at the demo's 32: requests/s, acc.
3. generate_until: demo_whatis (chat) on the SFT checkpoint with the exact sampler (32 tokens in 32
   steps) and the fast sampler (threshold 0.9; threshold 0.9 + dual cache): requests/s, exact match.

Needs the checkpoints of `make demo` (out/pretrain, out/sft; the tokenizer is the one inside out/pretrain). About 3 minutes on 2 cores.

    python bench/eval_speed.py [--work out] [--limit 100] [--requests 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trainer.config import EvaluateConfig  # noqa: E402


def timed_tasks(model, config: EvaluateConfig, requests_per_doc: int) -> tuple[dict, float, float]:
    """(metrics, seconds, requests/s) of one simple_evaluate run."""
    from trainer.evaluate import metrics_of, run_tasks

    started = time.perf_counter()
    results = run_tasks(model, config)
    seconds = time.perf_counter() - started
    documents = sum(values["sample_len"] for values in results["results"].values())
    return metrics_of(results), seconds, documents * requests_per_doc / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("out"))
    parser.add_argument("--limit", type=int, default=100, help="documents per task")
    parser.add_argument("--requests", type=int, default=50, help="requests checked against a direct call")
    args = parser.parse_args()
    pretrain, sft = args.work / "pretrain", args.work / "sft"
    tokenizer = pretrain  # a training export holds the tokenizer it was trained with
    missing = [str(p / name) for p in (pretrain, sft) for name in ("model.pt", "tokenizer.model") if not (p / name).is_file()]
    if missing:
        sys.exit(f"run `make demo` first: missing {', '.join(missing)}")

    import torch
    from lm_eval.api.instance import Instance

    from trainer.likelihood import log_likelihood
    from trainer.lm_eval_model import DiffusionLM
    from data.eval_tasks import utils as local_tasks

    torch.set_num_threads(os.cpu_count() or 1)
    common = {"tokenizer_dir": str(tokenizer), "limit": args.limit}

    # 1. Equality with a direct call.
    model = DiffusionLM(checkpoint=str(pretrain), tokenizer_dir=str(tokenizer), mc_num=128, mc_batch_size=32)
    documents = local_tasks.demo_cloze()["test"]
    pairs = [(doc["context"], " " + choice) for doc in documents for choice in doc["choices"]][: args.requests]
    adapter = [value for value, _ in model.loglikelihood([Instance("loglikelihood", {}, pair, 0) for pair in pairs])]
    direct = []
    for context, continuation in pairs:
        prompt, answer = model.split_pair(context, continuation)
        with torch.no_grad():
            direct.append(log_likelihood(model.model, prompt, answer, mc_num=128, batch_size=32, mask_id=model.tokenizer.mask_id,
                                         generator=torch.Generator().manual_seed(0)))
    equal = sum(a == d for a, d in zip(adapter, direct))
    print(f"\nloglikelihood, adapter vs direct log_likelihood (seed 0, mc_num 128): {equal}/{len(pairs)} equal, "
          f"largest difference {max(abs(a - d) for a, d in zip(adapter, direct)):.3g}")

    # 2. loglikelihood throughput and accuracy.
    rows = []
    for mc_num in (128, 32):
        config = EvaluateConfig(checkpoint=str(pretrain), tasks=["demo_cloze"], mc_num=mc_num, mc_batch_size=32, **common)
        lm = DiffusionLM(checkpoint=str(pretrain), tokenizer_dir=str(tokenizer), mc_num=mc_num, mc_batch_size=32)
        metrics, seconds, rate = timed_tasks(lm, config, requests_per_doc=4)
        rows.append((f"demo_cloze, pretrain, mc_num={mc_num}", rate, seconds, f"acc {metrics['demo_cloze/acc']:.3f}"))

    # 3. generate_until: exact and fast samplers.
    for label, extra in (("exact, 32 steps", {}), ("fast, threshold 0.9", {"threshold": 0.9}),
                         ("fast, threshold 0.9 + dual cache", {"threshold": 0.9, "cache": "dual"})):
        config = EvaluateConfig(checkpoint=str(sft), tasks=["demo_whatis"], chat=True, gen_length=32, block_length=32, **common, **extra)
        lm = DiffusionLM(checkpoint=str(sft), tokenizer_dir=str(tokenizer), chat=True, gen_length=32, block_length=32, **extra)
        metrics, seconds, rate = timed_tasks(lm, config, requests_per_doc=1)
        rows.append((f"demo_whatis, sft, {label}", rate, seconds, f"exact match {metrics['demo_whatis/exact_match_name']:.3f}"))

    print(f"\n| run ({args.limit} documents per task) | requests/s | seconds | score |\n|---|---:|---:|---|")
    for label, rate, seconds, score in rows:
        print(f"| {label} | {rate:.1f} | {seconds:.1f} | {score} |")


if __name__ == "__main__":
    main()
