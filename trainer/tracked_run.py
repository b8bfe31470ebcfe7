"""The driver side of a training job: resume or start, an MLflow run around the Ray Train launch, the stop
request on SIGTERM, and the link from the run to its checkpoint."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common.config import to_dict
from common.files import write_json
from common.tracking import mlflow_run, run_label, tracking_uri
from formats.checkpoint import CONFIG, MODEL_CONFIG, RUN, STOP_REQUEST, TRAIN_METRICS, newest_checkpoint, read_trainer_state
from trainer import distributed


class StoppedError(RuntimeError):
    """The job was asked to stop (SIGTERM) and its workers checkpointed; rerunning it resumes."""


@contextlib.contextmanager
def stop_on_sigterm(output_dir: Path) -> Iterator[Path]:
    """While the block runs, SIGTERM (Ray's stop_job, a preemption) writes the stop request instead of
    killing the driver: the workers save a checkpoint at their next sync point and end."""
    request = output_dir / STOP_REQUEST
    request.unlink(missing_ok=True)

    def ask_to_stop(signum, frame) -> None:
        print(f"SIGTERM: asking the workers to checkpoint and stop ({request})", flush=True)
        request.touch()

    previous = signal.signal(signal.SIGTERM, ask_to_stop)
    try:
        yield request
    finally:
        signal.signal(signal.SIGTERM, previous)


def record_lineage(mlflow, config, inputs: dict[str, list[Path]]) -> None:
    """The new run's links: the datasets it reads (a folder of a corpus version named `<corpus>/<folder>`,
    its version an input tag), and the checkpoint (and its run) it starts from."""
    from common.tracking import log_folder_dataset
    from formats.corpus_versions import version_of

    for context, folders in inputs.items():
        for folder in folders:
            corpus, version = version_of(folder) or ("", "")
            log_folder_dataset(mlflow, folder, context=context, name=f"{corpus}/{Path(folder).name}" if corpus else "",
                               version=version)
    if getattr(config, "corpus", ""):
        mlflow.set_tag("llada.corpus", config.corpus)
    init = getattr(config, "init_checkpoint", "")
    if init:
        mlflow.set_tag("llada.init_checkpoint", str(init))
        summary = Path(init) / RUN
        if summary.is_file():  # ours: the run that trained it
            mlflow.set_tag("llada.init_run_id", json.loads(summary.read_text())["run_id"])


def train_tracked(config, worker_fn: Callable[[dict], None], *, run_name: str, fingerprint: dict[str, Any],
                  extra_params: dict | None = None, inputs: dict[str, list[Path]] | None = None,
                  tokenizer_dir: str | Path | None = None) -> dict:
    """Launch `worker_fn` under Ray Train inside an MLflow run (the checkpoint's own run when resuming);
    returns the final metrics and the run id. A new run records `inputs` (context -> folders with a
    manifest) as its MLflow datasets, and the run of its init_checkpoint, if any, as a tag. The finished
    checkpoint (its configs and the `tokenizer_dir` folder as artifacts) is registered as a new version of
    the model `llada-<run_name>` (trainer/registry.py)."""
    from trainer.checkpointing import choose_resume

    config = dataclasses.replace(config, output_dir=str(Path(config.output_dir).resolve()))
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir and Path(tokenizer_dir).resolve() != output_dir:
        # The export carries the tokenizer it is trained with, as a Hugging Face folder does: SFT, sampling
        # and evaluation of it need no other folder (their tokenizer_dir defaults to the checkpoint's own).
        from tokenizer.encode import Tokenizer

        Tokenizer.load(tokenizer_dir).save(output_dir)
    resume_from, state = choose_resume(config, fingerprint)  # a wrong checkpoint fails here, before any worker
    if resume_from is not None:
        print(f"[{run_name}] resuming from {resume_from} (step {state['step']})", flush=True)
    run_id = state["mlflow_run_id"] if state else None
    # Ray's driver installs its own SIGTERM handler (which aborts the process): connect first, so that
    # stop_on_sigterm's handler replaces it while the workers run.
    from common.ray_runtime import init_ray

    init_ray()
    config = dataclasses.replace(config, cpus_per_worker=distributed.cpus_per_worker(config))
    params = {**to_dict(config), **(extra_params or {})}
    label = run_label(run_name, config.model, f"{config.num_workers}x", f"zero{config.zero_stage}", config.precision,
                      f"{config.steps} steps", f"lr {config.lr:g}")
    with mlflow_run(config.mlflow_experiment, label, params, run_id=run_id, system_metrics=True) as run, \
            stop_on_sigterm(output_dir) as stop:
        import mlflow

        if run_id is None:
            record_lineage(mlflow, config, inputs or {})
        loop_config = {
            "config": to_dict(config),
            "mlflow_run_id": run.info.run_id,
            "tracking_uri": tracking_uri(),
            "resume_from": str(resume_from) if resume_from else None,
        }
        distributed.launch(worker_fn, loop_config, config, name=f"{run_name}-{run.info.run_id[:8]}")
        if stop.exists():
            stop.unlink()
            mlflow.end_run(status="KILLED")
            saved = newest_checkpoint(output_dir)
            step = read_trainer_state(saved)["step"] if saved else 0
            raise StoppedError(f"stopped on request at step {step}; checkpoint {saved}: rerun the same command to resume")
        metrics = json.loads((output_dir / TRAIN_METRICS).read_text())
        mlflow.set_tag("checkpoint", output_dir.as_uri())
        mlflow.log_artifact(str(output_dir / MODEL_CONFIG), artifact_path="checkpoint")
        mlflow.log_artifact(str(output_dir / CONFIG), artifact_path="checkpoint")
        summary = {
            "run_id": run.info.run_id,
            "experiment": config.mlflow_experiment,
            "checkpoint": str(output_dir),
            "first_loss": metrics["first_loss"],
            "final_loss": metrics["final_loss"],
            "steps": metrics["steps"],
        }
        if "val_loss" in metrics:
            summary["val_loss"] = metrics["val_loss"]
        from trainer.registry import log_tokenizer, register_checkpoint

        log_tokenizer(mlflow, tokenizer_dir)
        try:
            summary["model_version"] = register_checkpoint(mlflow, f"llada-{run_name}", summary)
        except Exception as e:  # noqa: BLE001 - the checkpoint is on disk and its run has it; registering can be redone
            print(f"warning: could not register {output_dir} as a version of llada-{run_name}: {e}", flush=True)
        write_json(output_dir / RUN, summary)
    validation = f", val_loss {summary['val_loss']:.4f}" if "val_loss" in summary else ""
    print(f"[{run_name}] loss {summary['first_loss']:.4f} -> {summary['final_loss']:.4f}{validation}; "
          f"checkpoint {output_dir}; mlflow run {summary['run_id']}", flush=True)
    return summary
