"""Tests that start real services. The helper below gives the tests that train token shards of one demo file,
made by the project's own jobs with every stage in-process (runner=local, no Ray) in a few seconds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common.paths import PROJECT_ROOT


def tiny_token_shards(folder: Path) -> Path:
    """corpus/, tokenizer/ (512 pieces) and tokens/ (sequences of 32, 10% of documents held out for
    validation) under `folder`, from the 800 documents of data/demo/corpus/part-00003; returns tokens/."""
    no_filters = [f"{stage}=false" for stage in ("gopher_quality", "gopher_repetition", "c4", "fineweb")]
    commands = [
        ["pipelines.corpus_build", f"inputs={PROJECT_ROOT / 'data/demo/corpus/part-00003.jsonl.gz'}", f"output_dir={folder / 'corpus'}",
         "languages=[]", "language_threshold=0", *no_filters],
        ["tokenizer.train", f"corpus_dir={folder / 'corpus'}", f"output_dir={folder / 'tokenizer'}", "vocab_size=512"],
        ["pipelines.token_shards", f"corpus_dir={folder / 'corpus'}", f"tokenizer_dir={folder / 'tokenizer'}",
         f"output_dir={folder / 'tokens'}", "seq_len=32", "validation_fraction=0.1"],
    ]
    for module, *args in commands:
        extra = ["runner=local"] if module.startswith("pipelines.") else []
        done = subprocess.run([sys.executable, "-m", module, *args, *extra, "log_to_mlflow=false"], cwd=PROJECT_ROOT,
                              capture_output=True, text=True)
        assert done.returncode == 0, f"python -m {module} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
    return folder / "tokens"
