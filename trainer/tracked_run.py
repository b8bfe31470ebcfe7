"""The driver side of a training job: an MLflow run around a Ray Train launch, and the checkpoint link."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from common.config import to_dict
from common.files import write_json
from formats.checkpoint import CONFIG, MODEL_CONFIG, RUN, TRAIN_METRICS
from common.tracking import mlflow_run, tracking_uri
from trainer import distributed


def train_tracked(config, worker_fn: Callable[[dict], None], *, run_name: str, extra_params: dict | None = None) -> dict:
    """Launch `worker_fn` under Ray Train inside an MLflow run; returns final metrics and the run id."""
    config = dataclasses.replace(config, output_dir=str(Path(config.output_dir).resolve()))
    params = {**to_dict(config), **(extra_params or {})}
    with mlflow_run(config.mlflow_experiment, run_name, params) as run:
        import mlflow

        loop_config = {"config": to_dict(config), "mlflow_run_id": run.info.run_id, "tracking_uri": tracking_uri()}
        distributed.launch(worker_fn, loop_config, config, name=f"{run_name}-{run.info.run_id[:8]}")
        checkpoint = Path(config.output_dir)
        metrics = json.loads((checkpoint / TRAIN_METRICS).read_text())
        mlflow.set_tag("checkpoint", checkpoint.as_uri())
        mlflow.log_artifact(str(checkpoint / MODEL_CONFIG), artifact_path="checkpoint")
        mlflow.log_artifact(str(checkpoint / CONFIG), artifact_path="checkpoint")
        summary = {
            "run_id": run.info.run_id,
            "experiment": config.mlflow_experiment,
            "checkpoint": str(checkpoint),
            "first_loss": metrics["first_loss"],
            "final_loss": metrics["final_loss"],
        }
        write_json(checkpoint / RUN, summary)
    print(f"[{run_name}] loss {summary['first_loss']:.4f} -> {summary['final_loss']:.4f}; "
          f"checkpoint {checkpoint}; mlflow run {summary['run_id']}", flush=True)
    return summary
