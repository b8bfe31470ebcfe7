"""What the tests of trainer/hf/ share: a small GQA MaskPredictor with random weights, and its logits."""

import dataclasses

import torch

from trainer.model import MaskPredictor
from trainer.model_config import ModelConfig

VOCAB = 256


def gqa_config(**overrides) -> ModelConfig:
    base = ModelConfig(n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, mlp_hidden_size=64, vocab_size=VOCAB)
    return dataclasses.replace(base, **overrides)


def random_model(config: ModelConfig, seed: int = 0) -> MaskPredictor:
    torch.manual_seed(seed)
    model = MaskPredictor(config).eval()
    with torch.no_grad():  # norms start at ones; make them matter so a swapped norm would show
        for name, p in model.named_parameters():
            if "norm" in name or "ln_f" in name:
                p.uniform_(0.5, 1.5)
    return model


def ids(batch: int = 2, length: int = 12, vocab: int = VOCAB) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(1))


@torch.no_grad()
def assert_identical_logits(a: MaskPredictor, b: MaskPredictor, vocab: int = VOCAB) -> None:
    x = ids(vocab=vocab)
    assert torch.equal(a(x), b(x))


def tiny_llada_folder(folder, seed: int = 0):
    """A tiny LLaDA-layout Hugging Face folder, built offline: the small LLaDA-style tokenizer of
    tests/tokenizer (LLaDA's special-token names and chat template), and a random tiny MaskPredictor whose
    embedding pads the vocabulary to a multiple of 64 rows, as LLaDA-8B's does (126,464 rows)."""
    from tests.tokenizer import llada_style_tokenizer
    from tokenizer.encode import Tokenizer
    from trainer.hf.export import export_hf_checkpoint
    from trainer.model_config import tiny

    llada_style_tokenizer(folder)
    tokenizer = Tokenizer.load(folder)
    rows = -(-tokenizer.vocab_size // 64) * 64
    model = random_model(tiny(vocab_size=rows), seed=seed)
    ids = tokenizer.special_tokens
    export_hf_checkpoint(model, folder, extra_config={
        "mask_token_id": ids["mask"], "eos_token_id": ids["eos"], "pad_token_id": ids["pad"], "bos_token_id": ids["bos"],
        "vocab_size": tokenizer.vocab_size,
    })
    return folder
