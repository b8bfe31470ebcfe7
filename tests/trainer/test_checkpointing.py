"""The driver's resume decision and the metrics file, without starting a worker (the exact resume itself:
tests/integration/test_training_resume.py)."""

from __future__ import annotations

import json

import pytest

from common.config import ConfigError
from formats import checkpoint as layout
from trainer.callbacks import MetricsFile
from trainer.checkpointing import choose_resume
from trainer.config import PretrainConfig
from trainer.loop import TrainState, is_sync_step, masking_generator

FINGERPRINT = {"model": "tiny", "seq_len": 32, "tokenizer_sha256": "abc"}


def checkpoint(output_dir, step: int, fingerprint=FINGERPRINT) -> None:
    tmp = layout.temporary_dir(output_dir, step)
    tmp.mkdir(parents=True)
    (tmp / "weights").write_bytes(b"x")
    layout.publish_checkpoint(output_dir, step, {"step": step, "fingerprint": fingerprint, "mlflow_run_id": "run1"})


def test_auto_takes_the_newest_and_its_run(tmp_path):
    checkpoint(tmp_path, 2)
    checkpoint(tmp_path, 4)
    folder, state = choose_resume(PretrainConfig(output_dir=str(tmp_path)), FINGERPRINT)
    assert folder.name == "step-00000004" and state["mlflow_run_id"] == "run1"
    assert choose_resume(PretrainConfig(output_dir=str(tmp_path / "fresh")), FINGERPRINT) == (None, None)


def test_a_checkpoint_of_other_settings_is_refused_naming_the_keys(tmp_path):
    checkpoint(tmp_path, 2)
    with pytest.raises(ConfigError, match=r"seq_len: checkpoint 32, now 64.*resume=never"):
        choose_resume(PretrainConfig(output_dir=str(tmp_path)), {**FINGERPRINT, "seq_len": 64})


def test_never_starts_afresh_and_a_named_folder_must_be_whole(tmp_path):
    checkpoint(tmp_path, 2)
    assert choose_resume(PretrainConfig(output_dir=str(tmp_path), resume="never"), FINGERPRINT) == (None, None)
    assert not layout.checkpoint_root(tmp_path).exists()
    with pytest.raises(ConfigError, match="cannot resume from it: no such folder"):
        choose_resume(PretrainConfig(output_dir=str(tmp_path), resume=str(tmp_path / "nope")), FINGERPRINT)


def test_a_resumed_metrics_file_keeps_each_step_once(tmp_path):
    config = PretrainConfig(output_dir=str(tmp_path), steps=6, log_every=1)
    metrics = MetricsFile(config)
    metrics.on_start(TrainState(), resumed=False)
    for step in range(1, 6):
        metrics.on_sync(TrainState(step=step, tokens=10 * step), {"loss": 1.0 / step, "lr": 0.1}, engine=None, stop=False)
    metrics.on_start(TrainState(step=3), resumed=True)  # the checkpoint was at step 3: steps 4 and 5 run again
    assert [line["step"] for line in layout.read_metrics_log(tmp_path)] == [1, 2, 3]
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1]) == {"step": 3, "loss": 1 / 3, "lr": 0.1, "tokens": 30}


def test_sync_steps_and_the_noise_of_a_step_are_fixed():
    config = PretrainConfig(steps=10, log_every=4, checkpoint_every=3)
    assert [s for s in range(1, 11) if is_sync_step(config, s)] == [1, 3, 4, 6, 8, 9, 10]
    first, again = masking_generator(0, 5, 1, 0), masking_generator(0, 5, 1, 0)
    import torch

    assert torch.equal(torch.rand(4, generator=first), torch.rand(4, generator=again))
    assert not torch.equal(torch.rand(4, generator=masking_generator(0, 5, 1, 1)), torch.rand(4, generator=masking_generator(0, 5, 1, 0)))
