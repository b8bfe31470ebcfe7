"""PII replacement: e-mails and public IP addresses go, private addresses stay, nothing is dropped."""

from __future__ import annotations

import pyarrow as pa
import pytest

from common.config import ConfigError
from pipelines.filters.pii import PIIConfig, apply, redact

DEFAULTS = PIIConfig()


def test_emails_are_replaced_in_turn():
    text = "Write to jane.doe+list@lists.debian.org or <bob@example.net>, not to @handle."
    assert redact(text, DEFAULTS) == (
        "Write to email@example.com or <firstname.lastname@example.org>, not to @handle.",
        2,
        0,
    )


def test_public_ips_are_replaced_private_ones_kept():
    text = "Server 8.8.8.8 and 93.184.216.34; LAN 192.168.1.10, 10.0.0.1, 172.16.5.4, loopback 127.0.0.1."
    assert redact(text, DEFAULTS) == (
        "Server 22.214.171.124 and 126.96.36.199; LAN 192.168.1.10, 10.0.0.1, 172.16.5.4, loopback 127.0.0.1.",
        0,
        2,
    )
    assert redact("ping 10.0.0.1", PIIConfig(only_remove_public_ips=False)) == ("ping 22.214.171.124", 0, 1)


def test_each_document_starts_with_the_first_placeholder():
    assert redact("a@b.org", DEFAULTS)[0] == redact("a@b.org", DEFAULTS)[0] == "email@example.com"


def test_switches():
    text = "mail a@b.org from 8.8.8.8"
    assert redact(text, PIIConfig(remove_emails=False)) == ("mail a@b.org from 22.214.171.124", 0, 1)
    assert redact(text, PIIConfig(remove_ips=False)) == ("mail email@example.com from 8.8.8.8", 1, 0)


def test_apply_rewrites_and_drops_nothing():
    table = pa.table({"id": ["1", "2"], "text": ["mail a@b.org", "nothing here"]})
    outcome = apply(table, DEFAULTS)
    assert outcome.kept.to_pydict() == {"id": ["1", "2"], "text": ["mail email@example.com", "nothing here"]}
    assert outcome.dropped.num_rows == 0
    assert outcome.counts == {"pii.emails": 1, "pii.ips": 0}


def test_config_needs_placeholders():
    with pytest.raises(ConfigError):
        PIIConfig(email_replacements=[])
