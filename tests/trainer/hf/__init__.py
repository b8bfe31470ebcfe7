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
