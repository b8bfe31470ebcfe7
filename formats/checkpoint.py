"""Checkpoint folders: the final export every stage reads, and the training checkpoints a run resumes from.

A final export (a training job's output_dir, `trainer.convert`'s output):

    model.pt            the consolidated state dict (torch.save), parameter names as trainer/model.py's
    model_config.json   the ModelConfig's fields: enough to rebuild the model before loading the weights
    config.json         the job config that made it
    train_metrics.json  first and final loss, steps (training jobs)
    tokenizer_ref.json  the sha256 and vocabulary size of the tokenizer it was trained with (training jobs):
                        SFT, sampling and continued pretraining refuse another (`tokenizer_mismatch`)
    complete.json       the files above with their sizes; written last: `weights_and_config` requires it
    metrics.jsonl       one line per logged step (training jobs; each step once, also after a resume)
    stop_requested      present while the driver asks the workers to checkpoint and stop (SIGTERM)
    run.json            the MLflow run id and experiment, the losses (training jobs; the driver writes it)

Training checkpoints, under output_dir/checkpoints/ (torchtitan's and DeepSpeed's practice: the whole
state, so a resumed run continues exactly):

    step-00000100/      DeepSpeed's save_checkpoint (model, optimizer, scheduler, every ZeRO partition)
                        plus trainer_state.json (step, tokens, loader position, MLflow run id, fingerprint)
                        and files.json (every file and its size: written last, before the rename)
    latest              the name of the newest complete checkpoint, written after its rename

A checkpoint is written under a temporary name (.step-NNNNNNNN.tmp) and renamed when complete, so a
kill while saving leaves the previous one usable; a folder whose files disagree with its files.json
(truncated, or missing a file) is skipped with a warning.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from common.config import ConfigError
from common.files import write_atomically, write_json

WEIGHTS = "model.pt"
MODEL_CONFIG = "model_config.json"
CONFIG = "config.json"
TRAIN_METRICS = "train_metrics.json"
COMPLETE = "complete.json"
METRICS_LOG = "metrics.jsonl"
RUN = "run.json"
SAMPLES = "samples.jsonl"
"""What `trainer.sample` appends to, beside the checkpoint it sampled."""
EVAL_RESULTS = "eval_results.json"
"""lm-eval's results of the newest `trainer.evaluate` run, beside the checkpoint it scored."""
EVAL_SUMMARY = "eval_summary.json"
"""That run's metrics, the untrained baseline's, chance, and its MLflow run id."""

TOKENIZER_REF = "tokenizer_ref.json"
"""{"sha256", "vocab_size"} of the tokenizer an export was trained with."""

STOP_REQUEST = "stop_requested"
"""Written by a training job's driver on SIGTERM: the workers checkpoint at their next sync point and end."""

CHECKPOINTS = "checkpoints"
LATEST = "latest"
TRAINER_STATE = "trainer_state.json"
FILE_LIST = "files.json"


def write_model_config(model_config: Any, folder: str | Path) -> None:
    """model_config.json from a ModelConfig dataclass (written atomically)."""
    write_json(Path(folder) / MODEL_CONFIG, dataclasses.asdict(model_config), sort_keys=True)


def read_model_config(folder: str | Path) -> dict[str, Any]:
    """The ModelConfig fields of a checkpoint folder; raises ConfigError naming a missing file."""
    weights_and_config(folder)
    return json.loads((Path(folder) / MODEL_CONFIG).read_text(encoding="utf-8"))


def write_tokenizer_ref(folder: str | Path, sha256: str, vocab_size: int) -> None:
    write_json(Path(folder) / TOKENIZER_REF, {"sha256": sha256, "vocab_size": vocab_size})


def tokenizer_mismatch(folder: str | Path, sha256: str | None, vocab_size: int) -> str | None:
    """Why the tokenizer (sha256, vocab_size) does not go with the export in `folder`, or None. An export
    without tokenizer_ref.json (imported, or older) is checked on its model's vocabulary alone."""
    folder = Path(folder)
    model_vocab = read_model_config(folder)["vocab_size"]
    if vocab_size > model_vocab:
        return f"the tokenizer has {vocab_size} ids, the model in {folder} only {model_vocab} embedding rows"
    ref = folder / TOKENIZER_REF
    if sha256 is not None and ref.is_file():
        trained = json.loads(ref.read_text(encoding="utf-8"))
        if trained["sha256"] != sha256:
            return (f"{folder} was trained with the tokenizer of sha256 {trained['sha256']} ({trained['vocab_size']} ids), "
                    f"not this one, of sha256 {sha256} ({vocab_size} ids)")
    return None


def mark_complete(folder: str | Path, names: Iterable[str] = (WEIGHTS, MODEL_CONFIG)) -> None:
    """complete.json: the export's files and their sizes. Written last: it says the export is whole."""
    folder = Path(folder)
    write_json(folder / COMPLETE, {"files": {name: (folder / name).stat().st_size for name in names}})


def weights_and_config(folder: str | Path) -> tuple[Path, Path]:
    """(model.pt, model_config.json) of a complete export; raises ConfigError naming what is missing."""
    folder = Path(folder)
    weights, config_file, marker = folder / WEIGHTS, folder / MODEL_CONFIG, folder / COMPLETE
    for path in (weights, config_file):
        if not path.is_file():
            raise ConfigError(f"checkpoint file missing: {path} (is {folder} a training output_dir?)")
    if not marker.is_file():
        raise ConfigError(
            f"{folder} has no {COMPLETE}: its export did not finish (the job was stopped while writing it); "
            f"rerun the job, which resumes from its newest training checkpoint"
        )
    problem = _disagreement(folder, json.loads(marker.read_text(encoding="utf-8"))["files"])
    if problem:
        raise ConfigError(f"{folder}: {problem}; rerun the job that wrote it")
    return weights, config_file


def read_metrics_log(folder: str | Path) -> list[dict[str, Any]]:
    """The lines of a training output's metrics.jsonl (empty when there is none)."""
    path = Path(folder) / METRICS_LOG
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- training checkpoints ---------------------------------------------------------------------------


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / CHECKPOINTS


def temporary_dir(output_dir: str | Path, step: int) -> Path:
    """Where step `step`'s checkpoint is written before it is renamed into place."""
    return checkpoint_root(output_dir) / f".{step_name(step)}.tmp"


def _disagreement(folder: Path, sizes: dict[str, int]) -> str | None:
    for name, size in sizes.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} were written"
    return None


def publish_checkpoint(output_dir: str | Path, step: int, state: dict[str, Any]) -> Path:
    """Finish the temporary folder of `step` (trainer_state.json, then files.json), rename it into place,
    then point `latest` at it. Called by one process, after every rank has written its part."""
    tmp, final = temporary_dir(output_dir, step), checkpoint_root(output_dir) / step_name(step)
    write_json(tmp / TRAINER_STATE, state)
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    write_json(tmp / FILE_LIST, {str(p.relative_to(tmp)): p.stat().st_size for p in files})
    if final.exists():  # the same step saved by a run that was killed before moving `latest` on
        shutil.rmtree(final)
    os.replace(tmp, final)
    write_atomically(checkpoint_root(output_dir) / LATEST, final.name + "\n")
    return final


def checkpoint_problem(folder: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from (None: it can)."""
    if not (folder / FILE_LIST).is_file():
        return f"{FILE_LIST} is missing"
    problem = _disagreement(folder, json.loads((folder / FILE_LIST).read_text(encoding="utf-8")))
    if problem is None and not (folder / TRAINER_STATE).is_file():
        return f"{TRAINER_STATE} is missing"
    return problem


def newest_checkpoint(output_dir: str | Path, *, warn: Callable[[str], None] = print) -> Path | None:
    """The newest complete checkpoint under output_dir/checkpoints; broken ones are skipped with a warning."""
    root = checkpoint_root(output_dir)
    for folder in sorted(root.glob("step-*"), reverse=True):
        problem = checkpoint_problem(folder)
        if problem is None:
            return folder
        warn(f"warning: skipping checkpoint {folder}: {problem}")
    return None


def read_trainer_state(folder: str | Path) -> dict[str, Any]:
    return json.loads((Path(folder) / TRAINER_STATE).read_text(encoding="utf-8"))


def prune_checkpoints(output_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` checkpoints (and leftover temporary folders); returns what went."""
    root = checkpoint_root(output_dir)
    removed = sorted(root.glob("step-*"))[:-keep] if keep > 0 else []
    removed += [p for p in root.glob(".step-*.tmp")]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def fingerprint_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The keys of a run's fingerprint whose values differ between a checkpoint and the run resuming it."""
    return [
        f"{key}: checkpoint {saved.get(key)!r}, now {current.get(key)!r}"
        for key in sorted(set(saved) | set(current))
        if saved.get(key) != current.get(key)
    ]
