"""Fallback decisions (``slogate.core.fallback``), driven tick by tick.

Like flagger's scheduler tests, each test is a script: for every tick the inputs (time, primary
health, tier health) and the exact state, Event and reason after it. Each tick's ``as_status()`` is
fed to the next as ``previous``, as the controller does through ``status.fallback``; restart safety
means feeding a tick its own output again changes nothing.
"""

from __future__ import annotations

import copy
import doctest
import json
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest

import slogate.core.fallback
from slogate.api.v1alpha1 import Fallback, FallbackStatus, FallbackTarget
from slogate.core.fallback import (
    FallbackDecision,
    TierHealth,
    decide_fallback,
    find_target,
    target_id,
)

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SMALL = "modelDeployment/llama-small"
OPENAI = "service/openai"
FALLBACK = Fallback.model_validate(
    {
        "targets": [{"modelDeployment": "llama-small"}, {"service": {"name": "openai", "port": 443}}],
        "after": "2m",
        "restoreAfter": "10m",
    }
)
SLOW = "ttft p95 612ms > 500ms"
WORSE = "ttft p95 650ms > 500ms"
NRR = "no ready replica"
REFUSED = "connection refused"
ACT, SWITCH = "Warning/FallbackActivated", "Warning/FallbackSwitched"
RESTORE, UNAVAIL = "Normal/FallbackRestored", "Warning/FallbackUnavailable"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ts(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Tick(NamedTuple):
    """One tick of a script: inputs, then the expected outcome."""

    t: float
    primary: str | None
    """``None`` for healthy, else the primary's reason."""
    small: bool | str
    """True for healthy, else the tier's reason."""
    openai: bool | str
    active: bool
    target: str | None
    since: int | None
    unhealthy_since: int | None
    healthy_since: int | None
    changed: bool
    event: str | None
    """``Type/Reason`` of the Event, if any."""


def tiers(small: bool | str, openai: bool | str) -> list[TierHealth]:
    return [
        TierHealth(SMALL, small is True, "" if small is True else str(small)),
        TierHealth(OPENAI, openai is True, "" if openai is True else str(openai)),
    ]


def run(
    script: list[Tick], fallback: Fallback | None = FALLBACK, previous: dict | None = None
) -> list[FallbackDecision]:
    """Run ``script``, asserting every tick; return the decisions."""
    out = []
    for i, tick in enumerate(script):
        d = decide_fallback(
            fallback=fallback,
            previous=previous,
            primary_healthy=tick.primary is None,
            primary_reason=tick.primary or "",
            tiers=tiers(tick.small, tick.openai),
            now=at(tick.t),
        )
        got = (
            d.active,
            d.target,
            d.since,
            d.unhealthy_since,
            d.healthy_since,
            d.changed,
            f"{d.event[0]}/{d.event[1]}" if d.event else None,
        )
        want = (
            tick.active,
            tick.target,
            None if tick.since is None else ts(tick.since),
            None if tick.unhealthy_since is None else ts(tick.unhealthy_since),
            None if tick.healthy_since is None else ts(tick.healthy_since),
            tick.changed,
            tick.event,
        )
        assert got == want, f"tick {i} at t={tick.t}s"
        previous = d.as_status()
        out.append(d)
    return out


# Tick(t, primary, small, openai | active, target, since, unhealthySince, healthySince, changed, event);
# times in seconds from T0 = 12:00:00Z
TIMELINE = [
    Tick(0, None, True, True, False, None, None, None, None, False, None),
    Tick(60, SLOW, True, True, False, None, None, 60, None, True, None),
    Tick(120, "ttft p95 640ms > 500ms", True, True, False, None, None, 60, None, False, None),
    Tick(179, SLOW, True, True, False, None, None, 60, None, False, None),
    Tick(180, WORSE, True, True, True, SMALL, 180, 60, None, True, ACT),
    Tick(240, SLOW, True, True, True, SMALL, 180, 60, None, False, None),
    Tick(300, SLOW, NRR, True, True, OPENAI, 300, 60, None, True, SWITCH),
    Tick(330, SLOW, True, True, True, OPENAI, 300, 60, None, False, None),  # no move back to tier 0
    Tick(360, None, True, True, True, OPENAI, 300, None, 360, True, None),
    Tick(600, None, True, True, True, OPENAI, 300, None, 360, False, None),
    Tick(660, NRR, True, True, True, OPENAI, 300, 660, None, True, None),  # blip resets
    Tick(720, None, True, True, True, OPENAI, 300, None, 720, True, None),
    Tick(1319, None, True, True, True, OPENAI, 300, None, 720, False, None),
    Tick(1320, None, True, True, False, None, None, None, None, True, RESTORE),
    Tick(1380, None, True, True, False, None, None, None, None, False, None),
]


def test_timeline():
    d = run(TIMELINE)
    assert [x.message for x in d] == [
        "",
        "Primary unhealthy since 2026-03-01T12:01:00Z; falls back after 2m unless it recovers: "
        "ttft p95 612ms > 500ms",
        "Primary unhealthy since 2026-03-01T12:01:00Z; falls back after 2m unless it recovers: "
        "ttft p95 612ms > 500ms",
        "Primary unhealthy since 2026-03-01T12:01:00Z; falls back after 2m unless it recovers: "
        "ttft p95 612ms > 500ms",
        "Traffic on modelDeployment/llama-small since 2026-03-01T12:03:00Z; primary unhealthy since "
        "2026-03-01T12:01:00Z: ttft p95 650ms > 500ms",
        "Traffic on modelDeployment/llama-small since 2026-03-01T12:03:00Z; primary unhealthy since "
        "2026-03-01T12:01:00Z: ttft p95 650ms > 500ms",
        "Traffic on service/openai since 2026-03-01T12:05:00Z; primary unhealthy since "
        "2026-03-01T12:01:00Z: ttft p95 612ms > 500ms",
        "Traffic on service/openai since 2026-03-01T12:05:00Z; primary unhealthy since "
        "2026-03-01T12:01:00Z: ttft p95 612ms > 500ms",
        "Traffic on service/openai since 2026-03-01T12:05:00Z; primary healthy since "
        "2026-03-01T12:06:00Z, traffic returns after 10m of health",
        "Traffic on service/openai since 2026-03-01T12:05:00Z; primary healthy since "
        "2026-03-01T12:06:00Z, traffic returns after 10m of health",
        "Traffic on service/openai since 2026-03-01T12:05:00Z; primary unhealthy since "
        "2026-03-01T12:11:00Z: no ready replica",
        "Traffic on service/openai since 2026-03-01T12:05:00Z; primary healthy since "
        "2026-03-01T12:12:00Z, traffic returns after 10m of health",
        "Traffic on service/openai since 2026-03-01T12:05:00Z; primary healthy since "
        "2026-03-01T12:12:00Z, traffic returns after 10m of health",
        "",
        "",
    ]
    assert [x.event for x in d if x.event] == [
        (
            "Warning",
            "FallbackActivated",
            "Primary unhealthy for 2m (ttft p95 650ms > 500ms): traffic moves to modelDeployment/llama-small",
        ),
        (
            "Warning",
            "FallbackSwitched",
            "modelDeployment/llama-small is unhealthy (no ready replica): traffic moves to service/openai",
        ),
        (
            "Normal",
            "FallbackRestored",
            "Primary healthy for 10m: traffic returns from service/openai to the primary",
        ),
    ]


def test_recovery_before_after_resets_the_countdown():
    run(
        [
            Tick(0, SLOW, True, True, False, None, None, 0, None, True, None),
            Tick(110, None, True, True, False, None, None, None, None, True, None),
            Tick(130, SLOW, True, True, False, None, None, 130, None, True, None),
            Tick(240, SLOW, True, True, False, None, None, 130, None, False, None),  # 110s, not 2m from 0
            Tick(250, SLOW, True, True, True, SMALL, 250, 130, None, True, ACT),
        ]
    )


def test_all_tiers_unhealthy_stays_on_primary_and_says_so_once():
    d = run(
        [
            Tick(0, SLOW, NRR, REFUSED, False, None, None, 0, None, True, None),
            Tick(120, SLOW, NRR, REFUSED, False, None, None, 0, None, True, UNAVAIL),
            Tick(180, SLOW, NRR, "timeout", False, None, None, 0, None, False, None),
            Tick(240, SLOW, NRR, True, True, OPENAI, 240, 0, None, True, ACT),
        ]
    )
    assert d[1].message == (
        "Primary unhealthy since 2026-03-01T12:00:00Z and no fallback tier is healthy; traffic stays on the "
        "primary: modelDeployment/llama-small: no ready replica; service/openai: connection refused"
    )
    assert d[1].event == (
        "Warning",
        "FallbackUnavailable",
        "Primary unhealthy for 2m (ttft p95 612ms > 500ms) but no fallback tier is healthy "
        "(modelDeployment/llama-small: no ready replica; service/openai: connection refused): "
        "traffic stays on the primary",
    )
    assert d[2].message == d[1].message  # the tiers' new words do not rewrite status
    assert d[3].event == (
        "Warning",
        "FallbackActivated",
        "Primary unhealthy for 4m (ttft p95 612ms > 500ms): traffic moves to service/openai "
        "(skipped modelDeployment/llama-small: no ready replica)",
    )


def test_active_tier_fails_with_no_other_healthy_tier_stays():
    d = run(
        [
            Tick(0, SLOW, True, "down", False, None, None, 0, None, True, None),
            Tick(120, SLOW, True, "down", True, SMALL, 120, 0, None, True, ACT),
            Tick(180, SLOW, NRR, "down", True, SMALL, 120, 0, None, True, UNAVAIL),
            Tick(240, SLOW, NRR, "down", True, SMALL, 120, 0, None, False, None),
            Tick(300, SLOW, True, "down", True, SMALL, 120, 0, None, True, None),
        ]
    )
    assert d[2].event == (
        "Warning",
        "FallbackUnavailable",
        "modelDeployment/llama-small is unhealthy (no ready replica) and no other fallback tier is healthy: "
        "traffic stays on modelDeployment/llama-small",
    )


def test_active_tier_fails_while_primary_recovers_returns_early():
    d = run(
        [
            Tick(0, SLOW, True, "down", False, None, None, 0, None, True, None),
            Tick(120, SLOW, True, "down", True, SMALL, 120, 0, None, True, ACT),
            Tick(180, None, True, "down", True, SMALL, 120, None, 180, True, None),
            Tick(240, None, NRR, "down", False, None, None, None, None, True, RESTORE),
        ]
    )
    assert d[3].event == (
        "Normal",
        "FallbackRestored",
        "modelDeployment/llama-small is unhealthy (no ready replica) and no other fallback tier is healthy; "
        "the primary is healthy again: traffic returns to the primary",
    )


def test_switch_keeps_the_restore_countdown():
    run(
        [
            Tick(0, SLOW, True, True, False, None, None, 0, None, True, None),
            Tick(120, SLOW, True, True, True, SMALL, 120, 0, None, True, ACT),
            Tick(180, None, True, True, True, SMALL, 120, None, 180, True, None),
            Tick(240, None, "down", True, True, OPENAI, 240, None, 180, True, SWITCH),
            Tick(780, None, True, True, False, None, None, None, None, True, RESTORE),
        ]
    )


def test_active_target_removed_from_spec():
    only_openai = Fallback.model_validate({"targets": [{"service": {"name": "openai", "port": 443}}]})
    active_small = {"active": True, "target": SMALL, "since": ts(0), "reason": "x", "unhealthySince": ts(0)}
    d = decide_fallback(
        fallback=only_openai,
        previous=active_small,
        primary_healthy=False,
        primary_reason=SLOW,
        tiers=tiers(True, True),
        now=at(60),
    )
    assert (d.active, d.target, d.since, d.event) == (
        True,
        OPENAI,
        ts(60),
        (
            "Warning",
            "FallbackSwitched",
            "modelDeployment/llama-small is unhealthy (no longer in spec.fallback.targets): traffic moves to service/openai",
        ),
    )
    d = decide_fallback(
        fallback=only_openai,
        previous=active_small,
        primary_healthy=False,
        primary_reason=SLOW,
        tiers=tiers(True, "down"),
        now=at(60),
    )
    assert (d.active, d.target, d.unhealthy_since, d.event[:2]) == (
        False,
        None,
        ts(0),
        ("Warning", "FallbackUnavailable"),
    )


def test_zero_after_falls_back_at_once():
    eager = Fallback.model_validate({"targets": [{"modelDeployment": "llama-small"}], "after": "0s"})
    d = decide_fallback(
        fallback=eager,
        previous=None,
        primary_healthy=False,
        primary_reason="no ready replica",
        tiers=tiers(True, True),
        now=at(0),
    )
    assert (d.active, d.target, d.event) == (
        True,
        SMALL,
        (
            "Warning",
            "FallbackActivated",
            "Primary unhealthy for 0s (no ready replica): traffic moves to modelDeployment/llama-small",
        ),
    )


def test_tier_without_health_counts_as_unhealthy():
    d = decide_fallback(
        fallback=FALLBACK,
        previous={"unhealthySince": ts(0)},
        primary_healthy=False,
        primary_reason=SLOW,
        tiers=[TierHealth(OPENAI, True)],
        now=at(120),
    )
    assert (d.target, d.event[2]) == (
        OPENAI,
        "Primary unhealthy for 2m (ttft p95 612ms > 500ms): traffic moves to service/openai "
        "(skipped modelDeployment/llama-small: no health reported)",
    )


# ------------------------------------------------------------------------------- no fallback


@pytest.mark.parametrize("primary_healthy", [True, False], ids=["healthy", "unhealthy"])
@pytest.mark.parametrize("previous", [None, {}], ids=["no-status", "empty-status"])
def test_no_fallback_configured(primary_healthy, previous):
    d = decide_fallback(
        fallback=None,
        previous=previous,
        primary_healthy=primary_healthy,
        primary_reason=SLOW,
        tiers=[],
        now=at(0),
    )
    assert d == FallbackDecision(False, None, None, None, None, False, None, "")


def test_fallback_removed_while_active_returns_at_once():
    previous = {"active": True, "target": SMALL, "since": ts(0), "reason": "x", "unhealthySince": ts(0)}
    d = decide_fallback(
        fallback=None, previous=previous, primary_healthy=False, primary_reason=SLOW, tiers=[], now=at(60)
    )
    assert (d.active, d.changed, d.as_status()) == (
        False,
        True,
        {
            "active": False,
            "target": None,
            "since": None,
            "reason": "",
            "unhealthySince": None,
            "healthySince": None,
        },
    )
    assert d.event == (
        "Normal",
        "FallbackRestored",
        "spec.fallback was removed: traffic returns from modelDeployment/llama-small to the primary",
    )


def test_no_fallback_clears_stale_countdown():
    d = decide_fallback(
        fallback=None,
        previous={"unhealthySince": ts(0)},
        primary_healthy=False,
        primary_reason=SLOW,
        tiers=[],
        now=at(60),
    )
    assert (d.changed, d.unhealthy_since, d.event) == (True, None, None)


# ----------------------------------------------------------------------------- restart safety


def _replay_cases() -> list[Any]:
    """Every tick of the timeline, with the previous status it saw."""
    cases, previous = [], None
    for i, tick in enumerate(TIMELINE):
        cases.append(pytest.param(tick, previous, id=f"tick-{i}-t{tick.t}"))
        d = decide_fallback(
            fallback=FALLBACK,
            previous=previous,
            primary_healthy=tick.primary is None,
            primary_reason=tick.primary or "",
            tiers=tiers(tick.small, tick.openai),
            now=at(tick.t),
        )
        previous = d.as_status()
    return cases


@pytest.mark.parametrize(("tick", "previous"), _replay_cases())
def test_rerunning_a_tick_with_its_own_output_changes_nothing(tick, previous):
    def decide(prev):
        return decide_fallback(
            fallback=FALLBACK,
            previous=prev,
            primary_healthy=tick.primary is None,
            primary_reason=tick.primary or "",
            tiers=tiers(tick.small, tick.openai),
            now=at(tick.t),
        )

    first = decide(previous)
    written = json.loads(json.dumps(first.as_status()))  # through the API server and back
    again = decide(written)
    assert (again.changed, again.event) == (False, None)
    assert again.as_status() == first.as_status()


@pytest.mark.parametrize(("tick", "previous"), _replay_cases())
def test_status_survives_the_status_model(tick, previous):
    """``as_status()`` read back through ``FallbackStatus`` (nulls dropped, as the API server prunes them)."""

    def decide(prev):
        return decide_fallback(
            fallback=FALLBACK,
            previous=prev,
            primary_healthy=tick.primary is None,
            primary_reason=tick.primary or "",
            tiers=tiers(tick.small, tick.openai),
            now=at(tick.t),
        )

    first = decide(previous)
    model = FallbackStatus.model_validate(first.as_status())
    again = decide(model.model_dump(mode="json", by_alias=True, exclude_none=True))
    assert (again.changed, again.event, again.as_status()) == (False, None, first.as_status())


def test_restart_within_the_second_does_not_shift_timestamps():
    d = decide_fallback(
        fallback=FALLBACK,
        previous=None,
        primary_healthy=False,
        primary_reason=SLOW,
        tiers=tiers(True, True),
        now=at(60.9),
    )
    assert d.unhealthy_since == ts(60)
    d2 = decide_fallback(
        fallback=FALLBACK,
        previous=d.as_status(),
        primary_healthy=False,
        primary_reason=SLOW,
        tiers=tiers(True, True),
        now=at(179.9),
    )
    assert (d2.active, d2.changed) == (False, False)  # 119s held, not 120s
    d3 = decide_fallback(
        fallback=FALLBACK,
        previous=d.as_status(),
        primary_healthy=False,
        primary_reason=SLOW,
        tiers=tiers(True, True),
        now=at(180.0),
    )
    assert d3.active


def test_unreadable_timestamp_restarts_the_countdown():
    d = decide_fallback(
        fallback=FALLBACK,
        previous={"unhealthySince": "yesterday"},
        primary_healthy=False,
        primary_reason=SLOW,
        tiers=tiers(True, True),
        now=at(600),
    )
    assert (d.active, d.unhealthy_since, d.changed) == (False, ts(600), True)


def test_inputs_not_mutated():
    previous = {
        "active": True,
        "target": SMALL,
        "since": ts(0),
        "reason": "x",
        "unhealthySince": ts(0),
        "extra": [1],
    }
    tier_list = tiers("down", True)
    before = (copy.deepcopy(previous), copy.deepcopy(tier_list), FALLBACK.model_dump())
    decide_fallback(
        fallback=FALLBACK,
        previous=previous,
        primary_healthy=True,
        primary_reason="",
        tiers=tier_list,
        now=at(60),
    )
    assert (previous, tier_list, FALLBACK.model_dump()) == before


def test_naive_now_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        decide_fallback(
            fallback=FALLBACK,
            previous=None,
            primary_healthy=True,
            primary_reason="",
            tiers=[],
            now=datetime(2026, 3, 1, 12, 0, 0),
        )


def test_status_keys():
    d = run([Tick(0, SLOW, True, True, False, None, None, 0, None, True, None)])[0]
    assert d.as_status() == {
        "active": False,
        "target": None,
        "since": None,
        "reason": "Primary unhealthy since 2026-03-01T12:00:00Z; falls back after 2m unless it recovers: "
        "ttft p95 612ms > 500ms",
        "unhealthySince": "2026-03-01T12:00:00Z",
        "healthySince": None,
    }


# ---------------------------------------------------------------------------------- targets


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param(
            {"modelDeployment": "llama-small"}, "modelDeployment/llama-small", id="model-deployment"
        ),
        pytest.param({"service": {"name": "openai"}}, "service/openai", id="service"),
        pytest.param(
            {"service": {"name": "openai", "namespace": "egress"}}, "service/egress/openai", id="service-ns"
        ),
    ],
)
def test_target_id(target, expected):
    assert target_id(FallbackTarget.model_validate(target)) == expected


def test_find_target():
    assert find_target(FALLBACK, OPENAI) == FALLBACK.targets[1]
    assert find_target(FALLBACK, "service/nope") is None
    assert find_target(None, OPENAI) is None
    assert find_target(FALLBACK, None) is None


def test_doctests():
    result = doctest.testmod(slogate.core.fallback)
    assert result.attempted > 0
    assert result.failed == 0
