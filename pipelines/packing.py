"""Documents' token ids -> fixed-length training sequences: a pure function, no Ray.

LLaDA pretrains on fixed-length chunks of concatenated documents with EOS between documents and no
attention mask (docs/SPEC-diffusion.md, "Pretraining loss"). The files these rows go into are
formats/token_shards.py's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain

import numpy as np


def pack_sequences(
    docs_ids: Iterable[Sequence[int]], seq_len: int, eos_id: int, *, carry: Sequence[int] = ()
) -> tuple[np.ndarray, list[int]]:
    """Concatenate `carry` and every document followed by EOS, cut into rows of seq_len ids.

    Returns (rows, uint32 of shape (n, seq_len); leftover, the last len < seq_len ids): the caller
    passes the leftover as `carry` to the next call, or drops it at the end of a shard.
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    flat = np.fromiter(
        chain(carry, chain.from_iterable(chain(ids, (eos_id,)) for ids in docs_ids)), dtype=np.uint32
    )
    n = len(flat) // seq_len
    return flat[: n * seq_len].reshape(n, seq_len), flat[n * seq_len :].tolist()
