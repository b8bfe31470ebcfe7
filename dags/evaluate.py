"""evaluate: lm-evaluation-harness tasks on a checkpoint of a build (the sft or pretrain folder under work_dir,
or any checkpoint folder, a Hugging Face LLaDA one included), logged as a child of its training run."""

from __future__ import annotations

from airflow.sdk import Param, dag

from formats.layout import folder
from orchestration.airflow_params import CHAINED_FIELDS, job_overrides, params_for, work_dir_param
from orchestration.mlflow_lineage import dag_callbacks
from orchestration.ray_job_operator import ray_job
from trainer.config import EvaluateConfig

STAGES = ("sft", "pretrain")


def evaluation_overrides(params) -> dict:
    """The evaluation job's overrides: the form's settings, and the checkpoint it names."""
    overrides = job_overrides("trainer.evaluate", EvaluateConfig, params)
    if params["checkpoint_dir"]:
        overrides |= {"checkpoint": params["checkpoint_dir"], "tokenizer_dir": ""}
    elif params["stage"] != "sft":
        overrides["checkpoint"] = folder(params["stage"], params["work_dir"])
    return overrides


@dag(
    dag_id="evaluate",
    schedule=None,
    catchup=False,
    max_active_runs=1,  # its runs share work_dir's folders (each job also locks its output folder)
    tags=["train", "evaluate"],
    doc_md=__doc__,
    **dag_callbacks(),  # the DAG run's MLflow parent run ends with it
    params={
        "work_dir": work_dir_param(["trainer.evaluate"]),
        "stage": Param("sft", type="string", enum=list(STAGES),
                       description="Which checkpoint of the build under work_dir to evaluate: sft/ or pretrain/."),
        "checkpoint_dir": Param("", type="string", description="Evaluate this checkpoint folder instead (ours, or a "
                                "Hugging Face LLaDA folder with its tokenizer); empty: the stage's folder under work_dir."),
        **params_for(EvaluateConfig, exclude=CHAINED_FIELDS),
    },
)
def evaluate():
    ray_job("trainer.evaluate", overrides=evaluation_overrides, task_id="run_tasks")


evaluate()
