"""What SFT feeds the loop: pairs from conversations, micro-batches per rank (token shards: test_loader.py)."""

import json

import pytest

from common.paths import PROJECT_ROOT
from tests.tokenizer import train_tokenizer, write_corpus
from trainer.sft import pair_batches, read_pairs


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
