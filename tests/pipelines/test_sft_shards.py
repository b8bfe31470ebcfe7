"""SFT pairs: conversations -> pairs (tokenizer/conversations.py) -> token files (pipelines.sft_shards) ->
the SFT batches the trainer streams (trainer.sft.sft_batch), which match the spec's padded layout."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import pytest

from common.config import ConfigError, from_dict
from common.paths import PROJECT_ROOT
from formats.token_shards import SFT_COLUMNS, read_manifest, verify_token_folder
from pipelines import sft_shards
from pipelines.sft_shards_config import SFTShardsConfig
from tests.formats import write_token_folder
from tests.tokenizer import conversation_tokenizer
from tokenizer.conversations import read_pairs

DEMO = PROJECT_ROOT / "data" / "demo" / "conversations.jsonl"
GOOD = {"messages": [{"role": "user", "content": "What is ls?"}, {"role": "assistant", "content": "It lists files."},
                     {"role": "user", "content": "And cd?"}, {"role": "assistant", "content": "It changes directory."}]}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return conversation_tokenizer(tmp_path_factory.mktemp("sft-tokenizer"))


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from tokenizer.encode import Tokenizer

    return Tokenizer.load(tokenizer_dir)


def test_read_pairs_counts_bad_lines_and_keeps_every_assistant_turn(tokenizer, tmp_path):
    path = tmp_path / "conversations.jsonl"
    path.write_bytes(b"\n".join([
        json.dumps(GOOD).encode(),
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


def write_pairs(tmp_path, tokenizer_dir, **overrides) -> dict:
    config = from_dict(SFTShardsConfig, {"tokenizer_dir": str(tokenizer_dir), "output_dir": str(tmp_path / "pairs"), "runner": "local",
                                         "log_to_mlflow": False, **overrides})
    return sft_shards.main(config)


def test_every_pair_is_one_padded_row_with_its_lengths(tokenizer, tokenizer_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(GOOD) + "\n{not json\n")
    report = write_pairs(tmp_path, tokenizer_dir, conversations=[str(DEMO), str(bad)], max_seq_len=128, pairs_per_file=100)
    expected = read_pairs(DEMO, tokenizer, 128)[0] + read_pairs(bad, tokenizer, 128)[0]
    manifest = verify_token_folder(tmp_path / "pairs", tokenizer_sha256=tokenizer.sha256)
    assert manifest["kind"] == "sft" and manifest["columns"] == list(SFT_COLUMNS) and manifest["seq_len"] == 128
    assert report["pairs"] == manifest["sequences"] == len(expected) and report["bad_lines"] == 1
    assert [s["file"] for s in manifest["shards"]][-2:] == ["tokens-00000-%05d.arrow" % (len(manifest["shards"]) - 2), "tokens-00001-00000.arrow"]
    assert all(s["sequences"] == 100 for s in manifest["shards"][:-2])  # pairs_per_file, the rest in each file's last
    rows, columns = [], {name: [] for name in SFT_COLUMNS}
    for shard in manifest["shards"]:
        table = pa.ipc.open_file(str(tmp_path / "pairs" / shard["file"])).read_all()
        rows += table.column("tokens").to_pylist()
        for name in SFT_COLUMNS:
            columns[name] += table.column(name).to_pylist()
        assert set(table.column("source").to_pylist()) == {str(DEMO) if shard["file"].startswith("tokens-00000") else str(bad)}
    for row, prompt_length, length, (prompt, response) in zip(rows, columns["prompt_length"], columns["length"], expected):
        assert row[:length] == prompt + response and prompt_length == len(prompt)
        assert set(row[length:]) <= {tokenizer.eos_id}  # right-padded with EOS
    first = {s["file"]: s["sha256"] for s in manifest["shards"]}
    write_pairs(tmp_path, tokenizer_dir, conversations=[str(DEMO), str(bad)], max_seq_len=128, pairs_per_file=100)
    assert {s["file"]: s["sha256"] for s in read_manifest(tmp_path / "pairs")["shards"]} == first  # same bytes


def test_no_usable_conversation_is_an_error(tokenizer_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(ConfigError, match="no usable conversations in .*bad.jsonl"):
        write_pairs(tmp_path, tokenizer_dir, conversations=[str(bad)])


def test_the_loader_gives_the_specs_padded_batch(tokenizer, tokenizer_dir, tmp_path):
    from trainer.data import SequenceLoader
    from trainer.diffusion import pad_sft_batch
    from trainer.sft import sft_batch

    write_pairs(tmp_path, tokenizer_dir, conversations=[str(DEMO)], max_seq_len=128)
    pairs = read_pairs(DEMO, tokenizer, 128)[0]
    loader = SequenceLoader(str(tmp_path / "pairs"), global_batch_size=4, seed=3, columns=SFT_COLUMNS,
                            tokenizer_sha256=tokenizer.sha256)
    for _ in range(3):
        (batch,) = loader.next_step(rank=0, world_size=1, micro_batch_size=4)
        chosen = [pairs[i] for i in (batch.sequence_ids & ((1 << 40) - 1)).tolist()]
        reference = pad_sft_batch([p for p, _ in chosen], [r for _, r in chosen], tokenizer.eos_id)
        assert all(np.array_equal(ours.numpy(), theirs.numpy()) for ours, theirs in zip(sft_batch(batch), reference))


def test_sft_refuses_a_pretraining_folder_and_another_tokenizer(tokenizer, tokenizer_dir, tmp_path):
    from trainer.config import SFTConfig
    from trainer.sft import check_pairs

    write_pairs(tmp_path, tokenizer_dir, conversations=[str(DEMO)])
    config = SFTConfig(sft_tokens_dir=str(tmp_path / "pairs"))
    assert check_pairs(config, tokenizer.sha256)["kind"] == "sft"
    with pytest.raises(ConfigError, match="made by the tokenizer with sha256"):
        check_pairs(config, "f" * 64)
    write_token_folder(tmp_path / "tokens", [{"en": np.zeros((4, 8), np.uint32)}])
    with pytest.raises(ConfigError, match="is not a folder of SFT pairs"):
        check_pairs(SFTConfig(sft_tokens_dir=str(tmp_path / "tokens")), None)


def test_parquet_and_prompt_response_records_give_the_same_pairs_as_messages(tokenizer, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    single = {"messages": [{"role": "user", "content": "What does ls do?"}, {"role": "assistant", "content": "It lists files."}]}
    jsonl = tmp_path / "messages.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in (GOOD, single)) + "\n")
    flat = tmp_path / "flat.jsonl"
    flat.write_text(json.dumps({"prompt": "What does ls do?", "response": "It lists files."}) + "\n")
    parquet = tmp_path / "messages.parquet"
    pq.write_table(pa.Table.from_pylist([GOOD, single]), parquet)

    expected = read_pairs(jsonl, tokenizer, 256)[0]
    assert read_pairs(parquet, tokenizer, 256)[0] == expected
    assert read_pairs(flat, tokenizer, 256)[0] == expected[-1:]

    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "q", "response": "a"}, {"prompt": "no answer", "response": None}]), bad)
    pairs, stats = read_pairs(bad, tokenizer, 256)
    assert len(pairs) == 1 and stats["bad_lines"] == 1
    assert "bad.parquet:2: ValueError: message 1 (assistant) has no 'content' string" in stats["examples"][0]
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    assert "no 'messages', nor 'prompt' and 'response' (keys: answer, question)" in read_pairs(other, tokenizer, 256)[1]["examples"][0]


def test_sampled_turns_keep_one_pair_per_dialogue_the_same_on_every_run(tokenizer):
    every, stats = read_pairs(DEMO, tokenizer, 128)
    sampled, sampled_stats = read_pairs(DEMO, tokenizer, 128, turns="sampled", seed=3)
    assert sampled_stats["conversations"] == stats["conversations"] == len(sampled) < len(every)
    assert all(pair in every for pair in sampled)
    assert read_pairs(DEMO, tokenizer, 128, turns="sampled", seed=3)[0] == sampled
    assert read_pairs(DEMO, tokenizer, 128, turns="sampled", seed=4)[0] != sampled  # another draw
    with pytest.raises(ValueError, match="turns must be one of all, sampled"):
        read_pairs(DEMO, tokenizer, 128, turns="first")
