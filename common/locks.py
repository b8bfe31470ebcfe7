"""One writer per output folder: a job holds `<output_dir>/.lock` while it runs.

The lock is created exclusively (O_EXCL) and holds who took it: the owner (the Ray submission id when a
DAG task runs the job, LLADA_JOB_OWNER; else user@host), host, pid and the process's start time. A
second writer fails at once with an error naming the holder. A lock left by a killed job (its process
gone from this host, or the pid reused by a later process) is taken over with a warning, so a rerun
after a crash needs no cleaning up. A lock from another host cannot be checked from here: the error
says how to remove it.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".lock"
SEALED = "sealed.json"
"""Marks a finished folder that no job may write in any more (its own output_dir, or a folder inside it)."""


class OutputLocked(RuntimeError):
    """Another job is writing this output folder."""


def _holder() -> dict:
    import psutil

    pid = os.getpid()
    return {"owner": os.environ.get("LLADA_JOB_OWNER") or f"{getpass.getuser()}@{socket.gethostname()}",
            "host": socket.gethostname(), "pid": pid, "process_started": psutil.Process(pid).create_time(),
            "locked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _is_stale(holder: dict) -> bool:
    """The holder ran on this host and its process is gone (or its pid now belongs to a later process)."""
    import psutil

    if holder.get("host") != socket.gethostname():
        return False
    try:
        process = psutil.Process(int(holder["pid"]))
        return abs(process.create_time() - float(holder.get("process_started", 0))) > 1.0
    except (psutil.NoSuchProcess, KeyError, ValueError):
        return True


def _describe(holder: dict) -> str:
    return f"{holder.get('owner')} (host {holder.get('host')}, pid {holder.get('pid')}, since {holder.get('locked_at')})"


@contextlib.contextmanager
def output_lock(output_dir: str | Path, *, log=print) -> Iterator[Path]:
    """Hold `output_dir/.lock` for the block; raises OutputLocked naming the holder if another job has it."""
    path = Path(output_dir) / LOCK_NAME
    for folder in (Path(output_dir).absolute(), *Path(output_dir).absolute().parents):
        if (folder / SEALED).is_file():
            raise OutputLocked(f"{output_dir} is inside {folder}, which is sealed ({folder / SEALED}): a complete "
                               "version is never written again; write a new one")
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = _holder()
    for _ in range(3):  # create; or replace a stale lock, racing another rerun at most twice
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                holder = {}
            if holder and not _is_stale(holder):
                raise OutputLocked(f"{output_dir} is being written by {_describe(holder)}; wait for that job to end "
                                   f"(or, if it is gone on another host, remove {path})") from None
            if not holder and time.time() - path.stat().st_mtime < 5:  # being written right now
                time.sleep(0.5)
                continue
            log(f"warning: taking over the lock of {output_dir} left by {_describe(holder)}: that process is gone")
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(mine, f)
        break
    else:
        raise OutputLocked(f"could not take {path}: other jobs keep taking it")
    try:
        yield path
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == mine["pid"]:
                path.unlink()
