"""Training data at scale: token-shard folders streamed as deterministic, elastic, resumable global batches.

    mixture.py  mixture sources (folder or folder:source) -> row ranges; the check before workers start;
                the schedule that picks each global position's source (Megatron's blending rule)
    order.py    one source's draw order: seeded block shuffle, epoch after epoch (MosaicML Streaming's)
    loader.py   SequenceLoader (next_step per rank, state_dict / load_state_dict), RankData (one rank's
                view, for the training loop), validation_batches
"""

from trainer.data.loader import MicroBatch, RankData, SequenceLoader, validation_batches
from trainer.data.mixture import as_mixture, check_mixture, mixture_folders, resolve_mixture

__all__ = ["MicroBatch", "RankData", "SequenceLoader", "as_mixture", "check_mixture", "mixture_folders", "resolve_mixture", "validation_batches"]
