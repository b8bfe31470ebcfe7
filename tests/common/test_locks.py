"""One writer per output folder: a second one fails naming the first; a dead holder's lock is taken over."""

import json
import os
import subprocess
import sys

import pytest

from common.locks import LOCK_NAME, OutputLocked, output_lock
from common.paths import PROJECT_ROOT


def test_a_second_writer_fails_naming_the_holder_and_the_lock_goes_with_the_first(tmp_path, monkeypatch):
    monkeypatch.setenv("LLADA_JOB_OWNER", "ray job llada-corpus_build-run-1")
    with output_lock(tmp_path / "corpus") as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(OutputLocked, match=rf"corpus is being written by ray job llada-corpus_build-run-1 \(host .*, pid {os.getpid()}"):
            with output_lock(tmp_path / "corpus"):
                pass
    assert not (tmp_path / "corpus" / LOCK_NAME).exists()


def test_a_lock_left_by_a_killed_job_is_taken_over_with_a_warning(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    (tmp_path / LOCK_NAME).write_text(json.dumps({"owner": "ray job old", "host": os.uname().nodename, "pid": int(gone.stdout),
                                                  "process_started": 0, "locked_at": "2026-01-01T00:00:00Z"}))
    said = []
    with output_lock(tmp_path, log=said.append):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert said == [f"warning: taking over the lock of {tmp_path} left by ray job old (host {os.uname().nodename}, "
                    f"pid {int(gone.stdout)}, since 2026-01-01T00:00:00Z): that process is gone"]


def test_a_job_whose_output_folder_is_locked_exits_3_naming_the_holder(tmp_path):
    with output_lock(tmp_path / "tokenizer"):
        result = subprocess.run([sys.executable, "-m", "tokenizer.train", f"corpus_dir={tmp_path / 'corpus'}",
                                 f"output_dir={tmp_path / 'tokenizer'}"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 3, result.stderr[-2000:]
    assert f"error: {tmp_path / 'tokenizer'} is being written by" in result.stderr and f"pid {os.getpid()}" in result.stderr
