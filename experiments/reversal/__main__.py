"""`python -m experiments.reversal [key=value ...]`: the experiment's command line (`ReversalConfig` keys)."""

from common.cli import run_job
from experiments.reversal.config import ReversalConfig
from experiments.reversal.experiment import main

if __name__ == "__main__":
    raise SystemExit(
        run_job(ReversalConfig, main, description="Reversal curse: diffusion vs autoregressive on one-way facts.")
    )
