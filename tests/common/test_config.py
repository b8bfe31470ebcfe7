"""The typed-config layer every job, CLI and DAG form is built on."""

import json
from dataclasses import dataclass, field

import pytest

from common.cli import run_job
from common.config import ConfigError, field_docs, help_text, json_schema, load_config, one_of, to_dict


@dataclass(kw_only=True)
class Example:
    """A config like the jobs' ones."""

    name: str = "x"
    """A name."""
    count: int = 3
    """How many."""
    rate: float = 0.5
    """A rate."""
    on: bool = False
    """A switch."""
    paths: list[str] = field(default_factory=lambda: ["a"])
    """Some paths."""
    limit: int | None = None
    """Optional limit."""
    colour: str = one_of("red", ("red", "blue"))
    """A colour from a fixed set."""
    shade: str | None = one_of(None, ("light", "dark"))
    """An optional one."""

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ConfigError(f"count must be >= 0, got {self.count}")


def test_defaults_then_file_then_overrides(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"count": 5, "name": "file"}))
    config = load_config(Example, path, ["count=7", "on=true", "paths=b,c", "rate=2", "limit=none"])
    assert to_dict(config) == {
        "name": "file", "count": 7, "rate": 2.0, "on": True, "paths": ["b", "c"], "limit": None, "colour": "red", "shade": None
    }


def test_toml_file_and_json_list_override(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('name = "t"\npaths = ["x", "y"]\n')
    config = load_config(Example, path, ['paths=["p q", "r"]'])
    assert config.name == "t" and config.paths == ["p q", "r"]


def test_unknown_key_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="'color'"):
        load_config(Example, None, ["color=red"])
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"nmae": "typo"}))
    with pytest.raises(ConfigError, match=r"c\.json.*'nmae'"):
        load_config(Example, path)


@pytest.mark.parametrize("override", ["count=three", "on=maybe", "count=1.5", "rate=fast"])
def test_bad_values_name_the_key(override):
    with pytest.raises(ConfigError, match=override.split("=")[0]):
        load_config(Example, None, [override])


def test_validation_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="count must be"):
        load_config(Example, None, ["count=-1"])
    with pytest.raises(ConfigError, match="not found.*nope.json"):
        load_config(Example, tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="key=value"):
        load_config(Example, None, ["count"])


def test_field_docs_feed_help_and_schema():
    assert field_docs(Example)["count"] == "How many."
    assert "How many." in help_text(Example)
    schema = json_schema(Example)
    assert schema["count"] == {"default": 3, "type": "integer", "description": "How many."}
    assert schema["paths"]["type"] == "array" and schema["paths"]["items"] == {"type": "string"}
    assert schema["limit"]["type"] == ["integer", "null"]
    assert schema["rate"]["type"] == "number"  # admits integers too; Airflow's form makes it a number box


def test_a_list_of_number_pairs_is_typed_to_its_items():
    """lr_schedule's points: typed items make Airflow's form a JSON editor, and a valid value a list of pairs."""
    from trainer.config import PretrainConfig

    assert json_schema(PretrainConfig)["lr_schedule"]["items"] == {"type": "array", "items": {"type": "number"}}


def test_fixed_values_become_a_dropdown_and_are_listed_in_help():
    schema = json_schema(Example)
    assert schema["colour"]["enum"] == ["red", "blue"] and schema["shade"]["enum"] == ["light", "dark", None]
    assert "enum" not in schema["name"]
    assert "colour (one of red, blue, default 'red')" in help_text(Example)


def test_cli_dry_run_prints_resolved_config(capsys):
    called = []
    assert run_job(Example, called.append, ["--dry-run", "count=9"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 9
    assert called == []


def test_cli_bad_key_exits_2_and_result_line(capsys):
    assert run_job(Example, lambda c: None, ["bogus=1"]) == 2
    assert "'bogus'" in capsys.readouterr().err
    assert run_job(Example, lambda c: {"n": c.count}, ["count=4"]) == 0
    assert capsys.readouterr().out.strip().endswith('JOB_RESULT {"n": 4}')
