from __future__ import annotations

import doctest
from datetime import timedelta
from decimal import Decimal

import pytest

import slogate.api.types
import slogate.dev.bridge
import slogate.dev.nodes
from slogate.api.types import format_duration, parse_duration, parse_quantity


@pytest.mark.parametrize(
    "text, seconds",
    [("500ms", 0.5), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("1.5s", 1.5), ("2h", 7200), ("1m0s", 60)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "5 m", "-1s", "1d", "m5", "5M"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    "text, value",
    [
        ("8", Decimal(8)),
        ("500m", Decimal("0.5")),
        ("64Gi", Decimal(64 * 2**30)),
        ("1k", Decimal(1000)),
        ("0.5", Decimal("0.5")),
        ("2M", Decimal(2_000_000)),
    ],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "Gi", "1 Gi", "1gi", "-1", "1e3x"])
def test_parse_quantity_rejects(text):
    with pytest.raises(ValueError):
        parse_quantity(text)


@pytest.mark.parametrize(
    "seconds, text", [(90, "1m30s"), (0.25, "250ms"), (3600, "1h"), (0, "0s"), (3661, "1h1m1s")]
)
def test_format_duration_round_trips(seconds, text):
    assert format_duration(timedelta(seconds=seconds)) == text
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "module", [slogate.api.types, slogate.dev.nodes, slogate.dev.bridge], ids=lambda m: m.__name__
)
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
