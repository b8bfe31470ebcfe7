"""Warmup-stable-decay learning rate (LLaDA's SFT schedule is exactly this shape)."""

import pytest

from trainer.schedule import wsd_lr_factor


def factors(**kw):
    return [wsd_lr_factor(step, **kw) for step in range(kw["total_steps"])]


def test_llada_sft_shape():
    f = factors(total_steps=100, warmup_steps=5, decay_fraction=0.1, final_ratio=0.1)
    assert f[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert f[5:90] == [1.0] * 85
    assert f[90] == pytest.approx(1 - 0.9 * 0.1)
    assert f[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(f[5:], f[6:]))


def test_no_warmup_no_decay():
    assert factors(total_steps=10, warmup_steps=0, decay_fraction=0.0, final_ratio=0.1) == [1.0] * 10


def test_points_are_linear_between_and_a_repeated_position_is_a_step():
    from trainer.schedule import check_points, piecewise_lr

    points = check_points([[0, 0], [10, 1.0], [20, 1.0], [20, 0.25], [30, 0.25], [40, 0.0]])
    assert [piecewise_lr(x, points) for x in (0, 5, 10, 19.9, 20, 25, 35, 40, 99)] == pytest.approx(
        [0, 0.5, 1.0, 1.0, 0.25, 0.25, 0.125, 0.0, 0.0])
    for bad in ([], [[0, 1, 2]], [[5, 1], [4, 1]], [[0, -1]]):
        with pytest.raises(ValueError):
            check_points(bad)


def test_llada_8b_recipe_follows_the_published_schedule():
    from trainer.loop import lr_factor
    from trainer.recipes import LLADA_GLOBAL_BATCH, LLADA_SEQ_LEN, llada_8b

    config = llada_8b()
    per_step = LLADA_GLOBAL_BATCH * LLADA_SEQ_LEN  # 5.24M tokens
    lr = lambda step: lr_factor(config, per_step)(step) * config.lr  # noqa: E731
    assert lr(999) == pytest.approx(2e-4) and lr(1999) == pytest.approx(4e-4)  # warm-up: 2,000 steps
    step_at = lambda tokens: int(tokens // per_step)  # noqa: E731  the step after which `tokens` were seen
    assert lr(step_at(1.0e12)) == pytest.approx(4e-4)
    assert lr(step_at(1.2e12) + 1) == pytest.approx(1e-4) and lr(step_at(1.99e12)) == pytest.approx(1e-4)
    assert lr(step_at(2.15e12)) == pytest.approx(5.5e-5, rel=1e-3)  # halfway down the last 0.3T
    assert lr(config.steps - 1) == pytest.approx(1e-5)
    assert config.steps * per_step >= 2.3e12 > (config.steps - 1) * per_step
