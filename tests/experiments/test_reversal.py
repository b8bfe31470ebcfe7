import json

import pytest
import torch

from common.cli import run_job
from common.config import ConfigError
from experiments import reversal
from experiments.reversal import (
    BOS_ID,
    EOS_ID,
    MASK_ID,
    TOKEN_ID,
    VOCAB,
    ReversalConfig,
    ar_reverse_prompts,
    build_model,
    decode,
    exact_match,
    fact_tensor,
    forward_prompts,
    infill,
    make_pairs,
    reverse_canvases,
)
from trainer.model import MaskPredictor, ModelConfig
from trainer.sampler import generate


def small_config(**overrides) -> ReversalConfig:
    values = {"num_pairs": 8, "steps": 3, "eval_steps": [1, 3], "batch_size": 4, "rank_reverse": True}
    return ReversalConfig(**{**values, **overrides})


def test_pairs_are_deterministic_distinct_and_one_way():
    pairs = make_pairs(50, seed=0)
    assert pairs == make_pairs(50, seed=0)
    assert pairs != make_pairs(50, seed=1)
    children = [child for child, _ in pairs]
    parents = [parent for _, parent in pairs]
    assert len(set(children) | set(parents)) == 100  # every name in exactly one fact
    facts = fact_tensor(pairs)
    # one direction only: every fact starts with a child, never with a parent
    first_names = {tuple(row[1:3]) for row in facts.tolist()}
    parent_ids = {(TOKEN_ID[a], TOKEN_ID[b]) for a, b in parents}
    assert not first_names & parent_ids


def test_fact_layout_and_decode():
    facts = fact_tensor([(("ka", "lo"), ("mi", "tu"))])
    expected = [BOS_ID, TOKEN_ID["ka"], TOKEN_ID["lo"], TOKEN_ID["'s"], TOKEN_ID["parent"], TOKEN_ID["is"],
                TOKEN_ID["mi"], TOKEN_ID["tu"], TOKEN_ID["."], EOS_ID]
    assert facts.tolist() == [expected]
    assert decode(expected) == "<bos> Kalo's parent is Mitu. <eos>"
    assert len(VOCAB) == 4 + 70 + 4
    padded = fact_tensor([(("ka", "lo"), ("mi", "tu"))], canvas_length=14)
    assert padded.tolist() == [expected + [EOS_ID] * 4]  # <eos> padding, as LLaDA's SFT pads answers


def test_query_builders():
    facts = fact_tensor(make_pairs(3, seed=0))
    prompts = forward_prompts(facts)
    assert prompts.tolist() == facts[:, :6].tolist()
    assert decode(prompts[0]).endswith("'s parent is")

    canvases = reverse_canvases(facts)
    assert (canvases[:, 1:3] == MASK_ID).all()
    assert canvases[:, 0].tolist() == [BOS_ID] * 3
    assert canvases[:, 3:].tolist() == facts[:, 3:].tolist()  # the tail, with the answer B, is given
    assert (facts[:, 1:3] != MASK_ID).all()  # the facts themselves are untouched

    assert ar_reverse_prompts(facts).tolist() == [[BOS_ID]] * 3


def test_exact_match_by_hand():
    expected = torch.tensor([[1, 2], [3, 4], [5, 6]])
    predicted = torch.tensor([[1, 2], [3, 0], [5, 6]])  # one token wrong in row 1: the row is wrong
    assert exact_match(predicted, expected) == pytest.approx(2 / 3)
    assert exact_match(expected, expected) == 1.0
    assert exact_match(torch.tensor([[2, 1]]), torch.tensor([[1, 2]])) == 0.0  # order matters
    with pytest.raises(ValueError, match="exact_match"):
        exact_match(predicted[:, :1], expected)


def test_infill_with_trailing_masks_equals_generate():
    torch.manual_seed(0)
    config = ModelConfig(
        n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, mlp_hidden_size=64, vocab_size=len(VOCAB), init_std=0.1
    )
    model = MaskPredictor(config).eval()
    prompt = forward_prompts(fact_tensor(make_pairs(5, seed=0)))
    expected = generate(model, prompt, steps=4, gen_length=4, block_length=4, mask_id=MASK_ID)
    canvas = torch.cat([prompt, torch.full((5, 4), MASK_ID)], dim=1)
    assert torch.equal(infill(model, canvas, steps=4), expected)
    # a mask in the middle: filled, the given positions kept
    canvases = reverse_canvases(fact_tensor(make_pairs(5, seed=0)))
    filled = infill(model, canvases, steps=2)
    assert not (filled == MASK_ID).any()
    assert torch.equal(filled[:, 3:], canvases[:, 3:])


def test_both_models_start_from_the_same_weights():
    config = small_config()
    diffusion, autoregressive = build_model(config, causal=False), build_model(config, causal=True)
    assert not diffusion.config.causal and autoregressive.config.causal
    for (name, a), (_, b) in zip(diffusion.state_dict().items(), autoregressive.state_dict().items()):
        assert torch.equal(a, b), name


def test_small_run_end_to_end(tmp_path):
    config = small_config(output_dir=str(tmp_path))
    result = reversal.main(config)
    rows = result["rows"]
    assert [(r["model"], r["steps"]) for r in rows] == [
        ("diffusion", 1), ("diffusion", 3), ("autoregressive", 1), ("autoregressive", 3)
    ]
    for row in rows:
        for key in ("forward", "reverse"):
            assert 0.0 <= row[key] <= 1.0
    assert "reverse_by_ranking" in rows[-1] and "reverse_by_ranking" not in rows[-2]  # last eval only
    assert 0.0 <= rows[-1]["reverse_by_ranking"] <= 1.0
    for name in ("results.json", "config.json", "vocab.json", "diffusion/model.pt", "autoregressive/model_config.json"):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "vocab.json").read_text())["mask"] == MASK_ID

    from trainer.checkpoint import load_model

    assert load_model(tmp_path / "autoregressive").config.causal

    # the completion marker: a rerun with the same config returns the stored result without training
    before = (tmp_path / "diffusion" / "model.pt").stat().st_mtime_ns
    assert reversal.main(config)["rows"] == rows
    assert (tmp_path / "diffusion" / "model.pt").stat().st_mtime_ns == before


def test_results_table():
    table = reversal.results_table([
        {"model": "diffusion", "steps": 10, "tokens": 100, "train_seconds": 1.0, "forward": 0.5, "reverse": 0.25},
        {"model": "autoregressive", "steps": 10, "tokens": 100, "train_seconds": 1.0, "forward": 1.0,
         "reverse": 0.0, "reverse_by_ranking": 0.75},
    ])
    assert "| diffusion | 10 | 100 | 1.0 | 50.0 | 25.0 | - |" in table
    assert "| autoregressive | 10 | 100 | 1.0 | 100.0 | 0.0 | 75.0 |" in table


def test_config_validation_and_cli(capsys):
    with pytest.raises(ConfigError, match="eval_steps"):
        ReversalConfig(steps=10, eval_steps=[20])
    with pytest.raises(ConfigError, match="num_pairs"):
        ReversalConfig(num_pairs=5000)
    with pytest.raises(ConfigError, match="canvas_length must be at least 10"):
        ReversalConfig(canvas_length=9)
    assert run_job(ReversalConfig, reversal.main, ["--dry-run", "num_pairs=20", "eval_steps=5,10", "steps=10"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["num_pairs"] == 20 and printed["eval_steps"] == [5, 10]
    assert run_job(ReversalConfig, reversal.main, ["steps=0"]) == 2


def test_a_padded_canvas_trains_and_asks_the_longer_answer(tmp_path, monkeypatch):
    from trainer import sampler

    original, asked = sampler.generate, []

    def recording_generate(model, prompt, **kwargs):
        asked.append((prompt.shape[1], kwargs["gen_length"], kwargs["steps"], kwargs["block_length"]))
        return original(model, prompt, **kwargs)

    monkeypatch.setattr(sampler, "generate", recording_generate)
    result = reversal.main(small_config(output_dir=str(tmp_path), canvas_length=16))
    assert asked == [(6, 10, 10, 10)] * 2  # two eval steps: the answer and its padding, one token per step
    assert [r["tokens"] for r in result["rows"]] == [1 * 4 * 16, 3 * 4 * 16] * 2
