import json

import torch

from common.cli import run_job
from tests.trainer.hf import assert_identical_logits, gqa_config, random_model
from trainer.checkpoint import load_model, save_model
from trainer.convert import ConvertConfig, main
from trainer.hf.load import load_hf_checkpoint

def test_cli_round_trip_through_our_checkpoint_folder(tmp_path, capsys):
    ours, hf, back = tmp_path / "ours", tmp_path / "hf", tmp_path / "back"
    model = random_model(gqa_config()).to(torch.bfloat16)  # as the training job saves it (16-bit)
    save_model(model, ours)

    argv = ["direction=to_hf", f"input={ours}", f"output={hf}", "max_shard_bytes=20000"]
    assert run_job(ConvertConfig, main, argv) == 0
    assert (hf / "model.safetensors.index.json").is_file() and (hf / "convert_config.json").is_file()
    assert json.loads((hf / "config.json").read_text())["torch_dtype"] == "bfloat16"  # dtype=auto keeps it
    assert run_job(ConvertConfig, main, ["direction=from_hf", f"input={hf}", f"output={back}"]) == 0
    assert {p.name for p in back.iterdir()} == {"model.pt", "model_config.json", "config.json", "complete.json"}

    assert_identical_logits(model, load_model(back, dtype=torch.bfloat16))
    assert_identical_logits(model.float(), load_model(back))
    assert_identical_logits(model.float(), load_hf_checkpoint(hf, dtype=torch.float32))

    # Bad config values are exit status 2 with a message, not a traceback.
    assert run_job(ConvertConfig, main, ["direction=sideways"]) == 2
    assert run_job(ConvertConfig, main, [f"input={ours}", f"output={ours}"]) == 2
    assert "output must differ from input" in capsys.readouterr().err
