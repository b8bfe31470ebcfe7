"""Our checkpoints as an lm-evaluation-harness model, `llada_platform`: the benchmarks LLaDA reports, run the way
its authors ran them (their eval_llada.py is an lm-eval model too).

    python -m trainer.lm_eval_model --model llada_platform --model_args checkpoint=out/sft,mc_num=128 \\
        --tasks demo_cloze --include_path data/eval_tasks
    python -m trainer.evaluate checkpoint=out/sft tasks=demo_cloze      # the same as a job, logged to MLflow

lm-eval 0.4 finds models only in its registry (it reads no entry points), so this module registers the
model when imported, and running it as a module hands its arguments to lm-eval's own CLI.

- loglikelihood: `trainer.likelihood.log_likelihood`, the paper's Monte Carlo estimate (eq. 6), with
  LLaDA's settings as defaults (mc_num=128 masked copies, 32 per model call, no CFG). Every request
  draws from its own generator seeded with `seed`, so a score does not depend on the order or the
  batch it came in, and equals a direct `log_likelihood` call with that seed. `is_greedy` (with
  check_greedy=true) is LLaDA's check: the answer, fully masked, decoded by the sampler one token per
  step, comes out unchanged; off, it is False.
- generate_until: the sampler (`trainer.sampler.generate`, or `trainer.fast_sampler.generate_fast` with
  `threshold`/`cache`), with steps, gen_length and block_length as model args; the completion ends at
  the first EOS/EOT and at the first of the request's `until` strings.
- loglikelihood_rolling: the text is cut into windows of max_length - 1 tokens, each scored after BOS
  alone: a lower bound of the text's log-likelihood (the windows do not see each other).

`untrained=true` scores a model of the checkpoint's shape with fresh weights (seeded): the baseline.
`chat=true` asks every request as one user turn in the tokenizer's chat layout (an SFT checkpoint);
otherwise the request's text follows BOS, as in pretraining. lm-eval's own `batch_size` (copies of a
request scored at once for an autoregressive model) has no meaning here: mc_batch_size sets how many
masked copies go into one model call.
"""

from __future__ import annotations

import sys
from typing import Any

import lm_eval.models  # noqa: F401  lm-eval imports its own models only while its registry is empty
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

MODEL_NAME = "llada_platform"


@register_model(MODEL_NAME)
class DiffusionLM(LM):
    """A MaskPredictor checkpoint (ours or a Hugging Face LLaDA folder) and its tokenizer, for lm-eval."""

    def __init__(self, checkpoint: str, tokenizer_dir: str = "", mc_num: int = 128, mc_batch_size: int = 32,
                 cfg_scale: float = 0.0, check_greedy: bool = False, gen_length: int = 256, block_length: int = 32,
                 steps: int | None = None, remasking: str = "low_confidence", threshold: float | None = None,
                 cache: str = "none", chat: bool = False, max_length: int = 4096, seed: int = 0,
                 device: str | None = None, dtype: str = "float32", untrained: bool = False, **lm_eval_arguments: Any):
        import torch

        from common.config import ConfigError
        from tokenizer.encode import Tokenizer
        from trainer.checkpoint import load_model, model_fields, tokenizer_mismatch
        from trainer.model import MaskPredictor, ModelConfig

        super().__init__()
        tokenizer_dir = tokenizer_dir or checkpoint
        self.tokenizer = Tokenizer.load(tokenizer_dir)
        if problem := tokenizer_mismatch(checkpoint, self.tokenizer.sha256, self.tokenizer.vocab_size):
            raise ConfigError(f"checkpoint={checkpoint} does not go with tokenizer_dir={tokenizer_dir}: {problem}")
        if device is None or (str(device).startswith("cuda") and not torch.cuda.is_available()):
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._device = torch.device(device)
        if untrained:  # the checkpoint's shape with fresh weights: what training added is the difference
            torch.manual_seed(int(seed))
            model = MaskPredictor(ModelConfig(**{**model_fields(checkpoint), "activation_checkpointing": False}))
        else:
            model = load_model(checkpoint)
        self.model = model.to(device=self.device, dtype=getattr(torch, dtype)).eval()
        self.settings = {"mc_num": int(mc_num), "mc_batch_size": int(mc_batch_size), "cfg_scale": float(cfg_scale),
                         "check_greedy": bool(check_greedy), "gen_length": int(gen_length),
                         "block_length": int(block_length), "steps": int(steps or gen_length), "remasking": remasking,
                         "threshold": None if threshold is None else float(threshold), "cache": cache,
                         "chat": bool(chat), "max_length": int(max_length), "seed": int(seed), "untrained": bool(untrained)}
        if self.settings["mc_num"] % self.settings["mc_batch_size"]:
            raise ConfigError(f"mc_num ({mc_num}) must be a multiple of mc_batch_size ({mc_batch_size})")
        self.checkpoint = checkpoint

    # -- requests -----------------------------------------------------------------------------------

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        return [self.score(*request.args) for request in progress(requests, "loglikelihood")]

    def loglikelihood_rolling(self, requests) -> list[float]:
        window = self.settings["max_length"] - 1
        results = []
        for request in requests:
            ids = self.tokenizer.encode(request.args[0])
            results.append(sum(self.log_likelihood([self.tokenizer.bos_id], ids[i : i + window])
                               for i in range(0, len(ids), window)))
        return results

    def generate_until(self, requests) -> list[str]:
        return [self.complete(context, dict(gen_kwargs or {})) for context, gen_kwargs in
                (request.args for request in progress(requests, "generate_until"))]

    # -- one request ----------------------------------------------------------------------------------

    def prompt_ids(self, context: str) -> list[int]:
        """BOS and the context's ids, or (chat) the context as a user turn of the chat layout."""
        if self.settings["chat"]:
            return self.tokenizer.chat_prompt([{"role": "user", "content": context}])
        return [self.tokenizer.bos_id, *self.tokenizer.encode(context)]

    def split_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """(prompt ids, answer ids) of a loglikelihood request. As lm-eval's Hugging Face model does, trailing
        spaces of the context move to the continuation and the pair is encoded whole, then split where the
        context's ids end, so the answer is spelled as it would be inside the text."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        if self.settings["chat"]:
            return self.prompt_ids(context), self.tokenizer.encode(continuation.lstrip())
        whole = self.tokenizer.encode(context + continuation)
        context_ids = self.tokenizer.encode(context)
        if whole[: len(context_ids)] != context_ids or len(whole) == len(context_ids):
            return self.prompt_ids(context), self.tokenizer.encode(continuation)  # a token spans the boundary
        return [self.tokenizer.bos_id, *context_ids], whole[len(context_ids) :]

    def log_likelihood(self, prompt: list[int], answer: list[int]) -> float:
        """trainer.likelihood.log_likelihood with this model's settings and a generator seeded with `seed`."""
        import torch

        from trainer.likelihood import log_likelihood

        prompt = self.fit(prompt, len(answer))
        generator = torch.Generator(device=self.device).manual_seed(self.settings["seed"])
        with torch.no_grad():
            return log_likelihood(self.model, prompt, answer, mc_num=self.settings["mc_num"],
                                  batch_size=self.settings["mc_batch_size"], cfg_scale=self.settings["cfg_scale"],
                                  mask_id=self.tokenizer.mask_id, generator=generator)

    def score(self, context: str, continuation: str) -> tuple[float, bool]:
        prompt, answer = self.split_pair(context, continuation)
        value = self.log_likelihood(prompt, answer)
        return value, self.settings["check_greedy"] and self.greedy_answer(prompt, len(answer)) == answer

    def greedy_answer(self, prompt: list[int], length: int) -> list[int]:
        """The answer the sampler gives at temperature 0, one token per step (LLaDA's is_greedy check)."""
        import torch

        from trainer.sampler import generate

        prompt = self.fit(prompt, length)
        with torch.no_grad():
            out = generate(self.model, torch.tensor([prompt], device=self.device), steps=length, gen_length=length,
                           block_length=length, mask_id=self.tokenizer.mask_id)
        return out[0, len(prompt) :].tolist()

    def complete(self, context: str, gen_kwargs: dict) -> str:
        import torch

        from trainer.fast_sampler import generate_fast
        from trainer.sampler import generate

        s = self.settings
        prompt = torch.tensor([self.fit(self.prompt_ids(context), s["gen_length"])], device=self.device)
        common = dict(steps=s["steps"], gen_length=s["gen_length"], block_length=s["block_length"],
                      temperature=float(gen_kwargs.get("temperature", 0.0) or 0.0), remasking=s["remasking"],
                      mask_id=self.tokenizer.mask_id, eos_id=self.tokenizer.eos_id, eot_id=self.tokenizer.eot_id)
        with torch.no_grad():
            if s["threshold"] is not None or s["cache"] != "none":
                out = generate_fast(self.model, prompt, threshold=s["threshold"], cache=s["cache"], **common)
            else:
                out = generate(self.model, prompt, cfg_scale=s["cfg_scale"], **common)
        generated = out[0, prompt.shape[1] :].tolist()
        for stop_id in (self.tokenizer.eos_id, self.tokenizer.eot_id):
            if stop_id in generated:
                generated = generated[: generated.index(stop_id)]
        if "max_gen_toks" in gen_kwargs:
            generated = generated[: int(gen_kwargs["max_gen_toks"])]
        text = self.tokenizer.decode(generated)
        until = gen_kwargs.get("until") or []
        for stop in [until] if isinstance(until, str) else until:
            if stop and stop in text:
                text = text[: text.index(stop)]
        return text

    def fit(self, prompt: list[int], answer_length: int) -> list[int]:
        """The prompt cut from the left (after its first token, BOS) so that it and the answer fit max_length."""
        room = self.settings["max_length"] - answer_length
        if len(prompt) <= room:
            return prompt
        if room < 2:
            raise ValueError(f"an answer of {answer_length} tokens leaves no room for a prompt in max_length="
                             f"{self.settings['max_length']}")
        return prompt[:1] + prompt[len(prompt) - room + 1 :]

    def get_model_info(self) -> dict:
        return {"model": MODEL_NAME, "checkpoint": self.checkpoint, **self.settings}


def progress(requests: list, kind: str):
    """The requests, one at a time, with a line every tenth of them: done, rate, time left."""
    import time

    started, every = time.perf_counter(), max(1, len(requests) // 10)
    for done, request in enumerate(requests, 1):
        yield request
        if done % every == 0 or done == len(requests):
            seconds = time.perf_counter() - started
            print(f"[lm-eval] {kind} {done}/{len(requests)} requests, {done / seconds:.1f}/s, "
                  f"{(len(requests) - done) * seconds / done:.0f} s left", flush=True)


def main(argv: list[str] | None = None) -> None:
    """lm-eval's command line, with `llada_platform` registered."""
    from lm_eval.__main__ import cli_evaluate

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    cli_evaluate()


if __name__ == "__main__":
    main()
