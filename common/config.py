"""Typed job configs: one dataclass per job feeds the CLI, Airflow Params, MLflow and config.json.

A config is a flat `@dataclass(kw_only=True)` with a docstring under each field (read back from the
source, so the help text lives next to the field it describes). This module imports nothing heavy:
DAG files use it at parse time.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
import textwrap
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from common.files import write_json

C = TypeVar("C")


class ConfigError(ValueError):
    """A config file, key or value the user must fix; the message says which."""


def one_of(default: Any, choices: typing.Iterable[Any]) -> Any:
    """A field whose value is one of fixed `choices` (a registry's names): the Airflow form shows a
    dropdown and --help lists them. The config's __post_init__ still checks the value."""
    return dataclasses.field(default=default, metadata={"choices": tuple(choices)})


def field_choices(f: dataclasses.Field) -> tuple | None:
    """The fixed values of a field declared with `one_of`, else None."""
    return f.metadata.get("choices")


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (and its bases)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, following in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """(type without Optional, whether None is allowed)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def coerce(name: str, annotation: Any, value: Any) -> Any:
    """Turn a value from a file, a `key=value` override or an Airflow Param into the field's type."""
    base, optional = _base_type(annotation)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("", "none", "null")):
        if optional:
            return None
        raise ConfigError(f"config key '{name}' may not be empty")
    origin = typing.get_origin(base)
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError(value)
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if base is float:
            return float(value)
        if base is str:
            if not isinstance(value, (str, int, float)):
                raise ValueError(value)
            return str(value)
        if origin is list:
            (item_type,) = typing.get_args(base)
            if isinstance(value, str):
                text = value.strip()
                value = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):
                raise ValueError(value)
            return [coerce(name, item_type, v.strip() if isinstance(v, str) else v) for v in value]
        if origin is dict:
            if isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise ConfigError(f"config key '{name}': cannot read {value!r} as {_type_name(base)}") from None
    raise ConfigError(f"config key '{name}' has an unsupported type {base!r}")


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", str(annotation))


def from_dict(cls: type[C], values: dict[str, Any], *, source: str = "config") -> C:
    """Build a config from a mapping; an unknown key is an error that names it."""
    hints = _field_types(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown config key {', '.join(repr(k) for k in unknown)} for {cls.__name__}; "
            f"known keys: {', '.join(sorted(known))}"
        )
    kwargs = {k: coerce(k, hints[k], v) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{source}: {e}") from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Values from a .json or .toml config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        return json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {e}") from None


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """`key=value` strings into a mapping (values stay strings; `coerce` types them)."""
    values: dict[str, str] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key=value")
        values[key.strip()] = value
    return values


def load_config(cls: type[C], path: str | Path | None = None, overrides: list[str] | dict[str, Any] = (), *,
                base: dict[str, Any] | None = None) -> C:
    """Defaults, then `base` (a recipe's values), then the file (if any), then overrides: the resolved config."""
    values: dict[str, Any] = read_config_file(path) if path else {}
    extra = parse_overrides(list(overrides)) if isinstance(overrides, (list, tuple)) else dict(overrides)
    return from_dict(cls, {**(base or {}), **values, **extra}, source=str(path) if path else "overrides")


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def to_json(config: Any) -> str:
    return json.dumps(to_dict(config), indent=2, sort_keys=True)


def save_config(config: Any, path: str | Path) -> None:
    """Write config.json (atomically, keys sorted) next to an output so every artifact says how it was made."""
    write_json(path, to_dict(config), sort_keys=True)


def json_schema(cls: type) -> dict[str, dict[str, Any]]:
    """Per field: default, JSON-schema type and description (for Airflow's trigger form)."""
    docs = field_docs(cls)
    hints = _field_types(cls)
    defaults = to_dict(cls())
    schema: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(cls):
        base, optional = _base_type(hints[f.name])
        kind = _json_type(base)
        types_ = [kind, "null"] if optional else kind
        schema[f.name] = {"default": defaults[f.name], "type": types_, "description": docs.get(f.name, "")}
        if kind == "array":  # the items' type: a list of numbers or of pairs gets a JSON editor, not one string per line
            schema[f.name]["items"] = _items_schema(base)
        choices = field_choices(f)
        if choices is not None:
            schema[f.name]["enum"] = [*choices, None] if optional else list(choices)
    return schema


def _json_type(annotation: Any) -> str:
    """JSON Schema's name for a field's type. A float is "number", which admits integers too (and makes
    Airflow's form a number box)."""
    origin = typing.get_origin(annotation)
    if origin is list:
        return "array"
    if origin is dict:
        return "object"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(annotation, "string")


def _items_schema(annotation: Any) -> dict[str, Any]:
    """The schema of a list's items: list[list[float]] -> arrays of numbers."""
    (item,) = typing.get_args(annotation) or (str,)
    schema: dict[str, Any] = {"type": _json_type(item)}
    if schema["type"] == "array":
        schema["items"] = _items_schema(item)
    return schema


def help_text(cls: type) -> str:
    """One block per field: name, type, default and its docstring."""
    docs = field_docs(cls)
    hints = _field_types(cls)
    defaults = to_dict(cls())
    lines = [f"{cls.__name__} keys (override with key=value):"]
    for f in dataclasses.fields(cls):
        choices = field_choices(f)
        kind = "one of " + ", ".join(map(str, choices)) if choices else _type_name(_base_type(hints[f.name])[0])
        lines.append(f"  {f.name} ({kind}, default {defaults[f.name]!r})")
        if docs.get(f.name):
            lines.extend("      " + line for line in textwrap.wrap(docs[f.name], 90))
    return "\n".join(lines)
