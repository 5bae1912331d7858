"""Leader election on a coordination.k8s.io/v1 Lease: who may act, decided from the Lease. Pure.

One operator replica holds the Lease and reconciles; the others watch and wait. The holder renews
every ``renew`` seconds; a Lease not renewed for ``duration`` seconds is expired and the first
standby to update it (optimistic concurrency on resourceVersion) becomes the leader. So a standby
takes over within ``duration + retry`` seconds of the leader's death, and two replicas are never
active at once: a holder that cannot renew before its own deadline stops acting first.
Consumed by ``controller.leader``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slogate.core.timefmt import parse_rfc3339, rfc3339_micro


@dataclass(frozen=True)
class LeaseAction:
    """What to do with the Lease now."""

    action: str
    """``create``, ``renew``, ``takeover`` or ``wait``."""
    spec: dict[str, Any] | None
    """The Lease spec to write (None for ``wait``)."""
    holder: str | None
    """Who holds it now (before the write)."""


def decide(lease: dict[str, Any] | None, *, identity: str, now: datetime, duration: int) -> LeaseAction:
    """The next step for ``identity``. Pure.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> decide(None, identity="a", now=t, duration=15).action
    'create'
    >>> held = {"spec": {"holderIdentity": "b", "renewTime": "2026-01-01T00:00:00.000000Z", "leaseDurationSeconds": 15}}
    >>> decide(held, identity="a", now=t + timedelta(seconds=10), duration=15).action
    'wait'
    >>> decide(held, identity="a", now=t + timedelta(seconds=16), duration=15).action
    'takeover'
    """
    fresh = {
        "holderIdentity": identity,
        "leaseDurationSeconds": duration,
        "acquireTime": rfc3339_micro(now),
        "renewTime": rfc3339_micro(now),
        "leaseTransitions": 0,
    }
    if lease is None:
        return LeaseAction("create", fresh, None)
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity")
    renewed = parse_rfc3339(spec.get("renewTime")) or parse_rfc3339(spec.get("acquireTime"))
    lease_for = int(spec.get("leaseDurationSeconds") or duration)
    if holder == identity:
        return LeaseAction(
            "renew", {**spec, "renewTime": rfc3339_micro(now), "leaseDurationSeconds": duration}, holder
        )
    if not holder or renewed is None or now >= renewed + timedelta(seconds=lease_for):
        transitions = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
        return LeaseAction("takeover", {**fresh, "leaseTransitions": transitions}, holder)
    return LeaseAction("wait", None, holder)


def still_leader(last_renewed: datetime | None, *, now: datetime, duration: int, margin: float = 2.0) -> bool:
    """Whether a holder may keep acting: it renewed less than ``duration - margin`` seconds ago.
    Stopping *before* the Lease can expire means two replicas are never active at once. Pure."""
    return last_renewed is not None and now < last_renewed + timedelta(seconds=duration - margin)
