"""The streaming loader (trainer/data/): reads the rows its ids name, deterministic, the same global batches
for any world size, resumable on another world size, mixtures within 1% over every 1,000 positions,
epochs wrap, a bounded index and bounded open files, bad input refused naming the file."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from common.config import ConfigError
from formats.token_shards import MANIFEST
from tests.formats import TOKENIZER_SHA256, write_token_folder
from trainer.data import SequenceLoader, check_mixture, validation_batches
from trainer.data.loader import SOURCE_SHIFT
from trainer.data.mixture import schedule
from trainer.data.order import CACHED, BlockShuffle

SEQ_LEN = 8
# Folder -> files -> source -> number of rows. Every row holds one unique value, so a row read is a row named.
LAYOUT = {
    "web": [{"en": 40, "pl": 13}, {"en": 25}, {"pl": 30}],
    "code": [{"py": 57}],
}


def _make(root, layout) -> dict[str, np.ndarray]:
    """Write the folders; returns, per mixture key (folder, folder:source), the value of each of its sequences
    in the order the format promises (files in order, a file's sources in name order)."""
    counter, expected = 0, {}
    for folder, files in layout.items():
        written = []
        for by_source in files:
            rows = {}
            for name in sorted(by_source):
                values = np.arange(counter, counter + by_source[name], dtype=np.uint32)
                counter += by_source[name]
                rows[name] = np.repeat(values[:, None], SEQ_LEN, axis=1)
            written.append(rows)
        write_token_folder(root / folder, written)
        expected[str(root / folder)] = np.concatenate([rows[n][:, 0] for rows in written for n in sorted(rows)])
        for name in {n for rows in written for n in rows}:
            expected[f"{root / folder}:{name}"] = np.concatenate([rows[name][:, 0] for rows in written if name in rows])
    return expected


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("folders")
    return root, _make(root, LAYOUT)


def mixture_of(root) -> dict[str, float]:
    return {str(root / "web") + ":en": 0.5, str(root / "web") + ":pl": 0.2, str(root / "code"): 0.3}


def run_ids(loader, steps: int, world_size: int, micro: int = 2) -> list[np.ndarray]:
    """Each step's global batch as sequence ids, the ranks' shares concatenated in rank order: each rank
    runs its own loader (as on separate workers), so all of them must agree on the position."""
    loaders = [loader] + [SequenceLoader(loader.mixture, global_batch_size=loader.global_batch_size, seed=loader.seed,
                                         shuffle_block=loader.shuffle_block) for _ in range(world_size - 1)]
    for other in loaders[1:]:
        other.load_state_dict(loader.state_dict())
    steps_ids = []
    for _ in range(steps):
        shares = [b.sequence_ids for rank, each in enumerate(loaders)
                  for b in each.next_step(rank=rank, world_size=world_size, micro_batch_size=micro)]
        steps_ids.append(np.concatenate(shares))
    assert all(each.state_dict() == loader.state_dict() for each in loaders)
    return steps_ids


def test_micro_batches_hold_the_rows_their_ids_name_and_count_tokens_by_source(data):
    root, expected = data
    loader = SequenceLoader(mixture_of(root), global_batch_size=12, seed=3, shuffle_block=16)
    assert (loader.seq_len, loader.vocab_size, loader.tokenizer_sha256) == (SEQ_LEN, 1000, TOKENIZER_SHA256)
    keys = sorted(mixture_of(root))
    for _ in range(20):  # past every source's first epoch
        for batch in loader.next_step(rank=1, world_size=2, micro_batch_size=3):
            assert batch.tokens.shape == (3, SEQ_LEN) and batch.tokens.dtype == np.uint32
            sources, indices = batch.sequence_ids >> SOURCE_SHIFT, batch.sequence_ids & ((1 << SOURCE_SHIFT) - 1)
            values = [expected[keys[s]][i] for s, i in zip(sources, indices)]
            assert (batch.tokens == np.array(values, dtype=np.uint32)[:, None]).all()
            assert batch.tokens_by_source == {key: int((sources == k).sum()) * SEQ_LEN for k, key in enumerate(keys)}
    assert sum(loader.tokens_seen.values()) == 20 * 12 * SEQ_LEN  # all ranks' tokens, known to each


def test_the_order_is_deterministic_and_the_seed_changes_it(data):
    root, _ = data
    runs = [run_ids(SequenceLoader(mixture_of(root), global_batch_size=8, seed=seed, shuffle_block=16), 10, 1)
            for seed in (5, 5, 6)]
    assert all((a == b).all() for a, b in zip(runs[0], runs[1]))
    assert not all((a == b).all() for a, b in zip(runs[0], runs[2]))
    # A mixture is its set of keys: the order they are given in does not matter.
    reordered = dict(reversed(list(mixture_of(root).items())))
    again = run_ids(SequenceLoader(reordered, global_batch_size=8, seed=5, shuffle_block=16), 10, 1)
    assert all((a == b).all() for a, b in zip(runs[0], again))


def test_the_global_batch_is_the_same_for_1_2_and_4_ranks(data):
    root, _ = data
    runs = {w: run_ids(SequenceLoader(mixture_of(root), global_batch_size=16, seed=1, shuffle_block=16), 12, w)
            for w in (1, 2, 4)}
    for w in (2, 4):
        assert all((a == b).all() for a, b in zip(runs[1], runs[w]))
    with pytest.raises(ConfigError, match=r"global_batch_size=16 must be a multiple of world_size=3 \* micro_batch_size=2"):
        SequenceLoader(mixture_of(root), global_batch_size=16, seed=1).next_step(rank=0, world_size=3, micro_batch_size=2)


def test_two_workers_resumed_on_one_continue_the_same_sample_order(data):
    root, _ = data

    def loader():
        return SequenceLoader(mixture_of(root), global_batch_size=8, seed=2, shuffle_block=16)

    uninterrupted = run_ids(loader(), 15, world_size=2)
    first = loader()
    head = run_ids(first, 6, world_size=2)
    state = json.loads(json.dumps(first.state_dict()))  # what a checkpoint stores
    resumed = loader()
    resumed.load_state_dict(state)
    tail = run_ids(resumed, 9, world_size=1, micro=4)
    assert all((a == b).all() for a, b in zip(uninterrupted, head + tail))


def test_a_position_far_into_a_run_is_restored_without_reading_data(data):
    root, _ = data
    loader = SequenceLoader(mixture_of(root), global_batch_size=8, seed=2, shuffle_block=16)
    far = 10**12  # a trillion sequences in: epochs by the billion
    drawn = dict(zip(loader.keys, [far // 2, far // 5, far - far // 2 - far // 5]))
    started = time.perf_counter()
    loader.load_state_dict({**loader.state_dict(), "position": far, "drawn": drawn})
    assert time.perf_counter() - started < 0.01 and not loader._files.views  # nothing mapped, nothing read
    (batch,) = loader.next_step(rank=0, world_size=1, micro_batch_size=8)
    assert loader.state_dict()["position"] == far + 8 and len(set(batch.sequence_ids.tolist())) == 8
    with pytest.raises(ConfigError, match="has seed 3, this run's loader has 2"):
        loader.load_state_dict({**loader.state_dict(), "seed": 3})
    with pytest.raises(ConfigError, match="has sequences"):
        SequenceLoader(str(root / "code"), global_batch_size=8, seed=2, shuffle_block=16).load_state_dict(loader.state_dict())


@pytest.mark.parametrize("sequences, block", [(103, 10), (57, 64), (64, 8), (1, 4)])
def test_every_epoch_draws_every_sequence_once_in_a_new_order(sequences, block):
    order = BlockShuffle(sequences, block=block, seed=9, source=1)
    epochs = order.indices(np.arange(4 * sequences)).reshape(4, sequences)
    assert all(sorted(e.tolist()) == list(range(sequences)) for e in epochs)
    if sequences > 3:
        assert len({tuple(e) for e in epochs}) == 4
    # The same draws asked in pieces, in another order, give the same indices (no state but the draw numbers).
    pieces = np.concatenate([order.indices(np.arange(i, min(i + 7, 4 * sequences))) for i in range(0, 4 * sequences, 7)])
    assert (pieces == epochs.ravel()).all()
    assert order.cached_bytes <= CACHED * (block + -(-sequences // block)) * 8


def test_blocks_keep_draws_local():
    """The first `block` draws of an epoch come from one block: a contiguous range of rows, so few files."""
    order = BlockShuffle(10_000, block=100, seed=0, source=0)
    first = order.indices(np.arange(100))
    assert first.max() - first.min() == 99 and first.min() % 100 == 0


@pytest.mark.parametrize("trial", range(40))
def test_mixture_proportions_stay_within_1_percent_over_every_1000_window(trial):
    rng = np.random.default_rng(trial)
    sources = int(rng.integers(2, 9))
    weights = rng.dirichlet(np.ones(sources) * rng.choice([0.1, 1.0, 10.0]))
    drawn = np.zeros(sources, dtype=np.int64)
    start = int(rng.integers(0, 10**9)) if trial % 2 else 0  # also far into a run, restored from counts
    drawn[:] = np.floor(start * weights)
    drawn[0] += start - drawn.sum()
    picked, draws = schedule(weights, drawn, start, 6_000)
    counts = np.vstack([np.zeros(sources), np.cumsum(np.eye(sources)[picked], axis=0)])
    windows = (counts[1000:] - counts[:-1000]) / 1000
    assert np.abs(windows - weights).max() <= 0.01
    assert (np.diff(draws[picked == 0]) == 1).all() and drawn.sum() == start + 6_000


def test_the_index_does_not_grow_with_sequences_and_few_files_are_mapped(tmp_path):
    rows = np.zeros((1, SEQ_LEN), dtype=np.uint32)
    write_token_folder(tmp_path / "one", [{"a": rows}], hash_files=False)
    write_token_folder(tmp_path / "long", [{"a": np.zeros((10_000, SEQ_LEN), np.uint32)}], hash_files=False)
    write_token_folder(tmp_path / "many", [{"a": rows, "b": rows} for _ in range(1000)], hash_files=False)
    loaders = {name: SequenceLoader(str(tmp_path / name), global_batch_size=8, seed=0, max_open_files=3)
               for name in ("one", "long", "many")}
    assert loaders["one"].index_bytes == loaders["long"].index_bytes  # not per sequence
    assert (loaders["many"].index_bytes - loaders["one"].index_bytes) / 999 == 16  # 16 bytes per file
    for _ in range(50):
        loaders["many"].next_step(rank=0, world_size=1, micro_batch_size=8)
    assert len(loaders["many"]._files.views) == 3


def test_bad_input_is_refused_before_training_naming_the_file(data, tmp_path):
    root, _ = data
    info = check_mixture(mixture_of(root), tokenizer_sha256=TOKENIZER_SHA256)
    assert info["weights"] == pytest.approx(dict(zip(sorted(mixture_of(root)), [0.3, 0.5, 0.2])))
    assert info["sequences"][str(root / "web") + ":pl"] == 43 and info["seq_len"] == SEQ_LEN
    assert check_mixture(str(root / "code"))["weights"] == {str(root / "code"): 1.0}  # a plain tokens_dir

    with pytest.raises(ConfigError, match=rf"{root / 'code' / MANIFEST} was made by the tokenizer with sha256 0+"):
        check_mixture(mixture_of(root), tokenizer_sha256="f" * 64)
    with pytest.raises(ConfigError, match=r"source 'de' has no sequences in it \(its sources: en, pl\)"):
        check_mixture({str(root / "web") + ":de": 1.0})
    with pytest.raises(ConfigError, match="weights must be positive"):
        check_mixture({str(root / "web"): 0.0})
    with pytest.raises(ConfigError, match=rf"{tmp_path / 'nowhere' / MANIFEST}"):
        check_mixture({str(tmp_path / "nowhere"): 1.0})

    write_token_folder(tmp_path / "empty", [{"a": np.zeros((0, SEQ_LEN), np.uint32)}])
    with pytest.raises(ConfigError, match=r"'.*empty' is empty: .*manifest.json says it holds no sequences"):
        check_mixture({str(tmp_path / "empty"): 1.0, str(root / "code"): 1.0})
    write_token_folder(tmp_path / "longer", [{"a": np.zeros((4, 2 * SEQ_LEN), np.uint32)}])
    with pytest.raises(ConfigError, match=r"longer/manifest.json has seq_len 16 but .*manifest.json has 8"):
        check_mixture({str(tmp_path / "longer"): 1.0, str(root / "code"): 1.0})
    shard = root / "code" / "tokens-00000.arrow"
    original = shard.read_bytes()
    try:
        shard.write_bytes(original[: len(original) // 2])
        with pytest.raises(ConfigError, match=rf"{shard} is {len(original) // 2} bytes"):
            SequenceLoader(mixture_of(root), global_batch_size=8, seed=0)
    finally:
        shard.write_bytes(original)


def test_validation_batches_are_fixed_and_spread_over_the_split(data, tmp_path):
    root, _ = data
    write_token_folder(tmp_path / "validation", [{"a": np.arange(i * 10, i * 10 + 10, dtype=np.uint32)[:, None]
                                                  .repeat(4, axis=1)} for i in range(5)])
    batches = validation_batches(tmp_path, max_sequences=10, micro_batch_size=4)
    assert [len(b) for b in batches] == [4, 4, 2]
    values = np.concatenate(batches)[:, 0].tolist()
    assert values == list(range(0, 50, 5))  # every 5th of 50: all files
    again = validation_batches(tmp_path, max_sequences=10, micro_batch_size=4)
    assert all((a == b).all() for a, b in zip(batches, again))
    assert len(np.concatenate(validation_batches(tmp_path, max_sequences=500, micro_batch_size=64))) == 50
    with pytest.raises(ConfigError, match=rf"{root / 'web'} has no validation sequences .*validation/manifest.json"):
        validation_batches(root / "web", max_sequences=10, micro_batch_size=4)


def test_a_folder_written_by_the_token_shards_job_streams_by_source(tmp_path):
    from pipelines.token_config import TokenShardsConfig
    from pipelines.token_shards import main
    from tests.tokenizer import real_documents, train_tokenizer, write_corpus
    from tokenizer.encode import Tokenizer

    write_corpus(tmp_path / "corpus", real_documents(english=60, polish=40), shards=2)  # shard 1 holds both sources
    train_tokenizer(tmp_path / "corpus", tmp_path / "tokenizer", vocab_size=600)
    main(TokenShardsConfig(corpus_dir=str(tmp_path / "corpus"), tokenizer_dir=str(tmp_path / "tokenizer"),
                           output_dir=str(tmp_path / "tokens"), seq_len=32, validation_fraction=0.2, runner="local",
                           log_to_mlflow=False))
    tokenizer = Tokenizer.load(tmp_path / "tokenizer")
    folder = str(tmp_path / "tokens")
    info = check_mixture({f"{folder}:python3.11-info": 1.0, f"{folder}:fortunes-pl": 1.0}, tokenizer_sha256=tokenizer.sha256)
    assert info["special_tokens"]["vocab_size"] == tokenizer.vocab_size and all(info["sequences"].values())
    loader = SequenceLoader({f"{folder}:python3.11-info": 1.0, f"{folder}:fortunes-pl": 1.0}, global_batch_size=8, seed=0)
    polish = [b for _ in range(10) for b in loader.next_step(rank=0, world_size=1, micro_batch_size=8)]
    text = tokenizer.decode(np.concatenate([b.tokens[(b.sequence_ids >> SOURCE_SHIFT) == 0] for b in polish]).ravel().tolist())
    assert "ę" in text or "ł" in text or "ś" in text  # source 0 (sorted keys) is fortunes-pl: Polish text
    assert sum(b.tokens_by_source[f"{folder}:fortunes-pl"] for b in polish) == 40 * 32
    assert sum(len(b) for b in validation_batches(folder, max_sequences=20, micro_batch_size=8)) == 20
