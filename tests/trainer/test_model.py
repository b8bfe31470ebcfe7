import dataclasses
import os
import shutil

import pytest
import torch

from trainer.model import KVCache, MaskPredictor
from trainer.model_config import ModelConfig, llada_1b, llada_8b

VOCAB = 64


def small_config(**overrides) -> ModelConfig:
    # n_kv_heads < n_heads so grouped-query attention is exercised everywhere
    base = ModelConfig(n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, mlp_hidden_size=64, vocab_size=VOCAB)
    return dataclasses.replace(base, **overrides)


def small_model(seed: int = 0, **overrides) -> MaskPredictor:
    torch.manual_seed(seed)
    return MaskPredictor(small_config(**overrides)).eval()


def random_ids(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def test_logits_shape_and_dtype():
    logits = small_model()(random_ids(3, 11))
    assert logits.shape == (3, 11, VOCAB)
    assert logits.dtype == torch.float32


def test_attention_is_bidirectional():
    model = small_model()
    ids = random_ids(1, 8)
    changed = ids.clone()
    changed[0, -1] = (changed[0, -1] + 1) % VOCAB
    assert not torch.allclose(model(ids)[0, 0], model(changed)[0, 0])


def test_causal_baseline_does_not_look_ahead():
    model = small_model(causal=True)
    ids = random_ids(1, 8)
    changed = ids.clone()
    changed[0, -1] = (changed[0, -1] + 1) % VOCAB
    torch.testing.assert_close(model(ids)[0, :-1], model(changed)[0, :-1])
    assert not torch.allclose(model(ids)[0, -1], model(changed)[0, -1])


@pytest.mark.parametrize("causal", [False, True])
def test_left_padding_leaves_real_tokens_unchanged(causal):
    model = small_model(causal=causal)
    short, long = random_ids(1, 5, seed=2), random_ids(1, 8, seed=3)
    pad = 7
    batch = torch.cat([torch.cat([torch.full((1, 3), pad), short], dim=1), long])  # (2, 8), row 0 left-padded
    attention_mask = batch != pad
    attention_mask[1] = True
    logits = model(batch, attention_mask=attention_mask)
    assert torch.isfinite(logits).all()  # padding rows must not produce NaN
    torch.testing.assert_close(logits[0, 3:], model(short)[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits[1], model(long)[0], rtol=1e-5, atol=1e-5)


def test_state_dict_keys_are_llada_hf_names():
    model = small_model()
    expected = {"transformer.wte.weight", "transformer.ln_f.weight", "transformer.ff_out.weight"}
    for i in range(model.config.n_layers):
        for name in ("attn_norm", "q_proj", "k_proj", "v_proj", "attn_out", "ff_norm", "ff_proj", "up_proj", "ff_out"):
            expected.add(f"transformer.blocks.{i}.{name}.weight")
    assert set(model.state_dict()) == expected


def expected_param_counts(c: ModelConfig) -> tuple[int, int]:
    """(total, non-embedding) from the shapes alone."""
    kv_width = c.n_kv_heads * c.head_dim
    per_block = 2 * c.d_model * c.d_model + 2 * c.d_model * kv_width + 3 * c.d_model * c.mlp_hidden_size + 2 * c.d_model
    non_embedding = c.n_layers * per_block + c.d_model
    return non_embedding + 2 * c.vocab_size * c.d_model, non_embedding


@pytest.mark.parametrize(
    "preset, total_b, non_embedding_b", [(llada_8b, 8.02, 6.98), (llada_1b, 1.49, 0.97)], ids=["8b", "1b"]
)
def test_param_counts_match_the_spec(preset, total_b, non_embedding_b):
    config = preset()
    with torch.device("meta"):
        model = MaskPredictor(config)
    total, non_embedding = expected_param_counts(config)
    assert model.num_params() == total
    assert model.num_params(non_embedding=True) == non_embedding
    assert total == pytest.approx(total_b * 1e9, rel=0.01)
    assert non_embedding == pytest.approx(non_embedding_b * 1e9, rel=0.01)


def test_flops_per_token():
    model = small_model()
    c = model.config
    assert model.flops_per_token(16) == 6 * model.num_params(non_embedding=True) + 12 * c.n_layers * c.d_model * 16


def test_bf16_forward():
    model = small_model().to(torch.bfloat16)
    logits = model(random_ids(2, 9))
    assert logits.dtype == torch.bfloat16
    assert torch.isfinite(logits).all()


def test_activation_checkpointing_gives_identical_gradients():
    ids, targets = random_ids(2, 10, seed=4), random_ids(2, 10, seed=5)
    grads = []
    for checkpointing in (False, True):
        model = small_model(activation_checkpointing=checkpointing).train()
        loss = torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), targets.flatten())
        loss.backward()
        grads.append({name: p.grad for name, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=0, atol=0, msg=name)


@pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None, reason="torch.compile (inductor) needs a C++ compiler"
)
def test_compiled_forward_matches_eager():
    # One layer, one shape, with the padding mask: the compile is the cost (~20 s cold on 2 cores).
    model = small_model(n_layers=1)
    ids = random_ids(2, 8)
    attention_mask = torch.ones(2, 8, dtype=torch.bool)
    attention_mask[0, :3] = False
    compiled = torch.compile(model, fullgraph=True)  # fullgraph: no graph break, no data-dependent Python
    torch.testing.assert_close(compiled(ids, attention_mask), model(ids, attention_mask), rtol=1e-4, atol=1e-4)


# KV cache (trainer/fast_sampler.py): a forward of a slice of positions that attends to the exact keys and values
# of the other positions must give the full forward's logits there.


def left_padded_ids(length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two rows of `length` ids, row 0 left-padded by 3: (ids, attention_mask)."""
    ids = random_ids(2, length, seed=6)
    attention_mask = torch.ones(2, length, dtype=torch.bool)
    attention_mask[0, :3] = False
    return ids, attention_mask


def test_return_kv_gives_the_same_logits_and_every_layers_keys_and_values():
    model = small_model()
    ids, attention_mask = left_padded_ids(9)
    plain = model(ids, attention_mask)
    assert isinstance(plain, torch.Tensor)
    logits, kv = model(ids, attention_mask, return_kv=True)
    assert torch.equal(logits, plain)
    c = model.config
    assert len(kv.keys) == len(kv.values) == c.n_layers and len(kv) == 9
    assert kv.keys[0].shape == kv.values[0].shape == (2, c.n_kv_heads, 9, c.head_dim)  # before the GQA repeat
    assert torch.equal(kv.mask, attention_mask)
    assert torch.equal(model(ids, position_ids=torch.arange(9)), model(ids))  # the default positions


@pytest.mark.parametrize("padded", [False, True], ids=["no padding", "left padding"])
@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_cached_forward_of_a_slice_matches_the_full_forward(cache, padded):
    model = small_model(init_std=0.1)  # larger weights: attention far from uniform, positions matter
    ids, attention_mask = left_padded_ids(14)
    if not padded:
        attention_mask = None
    start, end = 6, 10  # a "block"; prefix: run start.. attending to ..start; dual: run start..end only
    logits, kv = model(ids, attention_mask, return_kv=True)
    if cache == "prefix":
        past, end = kv.slice(0, start), 14
    else:
        past = KVCache.cat([kv.slice(0, start), kv.slice(end, 14)])  # the suffix computed with nothing changed
    cached = model(
        ids[:, start:end],
        None if attention_mask is None else attention_mask[:, start:end],
        position_ids=torch.arange(start, end),
        past_key_values=past,
    )
    torch.testing.assert_close(cached, logits[:, start:end], rtol=1e-5, atol=1e-5)
    # the positions matter: the same slice placed at 0.. attends to the cache with the wrong offsets
    misplaced = model(ids[:, start:end], past_key_values=past)
    assert not torch.allclose(misplaced, logits[:, start:end], rtol=1e-3, atol=1e-3)


def test_per_row_position_ids_equal_shared_ones():
    model = small_model()
    ids = random_ids(2, 6)
    positions = torch.arange(3, 9)
    torch.testing.assert_close(
        model(ids, position_ids=positions.expand(2, 6)), model(ids, position_ids=positions), rtol=0, atol=0
    )


def test_kv_cache_cat_fills_a_missing_mask_with_real_tokens():
    model = small_model()
    ids, attention_mask = left_padded_ids(8)
    _, with_mask = model(ids, attention_mask, return_kv=True)
    _, without_mask = model(ids, return_kv=True)
    both = KVCache.cat([with_mask.slice(0, 4), without_mask.slice(4, 8)])
    assert len(both) == 8
    assert torch.equal(both.mask, torch.cat([attention_mask[:, :4], torch.ones(2, 4, dtype=torch.bool)], dim=1))
    assert KVCache.cat([without_mask.slice(0, 2), without_mask.slice(5, 8)]).mask is None


def test_causal_baseline_refuses_a_cache():
    model = small_model(causal=True)
    _, kv = model(random_ids(1, 6), return_kv=True)
    with pytest.raises(ValueError, match="bidirectional"):
        model(random_ids(1, 2), position_ids=torch.arange(6, 8), past_key_values=kv)
