"""Start from released LLaDA: a tiny LLaDA-layout Hugging Face folder (weights, LLaDA-style tokenizer and chat
template) is fine-tuned by the real SFT job on Ray, sampled, exported, and read back by transformers
(tokenizer) and by our loader (weights)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from common.paths import PROJECT_ROOT
from tests.trainer.hf import tiny_llada_folder

pytestmark = pytest.mark.integration


def test_import_sft_sample_export_reload(tmp_path):
    from pipelines.sft_shards import main as write_pairs
    from pipelines.sft_shards_config import SFTShardsConfig
    from stack.local_ray import start_head
    from tokenizer.encode import Tokenizer
    from trainer.checkpoint import load_model
    from trainer.config import SampleConfig
    from trainer.convert import ConvertConfig
    from trainer.convert import main as convert
    from trainer.hf.load import load_hf_checkpoint
    from trainer.sample import main as sample

    llada = tiny_llada_folder(tmp_path / "LLaDA-tiny")
    tokenizer = Tokenizer.load(llada)
    write_pairs(SFTShardsConfig(conversations=[str(PROJECT_ROOT / "data/demo/conversations.jsonl")], tokenizer_dir=str(llada),
                                output_dir=str(tmp_path / "pairs"), max_seq_len=64, turns="sampled", runner="local",
                                log_to_mlflow=False))

    head = start_head(num_cpus=2)
    try:
        env = dict(os.environ, RAY_ADDRESS=head.gcs_address, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
        command = [sys.executable, "-m", "trainer.sft", f"sft_tokens_dir={tmp_path / 'pairs'}", f"init_checkpoint={llada}",
                   "tokenizer_dir=", f"output_dir={tmp_path / 'sft'}", "steps=6", "micro_batch_size=4", "log_every=1",
                   "val_sequences=0", "precision=fp32", "lr=1e-3", "warmup_steps=1"]
        done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, timeout=600)
        assert done.returncode == 0, done.stdout.decode()[-3000:] + done.stderr.decode()[-3000:]
    finally:
        head.stop()
    sft = tmp_path / "sft"
    steps = [json.loads(line)["step"] for line in (sft / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    tuned, imported = load_model(sft), load_model(llada)
    assert not torch.equal(tuned.transformer.wte.weight, imported.transformer.wte.weight)  # it trained
    assert tuned.config.vocab_size == imported.config.vocab_size == 640

    result = sample(SampleConfig(checkpoint=str(sft), tokenizer_dir=str(llada), prompt="What does `ls` do?",
                                 gen_length=8, block_length=8, steps=8))
    assert isinstance(result["completion"], str)

    exported = tmp_path / "sft-hf"
    convert(ConvertConfig(direction="to_hf", input=str(sft), output=str(exported), tokenizer_dir=str(llada)))
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(exported, trust_remote_code=False)
    messages = [{"role": "user", "content": "What does the `ls` command do?"}]
    assert reference.apply_chat_template(messages, add_generation_prompt=True, return_dict=False) == tokenizer.chat_prompt(messages)
    assert reference.encode("`ls`: list directory contents.", add_special_tokens=False) == tokenizer.encode("`ls`: list directory contents.")
    config = json.loads((exported / "config.json").read_text())
    assert (config["mask_token_id"], config["vocab_size"], config["embedding_size"]) == (tokenizer.mask_id, 601, 640)
    reloaded = load_hf_checkpoint(exported, dtype=torch.float32)
    ids = torch.randint(0, tokenizer.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(reloaded(ids), tuned(ids))
