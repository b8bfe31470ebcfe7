import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

from common.config import ConfigError
from tests.trainer.hf import assert_identical_logits, gqa_config, ids, random_model
from trainer.hf.export import export_hf_checkpoint
from trainer.hf.load import load_hf_checkpoint

def test_weights_are_named_like_llada_and_match_a_reference_forward(tmp_path):
    """Decode the exported files the way LLaDA's modeling_llada.py does (llama block, OLMo names) and compare:
    a round trip alone would not catch a consistent swap such as ff_proj <-> up_proj."""
    model = random_model(gqa_config())
    export_hf_checkpoint(model, tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    config = json.loads((tmp_path / "config.json").read_text())
    x = ids()
    with torch.no_grad():
        assert torch.allclose(llada_reference_logits(weights, config, x), model(x), atol=1e-5, rtol=1e-5)


def llada_reference_logits(w: dict, cfg: dict, input_ids: torch.Tensor) -> torch.Tensor:
    """LLaDALlamaBlock's computation, written from LLaDA's released modeling code, in float32."""
    t = "model.transformer."
    nh, nkv, d = cfg["n_heads"], cfg["n_kv_heads"], cfg["d_model"]
    hs = d // nh
    B, T = input_ids.shape

    def rms(x, weight):
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg["rms_norm_eps"]))

    inv_freq = 1.0 / cfg["rope_theta"] ** (torch.arange(0, hs, 2, dtype=torch.float) / hs)
    freqs = torch.einsum("i,j->ij", torch.arange(T, dtype=torch.float), inv_freq)
    pos = torch.cat((freqs, freqs), dim=-1)

    def rotate(x):  # LLaDA's rotate_half: view as (..., 2, hs/2)
        x1, x2 = x.view(B, x.shape[1], T, 2, hs // 2).unbind(dim=-2)
        return x * pos.cos() + torch.cat((-x2, x1), dim=-1) * pos.sin()

    x = F.embedding(input_ids, w[t + "wte.weight"])
    for i in range(cfg["n_layers"]):
        b = f"{t}blocks.{i}."
        h = rms(x, w[b + "attn_norm.weight"])
        q = (h @ w[b + "q_proj.weight"].T).view(B, T, nh, hs).transpose(1, 2)
        k = (h @ w[b + "k_proj.weight"].T).view(B, T, nkv, hs).transpose(1, 2)
        v = (h @ w[b + "v_proj.weight"].T).view(B, T, nkv, hs).transpose(1, 2)
        q, k = rotate(q), rotate(k)
        k, v = k.repeat_interleave(nh // nkv, dim=1), v.repeat_interleave(nh // nkv, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hs), dim=-1) @ v  # bidirectional
        x = x + att.transpose(1, 2).reshape(B, T, d) @ w[b + "attn_out.weight"].T
        h = rms(x, w[b + "ff_norm.weight"])
        x = x + (F.silu(h @ w[b + "ff_proj.weight"].T) * (h @ w[b + "up_proj.weight"].T)) @ w[b + "ff_out.weight"].T
    return rms(x, w[t + "ln_f.weight"]) @ w[t + "ff_out.weight"].T


def test_sharded_export_round_trip(tmp_path):
    model = random_model(gqa_config())
    files = export_hf_checkpoint(model, tmp_path, max_shard_bytes=20_000)
    shards = sorted(p.name for p in files if p.suffix == ".safetensors")
    assert len(shards) > 2 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert not (tmp_path / "model.safetensors").exists()
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == {"model." + name for name in model.state_dict()}
    assert set(index["weight_map"].values()) == set(shards)
    assert index["metadata"]["total_size"] == sum(t.numel() * 4 for t in model.state_dict().values())
    for shard in shards:
        with safe_open(tmp_path / shard, framework="pt") as f:
            assert f.metadata() == {"format": "pt"}  # transformers refuses files without it
    assert_identical_logits(model, load_hf_checkpoint(tmp_path))

    # Re-exporting in one file removes the old shards: the folder never mixes two exports.
    export_hf_checkpoint(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_export_refuses_what_llada_cannot_compute(tmp_path):
    with pytest.raises(ConfigError, match="causal"):
        export_hf_checkpoint(random_model(gqa_config(causal=True)), tmp_path)
    with pytest.raises(ConfigError, match="extra_config weight_tying=True disagrees"):
        export_hf_checkpoint(random_model(gqa_config()), tmp_path, extra_config={"weight_tying": True})
    with pytest.raises(ConfigError, match="vocab_size=300 must be an integer in"):
        export_hf_checkpoint(random_model(gqa_config()), tmp_path, extra_config={"vocab_size": 300})
