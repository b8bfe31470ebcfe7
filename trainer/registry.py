"""A finished training run's checkpoint in MLflow's Model Registry: a new version of `llada-pretrain` or
`llada-sft`, its source the run's `checkpoint` artifacts (the model and training configs, the tokenizer
folder), tagged with its checkpoint path, step count and losses. The alias `best` moves to the version of lowest
val_loss (runs without one, SFT's: the newest). MLflow reserves the name `latest` for itself: the URI
`models:/llada-pretrain/latest` is always the newest version, with no alias to move."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def log_tokenizer(mlflow, tokenizer_dir: str | Path | None) -> None:
    """The tokenizer's files (ours, or a Hugging Face folder's: not the weights beside them) under
    checkpoint/tokenizer, beside the configs."""
    from tokenizer.hf_tokenizer import HF_FILES
    from tokenizer.sentencepiece_tokenizer import MODEL_FILE, SPECIALS_FILE

    if not tokenizer_dir:
        return
    for name in (MODEL_FILE, SPECIALS_FILE, *HF_FILES):
        if (Path(tokenizer_dir) / name).is_file():
            mlflow.log_artifact(str(Path(tokenizer_dir) / name), artifact_path="checkpoint/tokenizer")


def register_checkpoint(mlflow, name: str, summary: dict[str, Any]) -> str:
    """Register the active run's checkpoint artifacts as a new version of `name`; returns the version."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        client.create_registered_model(name, description="LLaDA-style masked diffusion checkpoints trained by this platform")
    except MlflowException as e:
        if "already exists" not in str(e).lower() and "RESOURCE_ALREADY_EXISTS" not in str(e):
            raise
    tags = {"checkpoint": summary["checkpoint"], "steps": str(summary["steps"]), "final_loss": str(summary["final_loss"])}
    if "val_loss" in summary:
        tags["val_loss"] = str(summary["val_loss"])
    version = client.create_model_version(name, source=mlflow.get_artifact_uri("checkpoint"), run_id=summary["run_id"], tags=tags)
    scored = [(float(v.tags["val_loss"]), int(v.version)) for v in client.search_model_versions(f"name = '{name}'")
              if "val_loss" in v.tags]
    best = str(min(scored)[1]) if scored else version.version
    client.set_registered_model_alias(name, "best", best)
    return version.version
