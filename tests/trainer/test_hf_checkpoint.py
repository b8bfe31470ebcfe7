import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from common.cli import run_job
from common.config import ConfigError
from trainer.checkpoint import load_model, write_model_config
from trainer.convert import ConvertConfig, main
from trainer.hf_checkpoint import export_hf_checkpoint, load_hf_checkpoint, read_hf_config
from trainer.model import MaskPredictor, ModelConfig, tiny

VOCAB = 256

# GSAI-ML/LLaDA-8B-Instruct's config.json as released (keys and architecture values).
RELEASED_LLADA_8B_CONFIG = {
    "activation_type": "silu", "alibi": False, "alibi_bias_max": 8.0, "architectures": ["LLaDAModelLM"],
    "attention_dropout": 0.0, "attention_layer_norm": False, "attention_layer_norm_with_affine": True,
    "auto_map": {
        "AutoConfig": "configuration_llada.LLaDAConfig",
        "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
        "AutoModel": "modeling_llada.LLaDAModelLM",
    },
    "bias_for_layer_norm": False, "block_group_size": 1, "block_type": "llama", "d_model": 4096,
    "embedding_dropout": 0.0, "embedding_size": 126464, "eos_token_id": 126081, "flash_attention": False,
    "include_bias": False, "include_qkv_bias": False, "init_cutoff_factor": None, "init_device": "meta",
    "init_fn": "mitchell", "init_std": 0.02, "input_emb_norm": False, "layer_norm_type": "rms",
    "layer_norm_with_affine": True, "mask_token_id": 126336, "max_sequence_length": 4096, "mlp_hidden_size": 12288,
    "mlp_ratio": 4, "model_type": "llada", "multi_query_attention": None, "n_heads": 32, "n_kv_heads": 32,
    "n_layers": 32, "pad_token_id": 126081, "precision": "amp_bf16", "residual_dropout": 0.0, "rms_norm_eps": 1e-05,
    "rope": True, "rope_full_precision": True, "rope_theta": 500000.0, "scale_logits": False,
    "transformers_version": "4.46.3", "use_cache": False, "vocab_size": 126464, "weight_tying": False,
}
ARCHITECTURE_KEYS = (
    "activation_type", "alibi", "block_type", "block_group_size", "include_bias", "include_qkv_bias",
    "bias_for_layer_norm", "input_emb_norm", "attention_layer_norm", "layer_norm_type", "layer_norm_with_affine",
    "rope", "rope_full_precision", "scale_logits", "weight_tying", "model_type", "architectures", "auto_map",
)


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


@pytest.mark.parametrize("config", [tiny(vocab_size=VOCAB), gqa_config()], ids=["tiny", "gqa"])
def test_fp32_round_trip_gives_identical_logits(tmp_path, config):
    model = random_model(config)
    files = export_hf_checkpoint(model, tmp_path)
    assert sorted(p.name for p in files) == ["config.json", "model.safetensors"]
    loaded = load_hf_checkpoint(tmp_path)
    assert loaded.config == dataclasses.replace(config, activation_checkpointing=False)
    assert loaded.transformer.wte.weight.dtype == torch.float32
    assert_identical_logits(model, loaded)


def test_bf16_round_trip_keeps_dtype_and_logits(tmp_path):
    model = random_model(gqa_config()).to(torch.bfloat16)
    export_hf_checkpoint(model, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["torch_dtype"] == "bfloat16"
    loaded = load_hf_checkpoint(tmp_path)
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    assert_identical_logits(model, loaded)
    # An explicit dtype converts while loading.
    as_fp32 = load_hf_checkpoint(tmp_path, dtype=torch.float32)
    assert_identical_logits(model.float(), as_fp32)
    # Files that mix dtypes load in float32 (MaskPredictor holds one dtype).
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["model.transformer.ln_f.weight"] = tensors["model.transformer.ln_f.weight"].float()
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    mixed = load_hf_checkpoint(tmp_path)
    assert {p.dtype for p in mixed.parameters()} == {torch.float32}
    assert_identical_logits(model.float(), mixed)


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


def test_embedding_size_larger_than_vocab_keeps_every_row(tmp_path):
    # LLaDA pads wte and ff_out to embedding_size and returns logits over all rows; so do we.
    model = random_model(gqa_config())
    export_hf_checkpoint(model, tmp_path, extra_config={"vocab_size": 250, "mask_token_id": 249, "eos_token_id": 1})
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["vocab_size"], config["embedding_size"]) == (250, VOCAB)
    info = read_hf_config(tmp_path)
    assert info.vocab_size == 250 and info.model_config.vocab_size == VOCAB
    assert info.special_token_ids == {"mask_token_id": 249, "eos_token_id": 1}
    loaded = load_hf_checkpoint(tmp_path)
    assert loaded.transformer.ff_out.weight.shape == (VOCAB, 32)
    assert_identical_logits(model, loaded, vocab=250)

    config["embedding_size"] = 200  # fewer rows than the vocabulary
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="embedding_size=200 is smaller than vocab_size=250"):
        read_hf_config(tmp_path)


def test_exported_config_has_llada_field_names(tmp_path):
    model = random_model(gqa_config())
    export_hf_checkpoint(model, tmp_path, extra_config={"mask_token_id": 255, "eos_token_id": 2, "pad_token_id": 2})
    config = json.loads((tmp_path / "config.json").read_text())
    # Every field of the released config, except the version stamp of the transformers that wrote it.
    assert set(RELEASED_LLADA_8B_CONFIG) - {"transformers_version"} <= set(config)
    for key in ARCHITECTURE_KEYS:
        assert config[key] == RELEASED_LLADA_8B_CONFIG[key], key
    assert (config["d_model"], config["n_heads"], config["n_kv_heads"], config["n_layers"]) == (32, 4, 2, 2)
    assert (config["mlp_hidden_size"], config["embedding_size"], config["vocab_size"]) == (64, VOCAB, VOCAB)
    assert (config["rope_theta"], config["rms_norm_eps"]) == (500000.0, 1e-5)
    assert config["mask_token_id"] == 255 and config["architectures"] == ["LLaDAModelLM"]


def test_released_8b_config_maps_to_the_llada_8b_preset(tmp_path):
    from trainer.model import llada_8b

    (tmp_path / "config.json").write_text(json.dumps(RELEASED_LLADA_8B_CONFIG))
    info = read_hf_config(tmp_path)
    assert info.model_config == llada_8b()
    assert info.special_token_ids == {"mask_token_id": 126336, "eos_token_id": 126081, "pad_token_id": 126081}


@pytest.mark.parametrize(
    "key, value",
    [
        ("weight_tying", True),
        ("include_bias", True),
        ("alibi", True),
        ("layer_norm_type", "default"),
        ("activation_type", "swiglu"),
        ("block_type", "sequential"),
        ("scale_logits", True),
    ],
)
def test_config_we_cannot_compute_is_refused_naming_the_key(tmp_path, key, value):
    config = {**RELEASED_LLADA_8B_CONFIG, key: value}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=rf"config\.json: {key}={json.dumps(value)} cannot be loaded"):
        read_hf_config(tmp_path)


def test_absent_key_takes_llada_default(tmp_path):
    # LLaDA's configuration code ties the head when weight_tying is absent; we refuse, saying so.
    config = {k: v for k, v in RELEASED_LLADA_8B_CONFIG.items() if k != "weight_tying"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="weight_tying=true .LLaDA's default when the key is absent."):
        read_hf_config(tmp_path)


def test_missing_and_unexpected_tensors_are_named(tmp_path):
    export_hf_checkpoint(random_model(gqa_config()), tmp_path)
    path = tmp_path / "model.safetensors"
    tensors = load_file(path)
    del tensors["model.transformer.blocks.1.up_proj.weight"]
    save_file(tensors, path)
    with pytest.raises(ConfigError, match=r"safetensors: missing tensor\(s\) model\.transformer\.blocks\.1\.up_"):
        load_hf_checkpoint(tmp_path)

    tensors["model.transformer.blocks.1.up_proj.weight"] = torch.zeros(64, 32)
    tensors["model.transformer.blocks.0.q_proj.bias"] = torch.zeros(32)
    save_file(tensors, path)
    with pytest.raises(ConfigError, match=r"safetensors: unexpected tensor\(s\) model\.transformer\.blocks\.0\.q_"):
        load_hf_checkpoint(tmp_path)

    del tensors["model.transformer.blocks.0.q_proj.bias"]
    tensors["model.transformer.blocks.0.k_proj.weight"] = torch.zeros(32, 32)  # n_kv_heads 2 -> 16 rows
    save_file(tensors, path)
    with pytest.raises(ConfigError, match=r"k_proj\.weight has shape \(32, 32\), but config\.json implies \(16, 32\)"):
        load_hf_checkpoint(tmp_path)


def test_index_naming_a_tensor_its_shard_lacks_is_refused(tmp_path):
    export_hf_checkpoint(random_model(gqa_config()), tmp_path, max_shard_bytes=20_000)
    index_path = tmp_path / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    first_shard = sorted(set(index["weight_map"].values()))[0]
    assert index["weight_map"]["model.transformer.ln_f.weight"] != first_shard
    index["weight_map"]["model.transformer.ln_f.weight"] = first_shard
    index_path.write_text(json.dumps(index))
    with pytest.raises(ConfigError, match=r"lists model\.transformer\.ln_f\.weight in model-00001"):
        load_hf_checkpoint(tmp_path)


def test_export_refuses_what_llada_cannot_compute(tmp_path):
    with pytest.raises(ConfigError, match="causal"):
        export_hf_checkpoint(random_model(gqa_config(causal=True)), tmp_path)
    with pytest.raises(ConfigError, match="extra_config weight_tying=True disagrees"):
        export_hf_checkpoint(random_model(gqa_config()), tmp_path, extra_config={"weight_tying": True})
    with pytest.raises(ConfigError, match="vocab_size=300 must be an integer in"):
        export_hf_checkpoint(random_model(gqa_config()), tmp_path, extra_config={"vocab_size": 300})


def test_cli_round_trip_through_our_checkpoint_folder(tmp_path, capsys):
    ours, hf, back = tmp_path / "ours", tmp_path / "hf", tmp_path / "back"
    model = random_model(gqa_config()).to(torch.bfloat16)  # as the training job saves it (16-bit)
    ours.mkdir()
    torch.save(model.state_dict(), ours / "model.pt")
    write_model_config(model.config, ours)

    argv = ["direction=to_hf", f"input={ours}", f"output={hf}", "max_shard_bytes=20000"]
    assert run_job(ConvertConfig, main, argv) == 0
    assert (hf / "model.safetensors.index.json").is_file() and (hf / "convert_config.json").is_file()
    assert json.loads((hf / "config.json").read_text())["torch_dtype"] == "bfloat16"  # dtype=auto keeps it
    assert run_job(ConvertConfig, main, ["direction=from_hf", f"input={hf}", f"output={back}"]) == 0
    assert {p.name for p in back.iterdir()} == {"model.pt", "model_config.json", "config.json"}

    assert_identical_logits(model, load_model(back, dtype=torch.bfloat16))
    assert_identical_logits(model.float(), load_model(back))
    assert_identical_logits(model.float(), load_hf_checkpoint(hf, dtype=torch.float32))

    # Bad config values are exit status 2 with a message, not a traceback.
    assert run_job(ConvertConfig, main, ["direction=sideways"]) == 2
    assert run_job(ConvertConfig, main, [f"input={ours}", f"output={ours}"]) == 2
    assert "output must differ from input" in capsys.readouterr().err
