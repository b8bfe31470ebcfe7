"""The registry the corpus build reads, the configs' documentation, and the filters chained in pipeline order."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pyarrow as pa
import pytest

from common.config import ConfigError, field_docs, from_dict
from pipelines.config import FILTER_STAGES
from pipelines.filters import FILTERS

PROSE = """The river starts high in the mountains, where the snow melts every spring.
It runs through forests and farms before it reaches the old town.
People in the town have used its water for mills and boats for centuries.
Fish such as trout and salmon swim up the river to lay their eggs.
In summer the children like to swim near the bridge with their friends.
The river finally meets the sea at a wide and sandy delta.
Write to the keeper at keeper@rivers.example.org or to the server at 93.184.216.34 for maps.
Share this page"""
TABLE = pa.table(
    {
        "id": ["prose", "short", "repeated", "code", "list"],
        "text": [
            PROSE,
            "Too short to judge.",
            "\n".join(["The same line is said again and again, and that is all there is to it."] * 12),
            PROSE + "\nThe config reads { river: 1 } in the file.",
            "\n".join(f"- item {i} of the list that goes on and on with the words." for i in range(60)),
        ],
        "source": ["a", "b", "c", "d", "e"],
    }
)


def test_registry_lists_the_stages_in_pipeline_order():
    assert tuple(FILTERS) == FILTER_STAGES == ("gopher_quality", "gopher_repetition", "c4", "fineweb", "pii")


@pytest.mark.parametrize("name", list(FILTERS))
def test_configs_document_every_field_and_read_overrides(name):
    config_class, _ = FILTERS[name]
    assert set(field_docs(config_class)) == {field.name for field in dataclasses.fields(config_class)}
    assert from_dict(config_class, {}) == config_class()
    with pytest.raises(ConfigError, match="unknown config key"):
        from_dict(config_class, {"no_such_key": 1})


def test_the_filters_in_pipeline_order_keep_only_the_prose():
    kept, dropped, counts = TABLE, [], Counter()
    for config_class, apply in FILTERS.values():
        outcome = apply(kept, config_class())
        kept, counts = outcome.kept, counts + outcome.counts
        dropped.append(outcome.dropped)
    dropped = pa.concat_tables(dropped)

    assert kept["id"].to_pylist() == ["prose"]
    kept_text = kept["text"][0].as_py()
    assert "keeper@" not in kept_text and "Share this page" not in kept_text
    assert dict(zip(dropped["id"].to_pylist(), dropped["reason"].to_pylist())) == {
        "short": "gopher_quality.short_doc",
        "repeated": "gopher_repetition.dup_line_frac",
        "code": "c4.curly_bracket",
        "list": "gopher_quality.too_many_bullet_lines",
    }
    assert counts == {"c4.lines_removed": 1, "pii.emails": 1, "pii.ips": 1}
