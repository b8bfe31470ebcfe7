"""Parallelism applied from outside the model: Ray Train starts the workers, DeepSpeed drives each one.

The only module that imports deepspeed. On CPU the workers talk over gloo (DeepSpeed's CPU
accelerator), on GPUs over NCCL; the model code is the same single-device module either way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.paths import state_dir
from formats.checkpoint import WEIGHTS
from trainer.optim import build_optimizer


def deepspeed_config(config) -> dict[str, Any]:
    """DeepSpeed's JSON config from our TrainConfig."""
    return {
        "train_micro_batch_size_per_gpu": config.micro_batch_size,
        "gradient_accumulation_steps": config.grad_accum_steps,
        "gradient_clipping": config.grad_clip,
        "zero_optimization": {"stage": config.zero_stage, "stage3_gather_16bit_weights_on_model_save": True},
        "bf16": {"enabled": config.precision == "bf16"},
        # We pass torch's AdamW: DeepSpeed's own would JIT-compile a CPU Adam op first.
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 1_000_000_000,
        "wall_clock_breakdown": False,
    }


def _configure_process(use_gpu: bool) -> None:
    if not use_gpu:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    # DeepSpeed JIT-builds a small op (shm_comm) on CPU, once per machine: torch keeps the build in its
    # cache (~/.cache/torch_extensions, or $TORCH_EXTENSIONS_DIR), shared by every checkout.


def build_engine(model, config, lr_lambda: Callable[[int], float]):
    """Wrap `model` in a DeepSpeed engine with AdamW (trainer/optim.py) and a LambdaLR schedule (stepped per
    optimizer step)."""
    _configure_process(config.use_gpu)
    import deepspeed
    import torch

    optimizer = build_optimizer(model, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=scheduler, config=deepspeed_config(config)
    )
    return engine


def save_weights(engine, output_dir: str | Path, filename: str = WEIGHTS) -> Path:
    """Consolidated weights (gathered across ZeRO-3 ranks); every rank must call it."""
    engine.save_16bit_model(str(output_dir), filename)
    return Path(output_dir) / filename


def cpus_per_worker(config) -> int:
    """config.cpus_per_worker, or its default: on CPU the cluster's CPUs over the workers, with GPUs 1."""
    if config.cpus_per_worker is not None:
        return config.cpus_per_worker
    if config.use_gpu:
        return 1
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)) // config.num_workers)


def set_threads(config) -> None:
    """Inside a worker: torch computes on the cores Ray reserved for it (Ray's OMP_NUM_THREADS=1 default
    would leave one worker on a 2-core machine using one core)."""
    import torch

    if config.cpus_per_worker:
        torch.set_num_threads(config.cpus_per_worker)


def launch(worker_fn: Callable[[dict], None], loop_config: dict, config, *, name: str) -> None:
    """Run `worker_fn(loop_config)` on `config.num_workers` Ray Train workers; raise if any fails."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from common.ray_runtime import init_ray

    init_ray()
    storage = os.environ.get("LLADA_TRAIN_STORAGE") or str(state_dir() / "ray_train")
    trainer = TorchTrainer(
        train_loop_per_worker=worker_fn,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(num_workers=config.num_workers, use_gpu=config.use_gpu,
                                     resources_per_worker={"CPU": cpus_per_worker(config), **({"GPU": 1} if config.use_gpu else {})}),
        # A worker that dies restarts the training function on every worker, up to max_failures times;
        # the loop then resumes from the newest checkpoint in output_dir (trainer/checkpointing.py).
        run_config=RunConfig(name=name, storage_path=storage, failure_config=FailureConfig(max_failures=config.max_failures)),
    )
    result = trainer.fit()
    if result.error:
        raise result.error


def world() -> tuple[int, int]:
    """(rank, world size) of this Ray Train worker."""
    import ray.train

    context = ray.train.get_context()
    return context.get_world_rank(), context.get_world_size()


def all_reduce_sum(values, device):
    """Element-wise sum of a float64 CPU tensor over every rank (one collective); returned on the CPU."""
    import torch.distributed as dist

    reduced = values.to(device)
    dist.all_reduce(reduced)
    return reduced.cpu()
