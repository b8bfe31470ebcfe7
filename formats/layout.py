"""The folders of a build under one work folder, and which job reads and writes which.

A DAG run gives every job its folders from `JOB_FOLDERS` (so one task's output is the next one's
input), and every job config's default for those fields is the same folder under `DEFAULT_WORK_DIR`:
a job run by hand without paths reads and writes what the DAGs would.
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

JOB_FOLDERS: dict[str, dict[str, str]] = {
    "pipelines.corpus_build": {"output_dir": "corpus"},
    "pipelines.fuzzy_dedup": {"corpus_dir": "corpus", "output_dir": "corpus_fuzzy"},
    "tokenizer.train": {"corpus_dir": "corpus_fuzzy", "output_dir": "tokenizer"},
    "pipelines.token_shards": {"corpus_dir": "corpus_fuzzy", "tokenizer_dir": "tokenizer", "output_dir": "tokens"},
    "trainer.pretrain": {"tokens_dir": "tokens", "output_dir": "pretrain"},
    "pipelines.sft_shards": {"tokenizer_dir": "tokenizer", "output_dir": "sft_tokens"},
    "trainer.sft": {"sft_tokens_dir": "sft_tokens", "init_checkpoint": "pretrain", "tokenizer_dir": "tokenizer", "output_dir": "sft"},
    "trainer.sample": {"checkpoint": "sft", "tokenizer_dir": "tokenizer"},
    "trainer.evaluate": {"checkpoint": "sft", "tokenizer_dir": "tokenizer"},
}
"""Per job (its module), the config fields that name a folder of the build, and which folder."""

CHAINED_FIELDS = tuple(sorted({name for fields in JOB_FOLDERS.values() for name in fields}))
"""Config fields a DAG sets from its work folder rather than from the trigger form."""


def folder(name: str, work_dir: str = DEFAULT_WORK_DIR) -> str:
    """The path of one folder of the build under `work_dir`."""
    if name not in FOLDERS:
        raise KeyError(f"no build folder {name!r}; folders: {', '.join(FOLDERS)}")
    return f"{work_dir}/{name}"


def job_folders(job: str, work_dir: str = DEFAULT_WORK_DIR) -> dict[str, str]:
    """The folder fields of `job`'s config, set for a build under `work_dir`."""
    return {field: folder(name, work_dir) for field, name in JOB_FOLDERS[job].items()}


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
