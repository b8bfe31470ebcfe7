"""The validation loss: the pretraining objective on a fixed subset of held-out sequences, with fixed noise.

The subset is `trainer.data.validation_batches` of each data folder's validation/ split (documents held
out by a hash of their id, formats/token_shards.py). Each batch's timesteps and masks come from a
generator seeded by the batch's index alone, not by the run's seed, step or rank: every evaluation of
every run sees the same noisy inputs, so val_loss curves compare across runs and resumes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VALIDATION_SEED = 20250213
"""Seeds the validation noise (LLaDA's arXiv date); the same for every run by design."""


@dataclass
class ValidationSet:
    """The fixed validation batches, the same list on every rank."""

    batches: list[np.ndarray]
    """(<= micro_batch_size, seq_len) uint32 token batches."""
    mask_id: int
    eps: float

    @property
    def sequences(self) -> int:
        return sum(len(batch) for batch in self.batches)


def noise_generator(batch_index: int):
    import torch

    return torch.Generator().manual_seed(int(np.random.SeedSequence([VALIDATION_SEED, batch_index]).generate_state(1)[0]))


def validation_loss(engine, validation: ValidationSet, *, rank: int, world_size: int) -> float:
    """The masked-diffusion loss averaged over the validation sequences; every rank calls it and gets the value.

    Rank r evaluates batches r, r + W, ...; every rank runs the same number of forward passes (a rank
    out of batches repeats batch 0 with weight 0), as ZeRO-3's parameter gathering needs."""
    import torch

    from trainer import distributed
    from trainer.diffusion import forward_process, masked_diffusion_loss

    count = len(validation.batches)
    rounds = -(-count // world_size)
    totals = torch.zeros(2, dtype=torch.float64)  # sum of loss x sequences, sequences
    engine.eval()
    try:
        with torch.no_grad():
            for round_index in range(rounds):
                index = round_index * world_size + rank
                weight = 1.0 if index < count else 0.0
                index = index if index < count else 0
                input_ids = torch.from_numpy(validation.batches[index].astype(np.int64))
                noisy, masked, p_mask = forward_process(input_ids, validation.mask_id, eps=validation.eps,
                                                        generator=noise_generator(index))
                device = engine.device
                logits = engine(noisy.to(device))
                loss = masked_diffusion_loss(logits, input_ids.to(device), masked.to(device), p_mask.to(device))
                totals += torch.tensor([float(loss) * len(input_ids) * weight, len(input_ids) * weight], dtype=torch.float64)
    finally:
        engine.train()
    totals = distributed.all_reduce_sum(totals, engine.device)
    return float(totals[0] / totals[1])
