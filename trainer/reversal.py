"""The reversal curse, in small: a masked diffusion model and an autoregressive twin learn one-way facts.

The LLaDA paper (section 3.3, table 4; docs/SPEC-diffusion.md "Published results that a small model can echo")
finds that a masked diffusion model answers a reversed question nearly as well as the forward one, where
autoregressive models fail it (GPT-4o 82.7 forward / 34.3 reversal; LLaDA-8B-Instruct 51.8 / 45.6). This
module reproduces that contrast in minutes on a CPU:

- facts are `A's parent is B.` for N pairs of invented two-syllable names, written in ONE direction only;
- a vocabulary built here: four special ids, one token per syllable, one per word of the template, so
  every name is exactly two tokens and every fact exactly ten: `<bos> A1 A2 's parent is B1 B2 . <eos>`;
- (a) the MaskPredictor trained with the pretraining loss (`forward_process`, `masked_diffusion_loss`) and
  (b) the same model with `causal=True` trained by next-token cross-entropy: same initial weights, same
  batches, same steps, same tokens;
- both are asked both ways; exact match on the two name tokens.

Query formats (temperature 0 throughout):
- diffusion, forward: `trainer.sampler.generate` completes `<bos> A1 A2 's parent is` with 4 tokens
  (one block, 4 steps: one token committed per step), so the canvas has the training length. With
  canvas_length > 10 every training row is the fact padded with <eos>, as LLaDA's SFT pads answers
  (docs/SPEC-diffusion.md "SFT"), and the answer is canvas_length - 6 tokens: B1 B2 . <eos> <eos> ...;
- diffusion, reverse: an infill of the canvas `<bos> [M] [M] 's parent is B1 B2 . <eos>` with the same
  low-confidence procedure (`infill`, 2 steps);
- autoregressive, forward: greedy decoding of 2 tokens after `<bos> A1 A2 's parent is`;
- autoregressive, reverse: greedy decoding of 2 tokens after `<bos>`. The answer comes first in the only
  sentence the model ever saw, so all it may condition on is what precedes the answer; that is the point
  of the experiment, not a handicap added to it. Its accuracy is at most 1/N (it names one subject).
- autoregressive, reverse by ranking (reported beside): score `<bos> A' 's parent is B . <eos>` for every
  trained subject A' and take the most likely. This is not generation; it shows the autoregressive model
  holds the information and cannot *generate* it in reverse order.

    python -m trainer.reversal [num_pairs=200 steps=2000 eval_steps=250,1000,2000 output_dir=out/reversal]
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from common.cli import run_job
from common.config import ConfigError, to_dict

LOG = "[reversal]"

CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"
SYLLABLES = tuple(c + v for c in CONSONANTS for v in VOWELS)  # 70 syllables, 4,900 two-syllable names
SPECIALS = ("<pad>", "<mask>", "<bos>", "<eos>")
TEMPLATE_WORDS = ("'s", "parent", "is", ".")
PAD_ID, MASK_ID, BOS_ID, EOS_ID = range(4)
NAME_LENGTH = 2  # tokens per name
FACT_LENGTH = 10  # <bos> A1 A2 's parent is B1 B2 . <eos>
SUBJECT = slice(1, 3)  # where A sits in a fact
OBJECT = slice(6, 8)  # where B sits in a fact
FORWARD_PROMPT_LENGTH = 6  # <bos> A1 A2 's parent is


@dataclass(kw_only=True)
class ReversalConfig:
    """One-directional synthetic facts; a diffusion model and an autoregressive baseline; accuracy both ways."""

    output_dir: str = "out/reversal"
    """Where results.json, config.json, vocab.json and the two checkpoints (diffusion/, autoregressive/) go."""
    num_pairs: int = 200
    """Facts `A's parent is B.`; every name appears in exactly one fact (at most 2,450 pairs)."""
    model: str = "tiny"
    """Model preset for both models (its vocab_size is replaced by this experiment's vocabulary)."""
    steps: int = 2000
    """Optimizer steps for each model (the autoregressive model memorises the facts in ~250, the diffusion
    model needs ~2000: 86% both ways at 2000 with the defaults)."""
    eval_steps: list[int] = field(default_factory=lambda: [250, 1000, 2000])
    """Steps after which both models are evaluated (few and many); each at most `steps`."""
    batch_size: int = 64
    """Facts per optimizer step (drawn without replacement within an epoch, same order for both models)."""
    lr: float = 1e-3
    """AdamW learning rate, constant after the warm-up."""
    warmup_steps: int = 50
    """Linear warm-up from 0 to `lr`."""
    weight_decay: float = 0.0
    """AdamW weight decay (memorising facts is the task, so none by default)."""
    eps: float = 1e-3
    """Forward-process epsilon: p_mask = (1 - eps) t + eps."""
    rank_reverse: bool = True
    """Also report, at the last eval step, the autoregressive model's reverse accuracy by ranking all N
    subjects (N^2 sentences scored)."""
    threads: int = 1
    """torch intra-op threads. Models this small run fastest on one; on a 2-core machine with any other
    load, two threads stall at every parallel region (measured 70-80x slower per step here)."""
    seed: int = 0
    """Seeds the names, the pairing, the initial weights (shared by both models), batch order and masking."""
    canvas_length: int = FACT_LENGTH
    """Tokens per training row and per question: the 10-token fact, then <eos> up to this length (LLaDA's
    SFT pads answers with <eos> the same way). The forward question generates canvas_length - 6 tokens in
    as many steps, mostly <eos>, which is how LLaDA is used (a fixed, generous gen_length) and where fast
    sampling has room to save steps (bench/sampler_speed.py --canvas-length 32)."""

    def __post_init__(self) -> None:
        max_pairs = len(SYLLABLES) ** NAME_LENGTH // 2
        if not 1 <= self.num_pairs <= max_pairs:
            raise ConfigError(
                f"num_pairs must be in [1, {max_pairs}] (two distinct names per pair), got {self.num_pairs}"
            )
        if self.model not in ("tiny", "llada_1b", "llada_8b"):
            raise ConfigError(f"model must be tiny, llada_1b or llada_8b, got {self.model!r}")
        for name in ("steps", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.eval_steps or any(not 1 <= s <= self.steps for s in self.eval_steps):
            raise ConfigError(
                f"eval_steps must be a non-empty list of steps in [1, steps={self.steps}], got {self.eval_steps}"
            )
        if self.canvas_length < FACT_LENGTH:
            raise ConfigError(f"canvas_length must be at least {FACT_LENGTH} (one fact), got {self.canvas_length}")
        if not 0 < self.eps < 1:
            raise ConfigError(f"eps must be in (0, 1), got {self.eps}")
        if self.lr <= 0 or self.warmup_steps < 0 or self.weight_decay < 0:
            raise ConfigError("lr must be positive, warmup_steps and weight_decay at least 0")


# -- data ----------------------------------------------------------------------------------------------


def vocabulary() -> list[str]:
    """Token strings by id: specials, syllables, template words."""
    return [*SPECIALS, *SYLLABLES, *TEMPLATE_WORDS]


VOCAB = vocabulary()
TOKEN_ID = {token: i for i, token in enumerate(VOCAB)}


def make_pairs(num_pairs: int, seed: int) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """N (child, parent) pairs of distinct two-syllable names; the same list for the same seed."""
    rng = random.Random(seed)
    codes = rng.sample(range(len(SYLLABLES) ** NAME_LENGTH), 2 * num_pairs)  # distinct names
    names = [(SYLLABLES[c // len(SYLLABLES)], SYLLABLES[c % len(SYLLABLES)]) for c in codes]
    return list(zip(names[:num_pairs], names[num_pairs:]))


def name_text(name: tuple[str, str]) -> str:
    return "".join(name).capitalize()


def fact_ids(child: tuple[str, str], parent: tuple[str, str]) -> list[int]:
    """`<bos> A1 A2 's parent is B1 B2 . <eos>`: the only direction ever trained."""
    words = [*child, "'s", "parent", "is", *parent, "."]
    return [BOS_ID, *(TOKEN_ID[w] for w in words), EOS_ID]


def decode(ids) -> str:
    """Readable text of ids: names joined and capitalised, specials in angle brackets."""
    out: list[str] = []
    syllables: list[str] = []
    for i in list(ids):
        token = VOCAB[int(i)]
        if token in SYLLABLES:
            syllables.append(token)
            continue
        if syllables:
            out.append("".join(syllables).capitalize())
            syllables = []
        out.append(token)
    if syllables:
        out.append("".join(syllables).capitalize())
    return " ".join(out).replace(" 's", "'s").replace(" .", ".")


def fact_tensor(pairs, canvas_length: int = FACT_LENGTH):
    """(N, canvas_length) long tensor of the training facts, each padded with <eos> after its own."""
    import torch

    padding = [EOS_ID] * (canvas_length - FACT_LENGTH)
    return torch.tensor([fact_ids(child, parent) + padding for child, parent in pairs], dtype=torch.long)


# -- queries -------------------------------------------------------------------------------------------


def forward_prompts(facts):
    """(N, 6) `<bos> A1 A2 's parent is`: the prompt of the forward question."""
    return facts[:, :FORWARD_PROMPT_LENGTH].clone()


def reverse_canvases(facts):
    """(N, L) `<bos> [M] [M] 's parent is B1 B2 . <eos> ...`: the diffusion model's reverse question."""
    canvas = facts.clone()
    canvas[:, SUBJECT] = MASK_ID
    return canvas


def ar_reverse_prompts(facts):
    """(N, 1) `<bos>`: all that precedes the subject, the only context an autoregressive model may use."""
    return facts[:, :1].clone()


def exact_match(predicted, expected) -> float:
    """Fraction of rows of predicted (N, k) equal to expected (N, k) in every position."""
    if predicted.shape != expected.shape:
        raise ValueError(f"exact_match: predicted {tuple(predicted.shape)} vs expected {tuple(expected.shape)}")
    return (predicted == expected).all(dim=1).float().mean().item()


# -- decoding ------------------------------------------------------------------------------------------


def infill(model, canvas, *, steps: int, mask_id: int = MASK_ID):
    """Fill the mask ids of canvas (B, L), wherever they are, in `steps` model calls: (B, L).

    docs/SPEC-diffusion.md "Sampling" at temperature 0 with low-confidence remasking, on one block that is the
    whole canvas: each step commits the most confident candidates at masked positions, on the schedule
    of `get_num_transfer_tokens`. With the masks at the end it equals `generate` with one block.
    """
    import torch
    import torch.nn.functional as F

    from trainer.sampler import get_num_transfer_tokens

    x = canvas.clone()
    num_transfer = get_num_transfer_tokens(x == mask_id, steps)  # (B, steps)
    with torch.no_grad():
        for step in range(steps):
            mask_index = x == mask_id  # (B, L)
            logits = model(x)  # (B, L, V)
            x0 = logits.argmax(dim=-1)  # (B, L)
            confidence = F.softmax(logits.to(torch.float64), dim=-1).gather(-1, x0[..., None]).squeeze(-1)
            confidence = torch.where(mask_index, confidence, float("-inf"))  # decoded positions stay
            k = num_transfer[:, step]  # (B,)
            top = confidence.topk(int(k.max()), dim=-1).indices  # (B, k_max)
            commit = torch.zeros_like(mask_index).scatter_(
                1, top, torch.arange(top.shape[1], device=x.device)[None, :] < k[:, None]
            )  # (B, L)
            x = torch.where(commit, x0, x)
    return x


def greedy(model, prompt, new_tokens: int):
    """Autoregressive greedy decoding: prompt (B, P) -> (B, P + new_tokens)."""
    import torch

    x = prompt
    with torch.no_grad():
        for _ in range(new_tokens):
            x = torch.cat([x, model(x)[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return x


def rank_subjects(model, facts, chunk: int = 8192):
    """Per fact, the subject A' (among all N) maximising log p(`<bos> A' 's parent is B . <eos>`): (N, 2)."""
    import torch
    import torch.nn.functional as F

    n = facts.shape[0]
    subjects = facts[:, SUBJECT]  # (N, 2)
    candidates = facts[:, None, :].repeat(1, n, 1)  # (N queries, N candidates, L)
    candidates[:, :, SUBJECT] = subjects[None, :, :]
    flat = candidates.view(-1, facts.shape[1])
    scores = []
    with torch.no_grad():
        for start in range(0, flat.shape[0], chunk):
            ids = flat[start : start + chunk]
            logp = F.log_softmax(model(ids[:, :-1]).float(), dim=-1)  # (b, L - 1, V)
            scores.append(logp.gather(-1, ids[:, 1:, None]).squeeze(-1).sum(dim=1))  # (b,)
    best = torch.cat(scores).view(n, n).argmax(dim=1)  # (N,)
    return subjects[best]


def evaluate_diffusion(model, facts) -> dict[str, float]:
    from trainer.sampler import generate

    model.eval()
    answer = facts.shape[1] - FORWARD_PROMPT_LENGTH  # B1 B2 . <eos> and the padding, one token per step
    completed = generate(model, forward_prompts(facts), steps=answer, gen_length=answer, block_length=answer, mask_id=MASK_ID)
    filled = infill(model, reverse_canvases(facts), steps=NAME_LENGTH)
    model.train()
    return {
        "forward": exact_match(completed[:, OBJECT], facts[:, OBJECT]),
        "reverse": exact_match(filled[:, SUBJECT], facts[:, SUBJECT]),
    }


def evaluate_autoregressive(model, facts, *, rank_reverse: bool = False) -> dict[str, float]:
    model.eval()
    completed = greedy(model, forward_prompts(facts), NAME_LENGTH)
    started = greedy(model, ar_reverse_prompts(facts), NAME_LENGTH)
    result = {
        "forward": exact_match(completed[:, OBJECT], facts[:, OBJECT]),
        "reverse": exact_match(started[:, SUBJECT], facts[:, SUBJECT]),
    }
    if rank_reverse:
        result["reverse_by_ranking"] = exact_match(rank_subjects(model, facts), facts[:, SUBJECT])
    model.train()
    return result


# -- training ------------------------------------------------------------------------------------------


# Why the diffusion model can answer in reverse: the forward process masks each token independently, so
# it hides A while B is visible as often as the converse, and the one-way sentence trains p(A | B) as much
# as p(B | A). Next-token prediction only ever trains p(A) and p(B | A).
def diffusion_loss(model, ids, generator, eps: float):
    """The pretraining objective (docs/SPEC-diffusion.md; paper eq. 3) on a batch of whole facts."""
    from trainer.diffusion import forward_process, masked_diffusion_loss

    noisy, masked, p_mask = forward_process(ids, MASK_ID, eps=eps, generator=generator)
    return masked_diffusion_loss(model(noisy), ids, masked, p_mask)


def autoregressive_loss(model, ids, generator, eps: float):
    """Next-token cross-entropy: every token predicted from the ones before it."""
    import torch.nn.functional as F

    logits = model(ids[:, :-1])  # (B, L - 1, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def batch_order(num_facts: int, batch_size: int, steps: int, seed: int):
    """(steps, batch_size) fact indices: epochs of seeded permutations, the same for both models."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    needed = steps * batch_size
    order = torch.cat([torch.randperm(num_facts, generator=generator) for _ in range(-(-needed // num_facts))])
    return order[:needed].view(steps, batch_size)


def build_model(config: ReversalConfig, *, causal: bool):
    """Same preset, same seed, so the two models start from identical weights."""
    import torch

    from trainer.model import MaskPredictor, model_config

    torch.manual_seed(config.seed)
    return MaskPredictor(model_config(config.model, vocab_size=len(VOCAB), causal=causal))


def train_and_evaluate(config: ReversalConfig, facts, *, causal: bool, log=print):
    """Train one model for config.steps; evaluate at config.eval_steps: (model, [row per eval step])."""
    import torch

    model = build_model(config, causal=causal)
    model.train()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.95),
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, config.warmup_steps)))
    loss_fn = autoregressive_loss if causal else diffusion_loss
    generator = torch.Generator().manual_seed(config.seed + 1)
    order = batch_order(facts.shape[0], config.batch_size, config.steps, config.seed)
    kind = "autoregressive" if causal else "diffusion"
    rows, train_seconds, eval_at = [], 0.0, set(config.eval_steps)
    start = time.perf_counter()
    for step in range(1, config.steps + 1):
        loss = loss_fn(model, facts[order[step - 1]], generator, config.eps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step in eval_at:
            train_seconds += time.perf_counter() - start
            eval_start = time.perf_counter()
            if causal:
                last = step == max(config.eval_steps)
                accuracy = evaluate_autoregressive(model, facts, rank_reverse=config.rank_reverse and last)
            else:
                accuracy = evaluate_diffusion(model, facts)
            row = {
                "model": kind,
                "steps": step,
                "tokens": step * config.batch_size * facts.shape[1],
                "loss": loss.item(),
                "train_seconds": round(train_seconds, 2),
                "eval_seconds": round(time.perf_counter() - eval_start, 2),
                **accuracy,
            }
            scores = " ".join(f"{k} {v:.3f}" for k, v in accuracy.items())
            log(f"{LOG} {kind} step {step}: loss {row['loss']:.4f} {scores}")
            rows.append(row)
            start = time.perf_counter()
    model.eval()
    return model, rows


def results_table(rows: list[dict]) -> str:
    """Markdown table in the manner of the paper's table 4 (accuracy in %)."""
    lines = [
        "| model | steps | tokens | train s | forward % | reverse % | reverse by ranking % |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ranking = f"{100 * r['reverse_by_ranking']:.1f}" if "reverse_by_ranking" in r else "-"
        lines.append(
            f"| {r['model']} | {r['steps']} | {r['tokens']} | {r['train_seconds']:.1f} | "
            f"{100 * r['forward']:.1f} | {100 * r['reverse']:.1f} | {ranking} |"
        )
    return "\n".join(lines)


def run(config: ReversalConfig, *, log=print) -> dict:
    """Both models, trained and evaluated; nothing written to disk: {"rows": [...], models}."""
    import torch

    pairs = make_pairs(config.num_pairs, config.seed)
    facts = fact_tensor(pairs, config.canvas_length)
    log(f"{LOG} {len(pairs)} facts, e.g. {decode(facts[0].tolist())!r}; vocabulary {len(VOCAB)} tokens")
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        diffusion, diffusion_rows = train_and_evaluate(config, facts, causal=False, log=log)
        autoregressive, autoregressive_rows = train_and_evaluate(config, facts, causal=True, log=log)
    finally:  # the caller's setting (a test session, a benchmark) is not ours to change
        torch.set_num_threads(threads)
    return {"rows": diffusion_rows + autoregressive_rows, "diffusion": diffusion, "autoregressive": autoregressive}


def save_model(model, folder: Path) -> None:
    """model.pt + model_config.json, readable by `trainer.checkpoint.load_model`."""
    import torch

    from common.files import atomic_path
    from trainer.checkpoint import write_model_config

    folder.mkdir(parents=True, exist_ok=True)
    write_model_config(model.config, folder)
    with atomic_path(folder / "model.pt") as tmp:
        torch.save(model.state_dict(), tmp)


def write_json(path: Path, value) -> None:
    from common.files import write_atomically

    write_atomically(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def main(config: ReversalConfig) -> dict:
    from common.config import save_config

    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    results_path = output / "results.json"
    if results_path.is_file():  # completion marker: written last
        previous = json.loads(results_path.read_text())
        if previous.get("config") == to_dict(config):
            print(f"{LOG} {results_path} is complete for this config; delete it to rerun", flush=True)
            print(results_table(previous["rows"]), flush=True)
            return previous
    outcome = run(config, log=lambda line: print(line, flush=True))
    save_config(config, output / "config.json")
    write_json(output / "vocab.json", {"tokens": VOCAB, "pad": PAD_ID, "mask": MASK_ID, "bos": BOS_ID, "eos": EOS_ID})
    save_model(outcome["diffusion"], output / "diffusion")
    save_model(outcome["autoregressive"], output / "autoregressive")
    result = {"config": to_dict(config), "rows": outcome["rows"]}
    write_json(results_path, result)
    print(results_table(outcome["rows"]), flush=True)
    return result


if __name__ == "__main__":
    raise SystemExit(
        run_job(ReversalConfig, main, description="Reversal curse: diffusion vs autoregressive on one-way facts.")
    )
