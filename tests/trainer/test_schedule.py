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
