"""What the training jobs feed the loop: token micro-batches per rank and SFT pairs from conversations."""

import json

import numpy as np
import pytest
import torch

from common.config import ConfigError
from common.paths import PROJECT_ROOT
from tests.tokenizer import train_tokenizer, write_corpus
from trainer.pretrain import token_batches
from trainer.sft import pair_batches, read_pairs


def test_token_batches_split_ranks_and_repeat_deterministically():
    tokens = np.arange(20 * 4, dtype=np.uint32).reshape(20, 4)
    seen = []
    for rank in (0, 1):
        stream = token_batches(tokens, batch_size=3, rank=rank, world_size=2, seed=7)
        batches = [next(stream) for _ in range(3)]  # one epoch is 10 rows // 3 = 3 batches
        assert all(b.dtype == torch.int64 and b.shape == (3, 4) for b in batches)
        rows = {int(r[0]) // 4 for b in batches for r in b}
        assert all(row % 2 == rank for row in rows)  # rank r reads rows r, r+2, ...
        seen.append(rows)
        again = token_batches(tokens, batch_size=3, rank=rank, world_size=2, seed=7)
        assert all(torch.equal(next(again), b) for b in batches)
    assert not seen[0] & seen[1]
    with pytest.raises(ConfigError, match="fewer than micro_batch_size"):
        next(token_batches(tokens[:3], batch_size=4, rank=0, world_size=1, seed=0))


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from tokenizer.encode import Tokenizer

    root = tmp_path_factory.mktemp("sft-tokenizer")
    lines = (PROJECT_ROOT / "data" / "demo" / "conversations.jsonl").read_text().splitlines()
    texts = [m["content"] for line in lines for m in json.loads(line)["messages"]]
    documents = [{"id": str(i), "text": " ".join(texts[i : i + 20]), "source": "demo"} for i in range(0, len(texts), 20)]
    write_corpus(root / "corpus", documents)
    train_tokenizer(root / "corpus", root / "tokenizer", vocab_size=512)
    return Tokenizer.load(root / "tokenizer")


def test_read_pairs_counts_bad_lines_and_keeps_every_assistant_turn(tokenizer, tmp_path):
    path = tmp_path / "conversations.jsonl"
    good = {"messages": [{"role": "user", "content": "What is ls?"}, {"role": "assistant", "content": "It lists files."},
                         {"role": "user", "content": "And cd?"}, {"role": "assistant", "content": "It changes directory."}]}
    path.write_bytes(b"\n".join([
        json.dumps(good).encode(),
        b"{not json",
        b'{"no_messages": []}',
        b"\xff\xfe invalid utf-8",
        json.dumps({"messages": [{"role": "user", "content": "only a question"}]}).encode(),
        b"",
    ]))
    pairs, stats = read_pairs(path, tokenizer, max_seq_len=256)
    assert stats["conversations"] == 1 and stats["pairs"] == 2 == len(pairs)
    assert stats["bad_lines"] == 4
    assert any(":2:" in example for example in stats["examples"])  # names the line
    for prompt, response in pairs:
        assert response[-1] == tokenizer.eos_id and prompt[0] == tokenizer.bos_id
    assert len(pairs[1][0]) > len(pairs[0][0])  # the second turn's prompt carries the history


def test_read_pairs_cuts_long_prompts_from_the_left(tokenizer, tmp_path):
    path = tmp_path / "long.jsonl"
    long = {"messages": [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "short answer"}]}
    path.write_text(json.dumps(long) + "\n")
    pairs, stats = read_pairs(path, tokenizer, max_seq_len=64)
    assert stats["truncated"] == 1
    prompt, response = pairs[0]
    assert len(prompt) + len(response) == 64
    assert tokenizer.decode(response[:-1]) == "short answer"


def test_pair_batches_pad_with_eos_that_counts_as_answer(tokenizer):
    pairs = [([1, 10, 11], [20, 2]), ([1, 12], [21, 22, 23, 2]), ([1, 13, 14, 15], [24, 2])]
    input_ids, prompt_lengths, answer_lengths = next(pair_batches(pairs, batch_size=3, eos_id=2, rank=0, world_size=1, seed=0))
    assert input_ids.shape == (3, 6)
    for row, prompt_length, answer_length in zip(input_ids.tolist(), prompt_lengths.tolist(), answer_lengths.tolist()):
        assert prompt_length + answer_length == 6
        assert row[-1] == 2
