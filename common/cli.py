"""The shared command line of every job: `python -m <package>.<job> [--config FILE] [key=value ...] [--dry-run]`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from common.config import ConfigError, help_text, load_config, to_json

C = TypeVar("C")

RESULT_MARKER = "JOB_RESULT "
"""Prefix of the last line a job prints: its result as JSON, read back by orchestration.ray_jobs.parse_result."""


def run_job(config_cls: type[C], main: Callable[[C], Any], argv: list[str] | None = None, *, description: str = "") -> int:
    """Parse the command line into `config_cls`, then call `main(config)`; exit status 2 on a bad config."""
    parser = argparse.ArgumentParser(
        description=description,
        epilog=help_text(config_cls),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="a .json or .toml file of config values")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override one config value")
    args = parser.parse_args(argv)
    try:
        config = load_config(config_cls, args.config, args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(to_json(config))
        return 0
    try:
        result = main(config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if isinstance(result, dict):
        # The last line a DAG task reads back from the Ray job's log (orchestration.ray_jobs.parse_result).
        print(RESULT_MARKER + json.dumps(result, default=str), flush=True)
    return 0
