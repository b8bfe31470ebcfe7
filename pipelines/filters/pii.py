"""Personal data: replace e-mail addresses and public IP addresses by placeholders.

FineWeb's last step (Penedo et al. 2024, arXiv:2406.17557, section 3.7), as datatrove's PIIFormatter
(0.10.1): the same patterns, private and reserved IP addresses (192.168.x.x, 10.x.x.x, 127.0.0.1, ...)
left alone, placeholders taken in turn from a list. Nothing is dropped; the counts of replacements are
reported. Unlike datatrove, whose turn carries over from one document to the next, each document starts
with the first placeholder, so a document's result does not depend on what came before it.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import cycle

import pyarrow as pa

from common.config import ConfigError
from pipelines.filters.base import FilterOutcome, apply_document_rewrite

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
_LOCAL_CHAR = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
# An address's local part, then a domain name or an IP address in brackets (RFC 5322, without quoting).
EMAIL = re.compile(
    rf"\b{_LOCAL_CHAR}+(?:\.{_LOCAL_CHAR}+)*@"
    rf"(?:(?:{_LABEL}\.)+{_LABEL}|\[(?:{_OCTET}\.){{3}}(?:{_OCTET}|[A-Za-z0-9-]*[A-Za-z0-9]:)])"
)
IP_ADDRESS = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")  # IPv4 dotted quad (as datatrove: no IPv6)
# Found wherever IP_ADDRESS matches, and much faster to search for (it starts with a character set).
_IP_HINT = re.compile(r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]")


@dataclass(kw_only=True)
class PIIConfig:
    """What to replace, and by what (defaults: datatrove's PIIFormatter)."""

    remove_emails: bool = True
    """Replace e-mail addresses."""

    remove_ips: bool = True
    """Replace IPv4 addresses."""

    only_remove_public_ips: bool = True
    """Leave private, loopback and reserved addresses (192.168.0.1, 10.0.0.1, 127.0.0.1) alone: they
    identify no one, and documentation is full of them."""

    email_replacements: list[str] = field(
        default_factory=lambda: ["email@example.com", "firstname.lastname@example.org"]
    )
    """Placeholders for e-mail addresses, used in turn (example.com and .org are reserved for examples)."""

    ip_replacements: list[str] = field(
        default_factory=lambda: [
            "22.214.171.124",
            "126.96.36.199",
            "188.8.131.52",
            "184.108.40.206",
            "220.127.116.11",
            "18.104.22.168",
        ]
    )
    """Placeholders for IP addresses, used in turn (datatrove's: addresses that answered no ping)."""

    def __post_init__(self) -> None:
        if not self.email_replacements or not self.ip_replacements:
            raise ConfigError("pii: email_replacements and ip_replacements need at least one placeholder each")


def _is_replaced_ip(address: str, only_public: bool) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:  # "01.2.3.4": leading zeros make no address for ipaddress (nor for datatrove)
        return False
    return parsed.is_global or not only_public


def redact(text: str, config: PIIConfig) -> tuple[str, int, int]:
    """(text with e-mail and IP addresses replaced, e-mails replaced, IP addresses replaced)."""
    emails = ips = 0
    if config.remove_emails and "@" in text:  # the pattern is slow to fail: don't try where it can't match
        email_placeholders = cycle(config.email_replacements)
        text, emails = EMAIL.subn(lambda _: next(email_placeholders), text)
    if config.remove_ips and _IP_HINT.search(text):
        placeholders = cycle(config.ip_replacements)

        def replace_ip(match: re.Match) -> str:
            nonlocal ips
            if not _is_replaced_ip(match.group(), config.only_remove_public_ips):
                return match.group()
            ips += 1
            return next(placeholders)

        text = IP_ADDRESS.sub(replace_ip, text)
    return text, emails, ips


Config = PIIConfig  # the name the registry reads from every filter (pipelines/filters/__init__.py)


def apply(table: pa.Table, config: PIIConfig) -> FilterOutcome:
    """Replace e-mail and public IP addresses in each row's `text`; counts `pii.emails` and `pii.ips`."""

    def rewrite(text: str, counts: Counter) -> tuple[str, None]:
        text, emails, ips = redact(text, config)
        counts["pii.emails"] += emails
        counts["pii.ips"] += ips
        return text, None

    return apply_document_rewrite(table, rewrite)
