"""Packing documents into fixed-length rows, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.packing import pack_sequences

EOS = 2


def test_documents_are_joined_by_eos_and_cut_into_rows():
    rows, leftover = pack_sequences([[10, 11, 12], [13, 14], [15]], seq_len=3, eos_id=EOS)
    assert rows.dtype == np.uint32
    assert rows.tolist() == [[10, 11, 12], [EOS, 13, 14], [EOS, 15, EOS]]
    assert leftover == []


def test_the_partial_last_row_is_the_leftover():
    rows, leftover = pack_sequences([[10, 11, 12], [13, 14], [15]], seq_len=4, eos_id=EOS)
    assert rows.tolist() == [[10, 11, 12, EOS], [13, 14, EOS, 15]]
    assert leftover == [EOS]


def test_carry_continues_the_previous_call():
    docs = [[10, 11, 12, 13, 14], [15], [16, 17, 18], [], [126336]]
    whole, whole_leftover = pack_sequences(docs, seq_len=4, eos_id=EOS)
    first, carry = pack_sequences(docs[:1], seq_len=4, eos_id=EOS)
    assert (first.tolist(), carry) == ([[10, 11, 12, 13]], [14, EOS])
    second, leftover = pack_sequences(docs[1:], seq_len=4, eos_id=EOS, carry=carry)
    assert second.tolist() == [[14, EOS, 15, EOS], [16, 17, 18, EOS]]
    assert np.concatenate([first, second]).tolist() == whole.tolist()
    assert leftover == whole_leftover == [EOS, 126336, EOS]  # an empty document is a lone EOS


def test_nothing_to_pack():
    rows, leftover = pack_sequences([], seq_len=8, eos_id=EOS)
    assert rows.shape == (0, 8) and leftover == []
    rows, leftover = pack_sequences(iter([[1, 2]]), seq_len=8, eos_id=EOS)
    assert rows.shape == (0, 8) and leftover == [1, 2, EOS]
    with pytest.raises(ValueError, match="seq_len"):
        pack_sequences([[1]], seq_len=0, eos_id=EOS)
