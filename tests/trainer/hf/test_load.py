import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from common.config import ConfigError
from tests.trainer.hf import VOCAB, assert_identical_logits, gqa_config, random_model
from trainer.hf.export import export_hf_checkpoint
from trainer.hf.load import load_hf_checkpoint
from trainer.model_config import tiny

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
