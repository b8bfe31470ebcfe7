"""The sample job: a completion from a checkpoint, by the exact sampler or the opt-in fast modes."""

import json

import pytest
import torch

from common.config import ConfigError
from tests.tokenizer import conversation_tokenizer
from trainer import sample
from trainer.checkpoint import save_model
from trainer.config import SampleConfig
from trainer.model import MaskPredictor
from trainer.model_config import model_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(checkpoint dir, tokenizer dir): a randomly initialized tiny model over a small trained tokenizer."""
    from tokenizer.encode import Tokenizer

    root = tmp_path_factory.mktemp("sample")
    tokenizer = Tokenizer.load(conversation_tokenizer(root))
    torch.manual_seed(0)
    model = MaskPredictor(model_config("tiny", vocab_size=tokenizer.vocab_size))
    save_model(model, root / "model")
    return root / "model", root / "tokenizer"


def run(checkpoint, **overrides) -> dict:
    values = {"checkpoint": str(checkpoint[0]), "tokenizer_dir": str(checkpoint[1]), "gen_length": 16,
              "block_length": 8, "steps": 16, "prompt": "What does ls do?"}
    return sample.main(SampleConfig(**(values | overrides)))


def test_exact_and_fast_modes_complete_the_prompt(checkpoint):
    exact = run(checkpoint)
    # rebuilt at every step, the dual cache is the exact computation: the same completion
    assert run(checkpoint, cache="dual", refresh_every=1)["completion"] == exact["completion"]
    fast = run(checkpoint, threshold=0.9, cache="dual")
    assert isinstance(fast["completion"], str) and fast["config"]["cache"] == "dual"
    records = [json.loads(line) for line in (checkpoint[0] / "samples.jsonl").read_text().splitlines()]
    assert [r["config"]["threshold"] for r in records[-3:]] == [None, None, 0.9]


def test_fast_options_are_checked():
    with pytest.raises(ConfigError, match="cache must be none, prefix or dual"):
        SampleConfig(cache="full")
    with pytest.raises(ConfigError, match="threshold must be in"):
        SampleConfig(threshold=1.5)
    with pytest.raises(ConfigError, match="refresh_every must be >= 1 and needs cache"):
        SampleConfig(refresh_every=2)
    with pytest.raises(ConfigError, match="exact sampler only"):
        SampleConfig(threshold=0.9, cfg_scale=1.0)
    with pytest.raises(ConfigError, match="threshold needs remasking=low_confidence"):
        SampleConfig(threshold=0.9, remasking="random")


def test_a_checkpoint_trained_with_another_tokenizer_is_refused_naming_both(checkpoint, tmp_path):
    import shutil

    from common.config import ConfigError
    from formats.checkpoint import write_tokenizer_ref
    from tokenizer.encode import Tokenizer

    tokenizer = Tokenizer.load(checkpoint[1])
    other = tmp_path / "model"
    shutil.copytree(checkpoint[0], other)
    write_tokenizer_ref(other, tokenizer.sha256, tokenizer.vocab_size)
    assert run((other, checkpoint[1]))["completion"] is not None  # its own tokenizer: fine
    write_tokenizer_ref(other, "a" * 64, 600)
    with pytest.raises(ConfigError, match=rf"trained with the tokenizer of sha256 a{{64}} \(600 ids\), not this one, of sha256 {tokenizer.sha256}"):
        run((other, checkpoint[1]))
