"""When traffic moves to a fallback tier, and when it returns. Pure.

``decide_fallback`` is a small state machine over ``status.fallback``: the primary must stay
unhealthy for ``fallback.after`` before traffic moves to the first healthy tier, and healthy for
``fallback.restoreAfter`` before it returns (hysteresis, so a flapping primary does not flap the
traffic). Everything the machine remembers is in the returned value, which the controller writes
to ``status.fallback``, so an operator restart resumes the same countdowns. The decision is split
from routing (``core.traffic``) and from measuring health (the controller's SLO analysis and
readiness), so it can be driven tick by tick in tests with ``now`` as an argument.
See docs/traffic-and-fallback.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from slogate.api.types import format_duration, parse_duration
from slogate.api.v1alpha1 import Fallback, FallbackTarget
from slogate.core.timefmt import parse_rfc3339, rfc3339
from slogate.core.vocabulary import Event, Events


@dataclass(frozen=True)
class TierHealth:
    """Health of one fallback tier, as the controller observed it."""

    target: str
    """``modelDeployment/NAME`` or ``service/NAME`` (``target_id``)."""
    healthy: bool
    """Whether the tier can take traffic now."""
    reason: str = ""
    """Why not, in words (``no ready replica``)."""


@dataclass(frozen=True)
class FallbackDecision:
    """Where traffic goes now, and the state to remember. ``as_status()`` is ``status.fallback``."""

    active: bool
    """A fallback tier takes traffic."""
    target: str | None
    """The active tier (``target_id``), ``None`` when the primary serves."""
    since: str | None
    """When the active tier took traffic (RFC 3339), ``None`` when the primary serves."""
    unhealthy_since: str | None
    """Start of the primary's current unhealthy streak, ``None`` while it is healthy."""
    healthy_since: str | None
    """While a tier is active: start of the primary's current healthy streak."""
    changed: bool
    """Whether ``as_status()`` differs from the previous status (the controller writes only then)."""
    event: Event | None
    """The Event to post (``Events.FALLBACK_*``), if this tick switched something."""
    message: str
    """Why traffic is where it is; ``status.fallback.reason``. Empty when the primary is healthy."""

    def as_status(self) -> dict[str, Any]:
        """``status.fallback`` as a camelCase dict."""
        return {
            "active": self.active,
            "target": self.target,
            "since": self.since,
            "reason": self.message,
            "unhealthySince": self.unhealthy_since,
            "healthySince": self.healthy_since,
        }


def target_id(t: FallbackTarget) -> str:
    """``modelDeployment/NAME``, ``service/NAME`` or, for a Service in another namespace,
    ``service/NAMESPACE/NAME``. Pure; consumed by the controller (``TierHealth.target``) and
    ``decide_fallback``.

    >>> target_id(FallbackTarget(model_deployment="llama-small"))
    'modelDeployment/llama-small'
    >>> target_id(FallbackTarget.model_validate({"service": {"name": "openai", "namespace": "egress"}}))
    'service/egress/openai'
    """
    if t.model_deployment is not None:
        return f"modelDeployment/{t.model_deployment}"
    if t.service is not None:
        if t.service.namespace:
            return f"service/{t.service.namespace}/{t.service.name}"
        return f"service/{t.service.name}"
    raise ValueError("a fallback target sets exactly one of modelDeployment or service")


def find_target(fallback: Fallback | None, target: str | None) -> FallbackTarget | None:
    """The configured tier whose ``target_id`` is ``target``, or ``None``. Pure; consumed by the
    controller to route to the tier ``decide_fallback`` chose."""
    if fallback is None or target is None:
        return None
    return next((t for t in fallback.targets if target_id(t) == target), None)


# ----------------------------------------------------------------------------------- helpers

_EMPTY: Final[dict[str, Any]] = {
    "active": False,
    "target": None,
    "since": None,
    "reason": "",
    "unhealthySince": None,
    "healthySince": None,
}


def _normalise(previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """``previous`` with every key present (missing ones at their defaults) and nothing else."""
    prev = previous or {}
    out = {k: prev.get(k, v) for k, v in _EMPTY.items()}
    out["active"] = bool(out["active"])
    out["reason"] = out["reason"] or ""
    return out


def _held(start: datetime, now: datetime) -> timedelta:
    """Whole seconds from ``start`` to ``now`` (status timestamps have second precision)."""
    return timedelta(seconds=max(0, math.floor((now - start).total_seconds())))


def _tiers_text(ids: Sequence[str], health: Mapping[str, TierHealth]) -> str:
    return "; ".join(f"{i}: {health[i].reason or 'unhealthy'}" for i in ids)


def _with_detail(head: str, detail: str) -> str:
    return f"{head}: {detail}" if detail else head


@dataclass(frozen=True)
class _Next:
    """The next state before the message-keeping rule is applied."""

    active: bool
    target: str | None
    since: str | None
    unhealthy_since: str | None
    healthy_since: str | None
    head: str
    """The stable part of the reason: it names the situation and changes only when the situation does."""
    detail: str = ""
    """What was observed when the situation began (the primary's reason, the tiers' reasons)."""
    event: Event | None = None


def _finish(nxt: _Next, prev: dict[str, Any]) -> FallbackDecision:
    """Keep the previous reason while the situation is the same, so that a primary reason whose
    numbers move every tick (``ttft p95 612ms``, then ``640ms``) does not cause a status write."""
    same_state = (nxt.active, nxt.target, nxt.since, nxt.unhealthy_since, nxt.healthy_since) == (
        prev["active"],
        prev["target"],
        prev["since"],
        prev["unhealthySince"],
        prev["healthySince"],
    )
    old_reason = prev["reason"]
    if same_state and (old_reason == nxt.head or old_reason.startswith(nxt.head + ": ")):
        message = old_reason
    else:
        message = _with_detail(nxt.head, nxt.detail)
    decision = FallbackDecision(
        active=nxt.active,
        target=nxt.target,
        since=nxt.since,
        unhealthy_since=nxt.unhealthy_since,
        healthy_since=nxt.healthy_since,
        changed=False,
        event=nxt.event,
        message=message,
    )
    return replace(decision, changed=decision.as_status() != prev)


# ---------------------------------------------------------------------------------- decision


def decide_fallback(
    *,
    fallback: Fallback | None,
    previous: Mapping[str, Any] | None,
    primary_healthy: bool,
    primary_reason: str,
    tiers: Sequence[TierHealth],
    now: datetime,
) -> FallbackDecision:
    """Where traffic goes this tick. Pure; consumed by ``controller.reconcile``, which routes to
    ``target`` (``traffic.root_selector`` or ``traffic.build_httproute``), writes ``as_status()`` to
    ``status.fallback`` when ``changed`` and posts ``event``.

    Inputs: ``fallback`` (``spec.fallback``), ``previous`` (``status.fallback`` as written last time,
    camelCase, or ``None``; never mutated), ``primary_healthy`` and ``primary_reason`` (the caller
    decides: the primary is unhealthy when it breaches its SLO or has no Ready replica), ``tiers``
    (health of each configured tier; a tier without an entry counts as unhealthy) and ``now``.

    Rules, with ``U`` = ``unhealthySince`` and ``H`` = ``healthySince``:

    - On the primary: a healthy tick clears ``U``. An unhealthy tick sets ``U`` (if unset); once
      ``now - U >= after`` traffic moves to the first healthy tier in spec order (FallbackActivated).
      With no healthy tier it stays on the primary and says so once (FallbackUnavailable).
    - On a tier: an unhealthy primary tick clears ``H`` (any blip restarts the countdown); a healthy
      one sets ``H`` (if unset) and once ``now - H >= restoreAfter`` traffic returns
      (FallbackRestored). If the active tier becomes unhealthy (or leaves the spec), traffic moves to
      the first healthy tier in spec order (FallbackSwitched); with none healthy it returns to the
      primary if that is healthy, and otherwise stays (FallbackUnavailable once).
    - No ``spec.fallback``: the primary serves; an active fallback returns at once.

    The reason keeps the words it was written with while the situation lasts, and ``changed`` is
    ``False`` when ``as_status()`` equals ``previous``: re-running a tick with its own output and
    the same ``now`` changes nothing (restart safety).
    """
    prev = _normalise(previous)
    rfc3339(now)  # rejects a naive ``now`` early
    if fallback is None:
        if prev["active"]:
            msg = f"spec.fallback was removed: traffic returns from {prev['target']} to the primary"
            event = Events.FALLBACK_RESTORED(msg)
            return _finish(_Next(False, None, None, None, None, "", event=event), prev)
        return _finish(_Next(False, None, None, None, None, ""), prev)

    ids = [target_id(t) for t in fallback.targets]
    health = {t.target: t for t in tiers}
    for i in ids:
        health.setdefault(i, TierHealth(target=i, healthy=False, reason="no health reported"))
    common: dict[str, Any] = {
        "primary_healthy": primary_healthy,
        "primary_reason": primary_reason,
        "ids": ids,
        "healthy_ids": [i for i in ids if health[i].healthy],
        "health": health,
        "now": now,
    }
    if prev["active"]:
        nxt = _on_tier(prev, restore_after=parse_duration(fallback.restore_after), **common)
    else:
        nxt = _on_primary(prev, after=parse_duration(fallback.after), **common)
    return _finish(nxt, prev)


def _stranded_head(unhealthy_since: str) -> str:
    return f"Primary unhealthy since {unhealthy_since} and no fallback tier is healthy; traffic stays on the primary"


def _on_primary(
    prev: dict[str, Any],
    *,
    primary_healthy: bool,
    primary_reason: str,
    ids: list[str],
    healthy_ids: list[str],
    health: Mapping[str, TierHealth],
    now: datetime,
    after: timedelta,
) -> _Next:
    """The primary serves: wait for ``after``, then move to the first healthy tier."""
    if primary_healthy:
        return _Next(False, None, None, None, None, "")
    stamp = rfc3339(now)
    unhealthy_since = prev["unhealthySince"] if parse_rfc3339(prev["unhealthySince"]) else stamp
    held = _held(parse_rfc3339(unhealthy_since) or now, now)
    why = primary_reason or "unhealthy"
    if held < after:
        head = (
            f"Primary unhealthy since {unhealthy_since}; falls back after {format_duration(after)} "
            "unless it recovers"
        )
        return _Next(False, None, None, unhealthy_since, None, head, primary_reason)
    if not healthy_ids:
        detail = _tiers_text(ids, health)
        msg = (
            f"Primary unhealthy for {format_duration(held)} ({why}) but no fallback tier is healthy "
            f"({detail}): traffic stays on the primary"
        )
        nxt = _Next(
            False,
            None,
            None,
            unhealthy_since,
            None,
            _stranded_head(unhealthy_since),
            detail,
            Events.FALLBACK_UNAVAILABLE(msg),
        )
        return _once(nxt, prev)
    chosen = healthy_ids[0]
    skipped = ids[: ids.index(chosen)]
    msg = f"Primary unhealthy for {format_duration(held)} ({why}): traffic moves to {chosen}"
    if skipped:
        msg += f" (skipped {_tiers_text(skipped, health)})"
    return _Next(
        True,
        chosen,
        stamp,
        unhealthy_since,
        None,
        _tier_head(chosen, stamp, unhealthy_since, None, timedelta(0)),
        primary_reason,
        Events.FALLBACK_ACTIVATED(msg),
    )


def _on_tier(
    prev: dict[str, Any],
    *,
    primary_healthy: bool,
    primary_reason: str,
    ids: list[str],
    healthy_ids: list[str],
    health: Mapping[str, TierHealth],
    now: datetime,
    restore_after: timedelta,
) -> _Next:
    """A tier serves: return after ``restoreAfter`` of primary health; leave a tier that fails."""
    stamp = rfc3339(now)
    current: str = prev["target"] or "(none)"
    since: str = prev["since"] if parse_rfc3339(prev["since"]) else stamp
    unhealthy_since: str | None = None
    healthy_since: str | None = None
    if primary_healthy:
        healthy_since = prev["healthySince"] if parse_rfc3339(prev["healthySince"]) else stamp
        held = _held(parse_rfc3339(healthy_since) or now, now)
        if held >= restore_after:
            msg = (
                f"Primary healthy for {format_duration(held)}: traffic returns from {current} to the primary"
            )
            return _Next(False, None, None, None, None, "", event=Events.FALLBACK_RESTORED(msg))
    else:
        unhealthy_since = prev["unhealthySince"] if parse_rfc3339(prev["unhealthySince"]) else stamp
    detail = "" if primary_healthy else primary_reason

    if current in ids and health[current].healthy:
        head = _tier_head(current, since, unhealthy_since, healthy_since, restore_after)
        return _Next(True, current, since, unhealthy_since, healthy_since, head, detail)

    why = (health[current].reason or "unhealthy") if current in ids else "no longer in spec.fallback.targets"
    others = [i for i in healthy_ids if i != current]
    if others:
        chosen = others[0]
        msg = f"{current} is unhealthy ({why}): traffic moves to {chosen}"
        head = _tier_head(chosen, stamp, unhealthy_since, healthy_since, restore_after)
        return _Next(
            True,
            chosen,
            stamp,
            unhealthy_since,
            healthy_since,
            head,
            detail,
            Events.FALLBACK_SWITCHED(msg),
        )
    if primary_healthy:
        msg = (
            f"{current} is unhealthy ({why}) and no other fallback tier is healthy; the primary is healthy "
            "again: traffic returns to the primary"
        )
        return _Next(False, None, None, None, None, "", event=Events.FALLBACK_RESTORED(msg))
    assert unhealthy_since is not None
    tiers = _tiers_text(ids, health)
    if current not in ids:
        msg = (
            f"{current} is no longer a fallback target and no other tier is healthy ({tiers}): "
            "traffic returns to the unhealthy primary"
        )
        return _Next(
            False,
            None,
            None,
            unhealthy_since,
            None,
            _stranded_head(unhealthy_since),
            tiers,
            Events.FALLBACK_UNAVAILABLE(msg),
        )
    head = (
        f"Traffic on {current} since {since}, which is unhealthy, and no other fallback tier is healthy; "
        f"primary unhealthy since {unhealthy_since}"
    )
    msg = f"{current} is unhealthy ({why}) and no other fallback tier is healthy: traffic stays on {current}"
    nxt = _Next(True, current, since, unhealthy_since, None, head, tiers, Events.FALLBACK_UNAVAILABLE(msg))
    return _once(nxt, prev)


def _tier_head(
    target: str, since: str, unhealthy_since: str | None, healthy_since: str | None, restore_after: timedelta
) -> str:
    if healthy_since is not None:
        return (
            f"Traffic on {target} since {since}; primary healthy since {healthy_since}, "
            f"traffic returns after {format_duration(restore_after)} of health"
        )
    return f"Traffic on {target} since {since}; primary unhealthy since {unhealthy_since}"


def _once(nxt: _Next, prev: dict[str, Any]) -> _Next:
    """Drop the event when the previous reason already describes this situation (it was posted then)."""
    old = prev["reason"]
    if old == nxt.head or old.startswith(nxt.head + ": "):
        return replace(nxt, event=None)
    return nxt
