"""The experiment's vocabulary, its one-way facts and the questions asked about them."""

from __future__ import annotations

import random

import torch

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
MAX_PAIRS = len(SYLLABLES) ** NAME_LENGTH // 2  # two distinct names per pair

VOCAB = [*SPECIALS, *SYLLABLES, *TEMPLATE_WORDS]  # token strings by id
TOKEN_ID = {token: i for i, token in enumerate(VOCAB)}


def make_pairs(num_pairs: int, seed: int) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """N (child, parent) pairs of distinct two-syllable names; the same list for the same seed."""
    rng = random.Random(seed)
    codes = rng.sample(range(len(SYLLABLES) ** NAME_LENGTH), 2 * num_pairs)  # distinct names
    names = [(SYLLABLES[c // len(SYLLABLES)], SYLLABLES[c % len(SYLLABLES)]) for c in codes]
    return list(zip(names[:num_pairs], names[num_pairs:]))


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


def fact_tensor(pairs, canvas_length: int = FACT_LENGTH) -> torch.Tensor:
    """(N, canvas_length) long tensor of the training facts, each padded with <eos> after its own."""
    padding = [EOS_ID] * (canvas_length - FACT_LENGTH)
    return torch.tensor([fact_ids(child, parent) + padding for child, parent in pairs], dtype=torch.long)


# -- the questions -------------------------------------------------------------------------------------


def forward_prompts(facts: torch.Tensor) -> torch.Tensor:
    """(N, 6) `<bos> A1 A2 's parent is`: the prompt of the forward question."""
    return facts[:, :FORWARD_PROMPT_LENGTH].clone()


def reverse_canvases(facts: torch.Tensor) -> torch.Tensor:
    """(N, L) `<bos> [M] [M] 's parent is B1 B2 . <eos> ...`: the diffusion model's reverse question."""
    canvas = facts.clone()
    canvas[:, SUBJECT] = MASK_ID
    return canvas


def ar_reverse_prompts(facts: torch.Tensor) -> torch.Tensor:
    """(N, 1) `<bos>`: all that precedes the subject, the only context an autoregressive model may use."""
    return facts[:, :1].clone()
