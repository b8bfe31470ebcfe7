"""sft: supervised fine-tuning from the pretrain checkpoint, then a sample from the reverse process."""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from common.airflow_params import CHAINED_FIELDS, overrides_from, params_for
from trainer.config import SampleConfig, SFTConfig


@dag(
    dag_id="sft",
    schedule=None,
    catchup=False,
    tags=["train"],
    doc_md=__doc__,
    params={
        "work_dir": Param("out", type="string", description="Reads pretrain/ and tokenizer/, writes sft/ under this folder."),
        **params_for(SFTConfig, exclude=CHAINED_FIELDS),
        **params_for(SampleConfig, prefix="sample.", exclude=CHAINED_FIELDS),
    },
)
def sft():
    @task
    def finetune(params=None) -> dict:
        from common.ray_jobs import run_ray_job

        work = params["work_dir"]
        overrides = overrides_from(params, SFTConfig, exclude=CHAINED_FIELDS)
        return run_ray_job(
            "trainer.sft",
            {**overrides, "init_checkpoint": f"{work}/pretrain", "tokenizer_dir": f"{work}/tokenizer", "output_dir": f"{work}/sft"},
        )

    @task
    def sample(finetuned: dict, params=None) -> dict:
        from common.ray_jobs import run_ray_job

        work = params["work_dir"]
        overrides = overrides_from(params, SampleConfig, prefix="sample.", exclude=CHAINED_FIELDS)
        return run_ray_job("trainer.sample", {**overrides, "checkpoint": f"{work}/sft", "tokenizer_dir": f"{work}/tokenizer"})

    sample(finetune())


sft()
