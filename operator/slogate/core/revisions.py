"""Which revisions run, and when a new one replaces the old. Pure.

The direct path (no SLO-gated rollout): the first revision is deployed as stable; a new revision is
deployed beside stable at full size and replaces it only once every one of its replicas is Ready,
so stable is never scaled down before its replacement serves. The SLO-gated rollout state machine
(canary steps, analysis, rollback) decides the same three things in ``core.rollout``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RevisionPlan:
    """The revisions to run and what changed. Consumed by ``controller.reconcile``."""

    stable: str
    """Revision that serves users after this reconcile."""
    candidate: str | None
    """Revision being brought up beside stable, if any."""
    promoted: bool = False
    """The candidate became stable in this decision."""
    retire: tuple[str, ...] = field(default_factory=tuple)
    """Revisions whose Deployments are no longer needed."""


def plan_revisions(
    *,
    current: str,
    stable: str | None,
    candidate: str | None,
    candidate_ready: bool,
    existing: tuple[str, ...],
) -> RevisionPlan:
    """Decide stable/candidate from the spec's revision and what runs. Pure.

    ``current`` is the spec's revision, ``stable``/``candidate`` come from status, ``candidate_ready``
    says whether the current revision's Deployment has every desired replica Ready, ``existing`` lists
    the revisions that have Deployments.

    >>> plan_revisions(current="b", stable=None, candidate=None, candidate_ready=False, existing=())
    RevisionPlan(stable='b', candidate=None, promoted=False, retire=())
    >>> plan_revisions(current="b", stable="a", candidate=None, candidate_ready=False, existing=("a",))
    RevisionPlan(stable='a', candidate='b', promoted=False, retire=())
    >>> plan_revisions(current="b", stable="a", candidate="b", candidate_ready=True, existing=("a", "b"))
    RevisionPlan(stable='b', candidate=None, promoted=True, retire=('a',))
    """
    if stable is None or stable == current:
        keep = current
        return RevisionPlan(stable=keep, candidate=None, retire=tuple(r for r in existing if r != keep))
    if candidate == current and candidate_ready:
        return RevisionPlan(
            stable=current, candidate=None, promoted=True, retire=tuple(r for r in existing if r != current)
        )
    # A candidate replaced by a newer spec before it was promoted is retired; stable stays.
    retire = tuple(r for r in existing if r not in (stable, current))
    return RevisionPlan(stable=stable, candidate=current, retire=retire)
