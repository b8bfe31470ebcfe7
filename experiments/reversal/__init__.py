"""The reversal curse, in small: a masked diffusion model and an autoregressive twin learn one-way facts.

The LLaDA paper (section 3.3, table 4; docs/SPEC-diffusion.md "Published results that a small model can echo")
finds that a masked diffusion model answers a reversed question nearly as well as the forward one, where
autoregressive models fail it (GPT-4o 82.7 forward / 34.3 reversal; LLaDA-8B-Instruct 51.8 / 45.6). This
experiment reproduces that contrast in minutes on a CPU:

- facts are `A's parent is B.` for N pairs of invented two-syllable names, written in ONE direction only;
- a vocabulary of its own: four special ids, one token per syllable, one per word of the template, so
  every name is exactly two tokens and every fact exactly ten: `<bos> A1 A2 's parent is B1 B2 . <eos>`
  (data.py);
- (a) the MaskPredictor trained with the pretraining loss (`forward_process`, `masked_diffusion_loss`) and
  (b) the same model with `causal=True` trained by next-token cross-entropy: same initial weights, same
  batches, same steps, same tokens (train.py);
- both are asked both ways; exact match on the two name tokens (evaluate.py).

Query formats (temperature 0 throughout):
- diffusion, forward: `trainer.sampler.generate` completes `<bos> A1 A2 's parent is` with 4 tokens
  (one block, 4 steps: one token committed per step), so the canvas has the training length. With
  canvas_length > 10 every training row is the fact padded with <eos>, as LLaDA's SFT pads answers
  (docs/SPEC-diffusion.md "SFT"), and the answer is canvas_length - 6 tokens: B1 B2 . <eos> <eos> ...;
- diffusion, reverse: an infill of the canvas `<bos> [M] [M] 's parent is B1 B2 . <eos>` with the same
  low-confidence procedure (`infill`, 2 steps);
- autoregressive, forward: greedy decoding of 2 tokens after `<bos> A1 A2 's parent is`;
- autoregressive, reverse: greedy decoding of 2 tokens after `<bos>`. The answer comes first in the only
  sentence the model ever saw, so all it may condition on is what precedes the answer; that is the point
  of the experiment, not a handicap added to it. Its accuracy is at most 1/N (it names one subject).
- autoregressive, reverse by ranking (reported beside): score `<bos> A' 's parent is B . <eos>` for every
  trained subject A' and take the most likely. This is not generation; it shows the autoregressive model
  holds the information and cannot *generate* it in reverse order.

    python -m experiments.reversal [num_pairs=200 steps=2000 eval_steps=250,1000,2000 output_dir=out/reversal]
"""

from experiments.reversal.config import ReversalConfig
from experiments.reversal.data import (
    BOS_ID,
    EOS_ID,
    FACT_LENGTH,
    FORWARD_PROMPT_LENGTH,
    MASK_ID,
    OBJECT,
    PAD_ID,
    SUBJECT,
    TOKEN_ID,
    VOCAB,
    ar_reverse_prompts,
    decode,
    fact_tensor,
    forward_prompts,
    make_pairs,
    reverse_canvases,
)
from experiments.reversal.evaluate import exact_match, infill
from experiments.reversal.experiment import main, results_table, run
from experiments.reversal.train import build_model, train_and_evaluate

__all__ = [
    "BOS_ID", "EOS_ID", "FACT_LENGTH", "FORWARD_PROMPT_LENGTH", "MASK_ID", "OBJECT", "PAD_ID", "SUBJECT", "TOKEN_ID",
    "VOCAB", "ReversalConfig", "ar_reverse_prompts", "build_model", "decode", "exact_match", "fact_tensor",
    "forward_prompts", "infill", "main", "make_pairs", "results_table", "reverse_canvases", "run",
    "train_and_evaluate",
]
