"""evaluate: lm-evaluation-harness tasks on a checkpoint of a build (the sft or pretrain folder under work_dir,
or any checkpoint folder, a Hugging Face LLaDA one included), logged as a child of its training run."""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from orchestration.airflow_params import CHAINED_FIELDS, job_overrides, params_for, work_dir_param
from trainer.config import EvaluateConfig

STAGES = ("sft", "pretrain")


@dag(
    dag_id="evaluate",
    schedule=None,
    catchup=False,
    tags=["train", "evaluate"],
    doc_md=__doc__,
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
    @task
    def run_tasks(params=None) -> dict:
        from orchestration.ray_jobs import run_ray_job
        from formats.layout import folder

        overrides = job_overrides("trainer.evaluate", EvaluateConfig, params)
        if params["checkpoint_dir"]:
            overrides |= {"checkpoint": params["checkpoint_dir"], "tokenizer_dir": ""}
        elif params["stage"] != "sft":
            overrides["checkpoint"] = folder(params["stage"], params["work_dir"])
        return run_ray_job("trainer.evaluate", overrides)

    run_tasks()


evaluate()
