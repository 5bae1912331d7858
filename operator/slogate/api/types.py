"""Wire types shared by the API models: durations, quantities, and their parsers.

Kubernetes writes durations as strings (``90s``, ``5m``, ``1h30m``) and resource amounts as
quantity strings (``8``, ``500m``, ``64Gi``). The patterns here become the CRD's ``pattern``
fields, so the API server and ``slogate validate`` reject the same strings; the parsers are pure
and used by the core to compare times and compute costs.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated

from pydantic import Field

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
QUANTITY_PATTERN = r"^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]
"""A duration such as ``500ms``, ``90s``, ``5m`` or ``1h30m``."""

Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=32)]
"""A Kubernetes quantity such as ``8``, ``500m`` or ``64Gi``."""

DNSLabel = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, max_length=63)]
DNSSubdomain = Annotated[str, Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253)]

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}
_QUANTITY_SUFFIX = {
    "m": Decimal("0.001"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def parse_duration(text: str) -> timedelta:
    """Parse a Kubernetes-style duration. Pure.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    >>> parse_duration("500ms").total_seconds()
    0.5
    """
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"invalid duration {text!r}: use a number with ms, s, m or h, such as 90s or 5m")
    seconds = sum(Decimal(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    return timedelta(seconds=float(seconds))


def parse_quantity(text: str) -> Decimal:
    """Parse a Kubernetes quantity into a plain number. Pure.

    >>> parse_quantity("64Gi") == 64 * 2**30
    True
    >>> parse_quantity("500m")
    Decimal('0.500')
    """
    m = re.fullmatch(QUANTITY_PATTERN, text)
    if not m:
        raise ValueError(f"invalid quantity {text!r}")
    number = m.group(1)
    suffix = m.group(3) or ""
    return Decimal(number) * _QUANTITY_SUFFIX[suffix]


def format_duration(td: timedelta) -> str:
    """Format a timedelta the way the API writes durations (largest units first). Pure.

    >>> format_duration(timedelta(seconds=90))
    '1m30s'
    >>> format_duration(timedelta(milliseconds=250))
    '250ms'
    """
    ms = round(td.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            parts.append(f"{s // size}{unit}")
            s %= size
    return "".join(parts)
