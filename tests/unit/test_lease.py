from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slogate.core.lease import decide, still_leader

T = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def lease(holder, renewed_s_ago, duration=15, transitions=0):
    renew = (T - timedelta(seconds=renewed_s_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "metadata": {"resourceVersion": "7"},
        "spec": {
            "holderIdentity": holder,
            "renewTime": renew,
            "leaseDurationSeconds": duration,
            "leaseTransitions": transitions,
        },
    }


@pytest.mark.parametrize(
    "current, action, holder",
    [
        pytest.param(None, "create", None, id="no-lease"),
        pytest.param(lease("a", 3), "renew", "a", id="we-hold-it"),
        pytest.param(lease("b", 3), "wait", "b", id="someone-else-fresh"),
        pytest.param(lease("b", 14.9), "wait", "b", id="just-before-expiry"),
        pytest.param(lease("b", 15), "takeover", "b", id="expired-exactly"),
        pytest.param(lease("b", 60), "takeover", "b", id="long-dead"),
        pytest.param(lease("", 1), "takeover", "", id="released"),
        pytest.param(lease("b", 20, duration=30), "wait", "b", id="holder-declared-longer-lease"),
    ],
)
def test_decide(current, action, holder):
    act = decide(current, identity="a", now=T, duration=15)
    assert (act.action, act.holder) == (action, holder)
    if action != "wait":
        assert act.spec["holderIdentity"] == "a" and act.spec["renewTime"] == "2026-11-22T12:00:00.000000Z"


def test_takeover_counts_transitions_and_renew_keeps_acquire_time():
    assert (
        decide(lease("b", 60, transitions=2), identity="a", now=T, duration=15).spec["leaseTransitions"] == 3
    )
    held = lease("a", 3)
    held["spec"]["acquireTime"] = "2026-11-22T11:00:00.000000Z"
    assert decide(held, identity="a", now=T, duration=15).spec["acquireTime"] == "2026-11-22T11:00:00.000000Z"


def test_a_holder_stops_acting_before_its_lease_can_expire():
    assert still_leader(T - timedelta(seconds=12), now=T, duration=15)
    assert not still_leader(T - timedelta(seconds=13), now=T, duration=15)  # 2 s margin
    assert not still_leader(None, now=T, duration=15)
