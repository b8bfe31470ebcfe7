"""The folders of a build under one work folder, and which job reads and writes which.

A DAG run gives every job its folders from `JOB_FOLDERS` (so one task's output is the next one's
input). The corpus folders (CORPUS_FOLDERS) of a DAG run live in a version folder of their own,
`{work_dir}/corpora/{name}/{version}/` (formats/corpus_versions.py), sealed once complete; the training
folders live under `work_dir`. Every job config's default for those fields is the folder of one
unversioned build under `DEFAULT_WORK_DIR` (out/corpus, out/tokens, out/pretrain, ...): what a job run by
hand without paths reads and writes.
"""

from __future__ import annotations

DEFAULT_WORK_DIR = "out"

FOLDERS = {
    "corpus": "cleaned, exactly deduplicated documents (formats/corpus.py)",
    "corpus_fuzzy": "the same without near duplicates (formats/corpus.py)",
    "tokenizer": "our tokenizer.model and special_tokens.json (any stage also takes a Hugging Face tokenizer folder)",
    "tokens": "fixed-length token sequences (formats/token_shards.py)",
    "sft_tokens": "SFT pairs, tokenized and padded (formats/token_shards.py)",
    "pretrain": "the pretraining checkpoint (formats/checkpoint.py)",
    "sft": "the fine-tuned checkpoint, its samples and evaluation results (formats/checkpoint.py)",
}
"""Every folder of a build, in the order the jobs make them."""

CORPUS_FOLDERS = ("corpus", "corpus_fuzzy", "tokenizer", "tokens")
"""What a corpus build writes: in a DAG run, one version folder holds them (formats/corpus_versions.py)."""

JOB_FOLDERS: dict[str, dict[str, str]] = {
    "pipelines.corpus_build": {"output_dir": "corpus"},
    "pipelines.fuzzy_dedup": {"corpus_dir": "corpus", "output_dir": "corpus_fuzzy"},
    "tokenizer.train": {"corpus_dir": "corpus_fuzzy", "output_dir": "tokenizer"},
    "pipelines.token_shards": {"corpus_dir": "corpus_fuzzy", "tokenizer_dir": "tokenizer", "output_dir": "tokens"},
    "trainer.pretrain": {"tokens_dir": "tokens", "output_dir": "pretrain"},
    # From pretraining on, a checkpoint folder holds the tokenizer it was trained with (formats/checkpoint.py):
    # SFT pairs take the pretrained checkpoint's, and SFT, sampling and evaluation their checkpoint's own.
    "pipelines.sft_shards": {"tokenizer_dir": "pretrain", "output_dir": "sft_tokens"},
    "trainer.sft": {"sft_tokens_dir": "sft_tokens", "init_checkpoint": "pretrain", "output_dir": "sft"},
    "trainer.sample": {"checkpoint": "sft"},
    "trainer.evaluate": {"checkpoint": "sft"},
}
"""Per job (its module), the config fields that name a folder of the build, and which folder."""

CORPUS_FIELD = "corpus"
"""The config field in which a training job records the corpus version it reads (`name/version`)."""

CHAINED_FIELDS = tuple(sorted({name for fields in JOB_FOLDERS.values() for name in fields} | {CORPUS_FIELD}))
"""Config fields a DAG sets from its work folder rather than from the trigger form."""


def folder(name: str, work_dir: str = DEFAULT_WORK_DIR, corpus_dir: str | None = None) -> str:
    """The path of one folder of the build under `work_dir`; a corpus folder under `corpus_dir` when given
    (a corpus version's folder)."""
    if name not in FOLDERS:
        raise KeyError(f"no build folder {name!r}; folders: {', '.join(FOLDERS)}")
    return f"{corpus_dir if corpus_dir and name in CORPUS_FOLDERS else work_dir}/{name}"


def job_folders(job: str, work_dir: str = DEFAULT_WORK_DIR, corpus_dir: str | None = None) -> dict[str, str]:
    """The folder fields of `job`'s config, set for a build under `work_dir` whose corpus folders are in
    `corpus_dir` (default: work_dir too)."""
    return {field: folder(name, work_dir, corpus_dir) for field, name in JOB_FOLDERS[job].items()}


def default_folder(job: str, field: str) -> str:
    """The default of one folder field of `job`'s config: that folder under DEFAULT_WORK_DIR."""
    return folder(JOB_FOLDERS[job][field])


def written_by(jobs: list[str]) -> list[str]:
    """The folders these jobs write (their output_dir), in build order: for a DAG's description."""
    written = {JOB_FOLDERS[job]["output_dir"] for job in jobs if "output_dir" in JOB_FOLDERS[job]}
    return [name for name in FOLDERS if name in written]


def read_by(jobs: list[str]) -> list[str]:
    """The folders these jobs read that none of them writes, in build order."""
    read = {name for job in jobs for field, name in JOB_FOLDERS[job].items() if field != "output_dir"}
    return [name for name in FOLDERS if name in read and name not in written_by(jobs)]
