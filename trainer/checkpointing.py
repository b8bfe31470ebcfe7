"""Training checkpoints of a DeepSpeed engine: saved by every rank, made visible by one, resumed exactly.

The folder layout and its completeness checks are formats/checkpoint.py's. Every rank writes its own
ZeRO partition through DeepSpeed's `save_checkpoint` into the temporary folder; after a barrier rank 0
adds the trainer state and the file list, renames the folder into place and moves `latest` on. A kill
at any moment leaves either the previous checkpoint or the new one, never a half of one that a resume
would take.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from common.config import ConfigError
from formats import checkpoint as layout

DEEPSPEED_TAG = "deepspeed"
"""The sub-folder DeepSpeed writes inside a step folder (its `tag`)."""


def save_checkpoint(engine, output_dir: str | Path, step: int, state: dict[str, Any], *, rank: int, keep: int) -> Path:
    """Every rank calls this at the same step; returns the published folder."""
    import torch.distributed as dist

    tmp = layout.temporary_dir(output_dir, step)
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)  # left by a run killed while saving this step
        tmp.mkdir(parents=True)
    dist.barrier()
    engine.save_checkpoint(str(tmp), tag=DEEPSPEED_TAG, save_latest=False)
    dist.barrier()
    final = layout.checkpoint_root(output_dir) / layout.step_name(step)
    if rank == 0:
        layout.publish_checkpoint(output_dir, step, state)
        layout.prune_checkpoints(output_dir, keep)
    dist.barrier()
    return final


def load_checkpoint(engine, folder: str | Path) -> dict[str, Any]:
    """Restore model, optimizer and scheduler from a step folder; returns its trainer state."""
    path, _ = engine.load_checkpoint(str(folder), tag=DEEPSPEED_TAG, load_optimizer_states=True, load_lr_scheduler_states=True)
    if path is None:
        raise ConfigError(f"DeepSpeed found no checkpoint in {folder}/{DEEPSPEED_TAG}")
    return layout.read_trainer_state(folder)


def resume_point(output_dir: str | Path, given: str | None, *, warn=print) -> Path | None:
    """Where a worker continues from: the newer of the driver's choice and output_dir's newest checkpoint.

    The driver chooses once per job (resume=auto, never or a folder); when Ray Train restarts failed
    workers inside the job, output_dir then holds newer checkpoints of this very run."""
    newest = layout.newest_checkpoint(output_dir, warn=warn)
    candidates = [Path(p) for p in (given, newest) if p]
    if not candidates:
        return None
    return max(candidates, key=lambda folder: layout.read_trainer_state(folder)["step"])


def choose_resume(config, fingerprint: dict[str, Any], *, warn=print) -> tuple[Path | None, dict | None]:
    """The driver's choice, before any worker starts: (checkpoint folder, its trainer state) or (None, None).

    resume=never deletes output_dir's training checkpoints; a checkpoint whose fingerprint differs is an
    error naming the keys."""
    output_dir = Path(config.output_dir)
    if config.resume == "never":
        shutil.rmtree(layout.checkpoint_root(output_dir), ignore_errors=True)
        return None, None
    if config.resume == "auto":
        folder = layout.newest_checkpoint(output_dir, warn=warn)
        if folder is None:
            return None, None
    else:
        folder = Path(config.resume)
        problem = layout.checkpoint_problem(folder) if folder.is_dir() else "no such folder"
        if problem:
            raise ConfigError(f"resume={config.resume}: cannot resume from it: {problem}")
    state = layout.read_trainer_state(folder)
    differences = layout.fingerprint_differences(state["fingerprint"], fingerprint)
    if differences:
        raise ConfigError(
            f"checkpoint {folder} was made by a run with other settings ({'; '.join(differences)}); "
            f"set resume=never to start afresh, or another output_dir"
        )
    return folder, state
