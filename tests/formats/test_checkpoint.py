"""The checkpoint folders: an export is read only when complete, training checkpoints appear whole or not at all."""

from __future__ import annotations

import pytest

from common.config import ConfigError
from formats import checkpoint as layout


def fake_checkpoint(output_dir, step: int, payload: bytes = b"weights") -> None:
    """What every rank leaves in the temporary folder, then published as the driver's rank 0 does."""
    tmp = layout.temporary_dir(output_dir, step)
    (tmp / "deepspeed").mkdir(parents=True)
    (tmp / "deepspeed" / "mp_rank_00_model_states.pt").write_bytes(payload)
    layout.publish_checkpoint(output_dir, step, {"step": step, "fingerprint": {"model": "tiny"}})


def test_a_published_checkpoint_is_renamed_into_place_and_latest_follows(tmp_path):
    fake_checkpoint(tmp_path, 4)
    folder = layout.checkpoint_root(tmp_path) / "step-00000004"
    assert folder.is_dir() and not layout.temporary_dir(tmp_path, 4).exists()
    assert (layout.checkpoint_root(tmp_path) / layout.LATEST).read_text() == "step-00000004\n"
    assert layout.checkpoint_problem(folder) is None
    assert layout.read_trainer_state(folder)["step"] == 4


def test_broken_checkpoints_are_skipped_with_a_warning(tmp_path):
    for step in (2, 4, 6):
        fake_checkpoint(tmp_path, step)
    root = layout.checkpoint_root(tmp_path)
    (root / "step-00000006" / "deepspeed" / "mp_rank_00_model_states.pt").write_bytes(b"wei")  # truncated
    (root / "step-00000004" / layout.FILE_LIST).unlink()  # never finished
    layout.temporary_dir(tmp_path, 8).mkdir()  # a save killed half-way
    warnings = []
    assert layout.newest_checkpoint(tmp_path, warn=warnings.append) == root / "step-00000002"
    assert "step-00000006: deepspeed/mp_rank_00_model_states.pt has 3 bytes, 7 were written" in warnings[0]
    assert "step-00000004: files.json is missing" in warnings[1]


def test_pruning_keeps_the_newest_and_drops_leftovers(tmp_path):
    for step in (2, 4, 6, 8):
        fake_checkpoint(tmp_path, step)
    layout.temporary_dir(tmp_path, 10).mkdir()
    layout.prune_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in layout.checkpoint_root(tmp_path).iterdir()) == ["latest", "step-00000006", "step-00000008"]


def test_fingerprint_differences_name_the_keys():
    assert layout.fingerprint_differences({"model": "tiny", "seq_len": 128}, {"model": "tiny", "seq_len": 128}) == []
    assert layout.fingerprint_differences({"model": "tiny", "seq_len": 128}, {"model": "llada_1b", "seq_len": 128}) == [
        "model: checkpoint 'tiny', now 'llada_1b'"
    ]


def test_an_export_without_its_completion_marker_is_refused(tmp_path):
    (tmp_path / layout.WEIGHTS).write_bytes(b"w")
    (tmp_path / layout.MODEL_CONFIG).write_text("{}")
    with pytest.raises(ConfigError, match="has no complete.json: its export did not finish"):
        layout.weights_and_config(tmp_path)
    layout.mark_complete(tmp_path)
    assert layout.weights_and_config(tmp_path) == (tmp_path / layout.WEIGHTS, tmp_path / layout.MODEL_CONFIG)
    (tmp_path / layout.WEIGHTS).write_bytes(b"changed")
    with pytest.raises(ConfigError, match="model.pt has 7 bytes, 1 were written"):
        layout.weights_and_config(tmp_path)
