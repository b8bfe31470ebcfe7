import dataclasses

import pytest

from trainer.model_config import PRESETS, ModelConfig, model_config, tiny


def small_config(**overrides) -> ModelConfig:
    base = ModelConfig(n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, mlp_hidden_size=64, vocab_size=64)
    return dataclasses.replace(base, **overrides)


def test_presets_and_overrides():
    assert set(PRESETS) == {"tiny", "llada_1b", "llada_8b"}
    assert tiny() == ModelConfig()
    assert tiny(vocab_size=100).vocab_size == 100
    assert model_config("llada_8b", n_layers=2).n_layers == 2
    assert model_config("llada_8b").rope_theta == 500000.0
    with pytest.raises(ValueError, match="unknown model preset"):
        model_config("gpt5")
    with pytest.raises(ValueError, match="n_layer"):
        model_config("tiny", n_layer=2)


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(d_model=30), "d_model"),
        (dict(n_kv_heads=3), "n_kv_heads"),
        (dict(n_layers=0), "n_layers"),
        (dict(vocab_size=-1), "vocab_size"),
        (dict(d_model=12, n_heads=4), "d_model / n_heads"),
    ],
)
def test_config_validation_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        small_config(**overrides)

