"""Sample a completion from a checkpoint with the reverse process (docs/SPEC-diffusion.md, Sampling).

    python -m trainer.sample checkpoint=out/sft prompt="What does the `ls` command do?"
"""

from __future__ import annotations

import json
from pathlib import Path

from common.cli import run_job
from common.config import ConfigError, to_dict
from formats.checkpoint import SAMPLES
from trainer.checkpoint import tokenizer_mismatch
from trainer.config import SampleConfig


def main(config: SampleConfig) -> dict:
    import torch

    from common.paths import require_paths
    from tokenizer.encode import Tokenizer
    from trainer.checkpoint import load_model
    from trainer.fast_sampler import generate_fast
    from trainer.sampler import generate

    config.tokenizer_dir = config.tokenizer_dir or config.checkpoint
    require_paths([config.checkpoint, config.tokenizer_dir])
    tokenizer = Tokenizer.load(config.tokenizer_dir)
    if problem := tokenizer_mismatch(config.checkpoint, tokenizer.sha256, tokenizer.vocab_size):
        raise ConfigError(f"checkpoint={config.checkpoint} does not go with tokenizer_dir={config.tokenizer_dir}: {problem}")
    model = load_model(config.checkpoint)
    if config.chat:
        prompt_ids = tokenizer.chat_prompt([{"role": "user", "content": config.prompt}])
    else:
        prompt_ids = [tokenizer.bos_id] + tokenizer.encode(config.prompt)
    torch.manual_seed(config.seed)
    prompt = torch.tensor([prompt_ids])
    common = dict(
        steps=config.steps, gen_length=config.gen_length, block_length=config.block_length,
        temperature=config.temperature, remasking=config.remasking,
        mask_id=tokenizer.mask_id, eos_id=tokenizer.eos_id, eot_id=tokenizer.eot_id,
    )
    if config.fast:
        output = generate_fast(
            model, prompt, threshold=config.threshold, cache=config.cache, refresh_every=config.refresh_every, **common
        )
    else:
        output = generate(model, prompt, cfg_scale=config.cfg_scale, **common)
    generated = output[0, prompt.shape[1] :].tolist()
    # Everything after the first EOS is padding the model learned to emit (spec, SFT).
    if tokenizer.eos_id in generated:
        generated = generated[: generated.index(tokenizer.eos_id)]
    completion = tokenizer.decode(generated)
    print(f"[sample] prompt: {config.prompt}", flush=True)
    print(f"[sample] completion: {completion}", flush=True)
    result = {"prompt": config.prompt, "completion": completion, "config": to_dict(config)}
    # A record of what this checkpoint said, kept beside it.
    with open(Path(config.checkpoint) / SAMPLES, "a", encoding="utf-8") as f:
        f.write(json.dumps(result, ensure_ascii=False) + "\n")
    return result


if __name__ == "__main__":
    raise SystemExit(run_job(SampleConfig, main, description="Generate a completion with the LLaDA sampler."))
