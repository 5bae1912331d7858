"""The one place timestamps are written and read: RFC 3339 in UTC. Pure.

Every time slogate keeps in ``status`` (``lastTransitionTime``, ``stepStartedAt``, ``fallback.since``,
``cost.time``, ...) is written by ``rfc3339`` with second precision and a ``Z``; a Lease's
``acquireTime`` and ``renewTime`` are MicroTimes, written by ``rfc3339_micro``. ``parse_rfc3339``
reads both back. A time without an offset is refused on the way out (``ValueError``: pass
``datetime.now(UTC)``) and ignored on the way in (``None``), so a naive and an aware datetime are
never compared. Durations (``5m``, ``1h30m``) are another format: ``api.types.parse_duration``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (pass datetime.now(UTC))")
    return now.astimezone(UTC)


def rfc3339(now: datetime) -> str:
    """``now`` as an RFC 3339 UTC timestamp with second precision and a ``Z``. Pure.

    >>> rfc3339(datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC))
    '2026-01-02T03:04:05Z'
    """
    return _utc(now).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(now: datetime) -> str:
    """``now`` as a Kubernetes MicroTime: RFC 3339 UTC with microseconds and a ``Z``. Pure.

    >>> rfc3339_micro(datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC))
    '2026-01-02T03:04:05.000678Z'
    """
    return _utc(now).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(value: Any) -> datetime | None:
    """A timezone-aware time from an RFC 3339 timestamp, or ``None`` when it is absent, unreadable
    or has no offset. Pure; the reverse of ``rfc3339`` and ``rfc3339_micro``.

    >>> parse_rfc3339("2026-01-02T03:04:05Z")
    datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    >>> parse_rfc3339("2026-01-02T03:04:05.000678Z").microsecond
    678
    >>> parse_rfc3339("2026-01-02T03:04:05"), parse_rfc3339("yesterday"), parse_rfc3339(None)
    (None, None, None)
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None
