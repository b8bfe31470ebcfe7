"""The shared command line of every job: `python -m <package>.<job> [--config FILE] [key=value ...] [--dry-run]`."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from common.locks import OutputLocked, output_lock
from common.termination import Terminated, raise_on_sigterm
from common.config import ConfigError, help_text, load_config, parse_overrides, to_dict, to_json

C = TypeVar("C")

RESULT_MARKER = "JOB_RESULT "
"""Prefix of the last line a job prints: its result as JSON, read back by orchestration.ray_jobs.parse_result."""


def run_job(config_cls: type[C], main: Callable[[C], Any], argv: list[str] | None = None, *, description: str = "",
            recipes: Mapping[str, Callable[[], C]] | None = None) -> int:
    """Parse the command line into `config_cls`, then call `main(config)`; exit status 2 on a bad config.
    A job with an `output_dir` holds its lock meanwhile (common/locks.py): exit status 3 when another has it.

    With `recipes`, `recipe=NAME` starts from that function's config; the config file and the other
    key=value overrides apply on top of it."""
    epilog = help_text(config_cls)
    if recipes:
        epilog = f"recipe=NAME starts from a recipe: {', '.join(recipes)} (key=value overrides apply on top)\n\n" + epilog
    parser = argparse.ArgumentParser(description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="a .json or .toml file of config values")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override one config value")
    args = parser.parse_args(argv)
    try:
        overrides = list(args.overrides)
        recipe = _recipe_values(overrides, recipes)  # takes recipe=NAME out of overrides
        config = load_config(config_cls, args.config, overrides, base=recipe)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(to_json(config))
        return 0
    raise_on_sigterm()
    output_dir = getattr(config, "output_dir", None)
    try:
        with output_lock(output_dir) if output_dir else contextlib.nullcontext():
            result = main(config)
    except OutputLocked as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Terminated:
        print("terminated by SIGTERM", file=sys.stderr)
        return 143
    if isinstance(result, dict):
        # The last line a DAG task reads back from the Ray job's log (orchestration.ray_jobs.parse_result).
        print(RESULT_MARKER + json.dumps(result, default=str), flush=True)
    return 0


def _recipe_values(overrides: list[str], recipes: Mapping[str, Callable[[], Any]] | None) -> dict[str, Any]:
    """The config values of the recipe named by a `recipe=NAME` override (empty without one); the override
    itself is taken out of `overrides`."""
    chosen = [o for o in overrides if o.split("=", 1)[0].strip() == "recipe"]
    if not chosen:
        return {}
    for override in chosen:
        overrides.remove(override)
    name = parse_overrides(chosen[-1:])["recipe"]
    if not recipes or name not in recipes:
        raise ConfigError(f"unknown recipe {name!r}; recipes: {', '.join(recipes or {}) or 'none for this job'}")
    return to_dict(recipes[name]())
