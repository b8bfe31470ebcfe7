"""pretrain: masked diffusion pretraining on the token shards of corpus_build (Ray Train + DeepSpeed)."""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from common.airflow_params import CHAINED_FIELDS, overrides_from, params_for
from trainer.config import PretrainConfig


@dag(
    dag_id="pretrain",
    schedule=None,
    catchup=False,
    tags=["train"],
    doc_md=__doc__,
    params={
        "work_dir": Param("out", type="string", description="Reads tokens/ and writes pretrain/ under this folder."),
        **params_for(PretrainConfig, exclude=CHAINED_FIELDS),
    },
)
def pretrain():
    @task
    def train(params=None) -> dict:
        from common.ray_jobs import run_ray_job

        work = params["work_dir"]
        overrides = overrides_from(params, PretrainConfig, exclude=CHAINED_FIELDS)
        return run_ray_job("trainer.pretrain", {**overrides, "tokens_dir": f"{work}/tokens", "output_dir": f"{work}/pretrain"})

    train()


pretrain()
