"""A due drift check asks Prometheus only when its answer can change the verdict
(controller.reconcile._measure with core.drift.needs_measurement): a ModelDeployment that has not
served for a whole window yet gets ``BaselinePending`` whatever the window holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slogate.api.v1alpha1 import ModelDeploymentSpec
from slogate.config import OperatorConfig
from slogate.controller.reconcile import Reconciler
from slogate.core import drift
from slogate.core.desired import revision_of
from slogate.core.timefmt import rfc3339

URL = "http://prometheus"
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SPEC = ModelDeploymentSpec.model_validate({"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}})
REV = revision_of(SPEC)


class Prom:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def query_vector(self, q: str) -> list[tuple[dict[str, str], float]]:
        self.asked.append(q)
        return []


def body(status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": "ml", "name": "llama", "generation": 1}, "status": status}


def available_since(t: datetime) -> dict[str, Any]:
    return {
        "type": "Available",
        "status": "True",
        "reason": "MinimumReplicasAvailable",
        "lastTransitionTime": rfc3339(t),
    }


@pytest.mark.parametrize(
    "status, asks",
    [
        pytest.param({}, False, id="new-not-serving"),
        pytest.param(
            {"stableRevision": REV, "conditions": [available_since(T0 - timedelta(minutes=59))]},
            False,
            id="serving-less-than-a-window",
        ),
        pytest.param(
            {"stableRevision": REV, "conditions": [available_since(T0 - timedelta(hours=1))]},
            True,
            id="serving-a-whole-window",
        ),
        pytest.param(
            {"stableRevision": REV, "inputBaseline": {"revision": REV}}, True, id="baseline-recorded"
        ),
        pytest.param(
            {"stableRevision": REV, "inputBaseline": {"revision": "other"}},
            False,
            id="baseline-of-another-revision",
        ),
    ],
)
def test_drift_queries_only_when_the_window_can_decide(status: dict[str, Any], asks: bool) -> None:
    prom = Prom()
    r = Reconciler(None, OperatorConfig())
    r._sources[URL] = prom
    m = r._measure(SPEC, body(status), {}, URL, T0)
    drift_queries = [q for q in prom.asked if "_tokens_bucket" in q]
    assert m.drift_due
    assert len(drift_queries) == (2 if asks else 0)
    if not asks:
        assert m.drift is drift.NOTHING_MEASURED
        # ... and the verdict is the one the window could not have changed.
        d = drift.decide(
            settings=drift.settings_of(SPEC),
            stable=REV,
            baseline=status.get("inputBaseline"),
            measurement=m.drift,
            previous=None,
            generation=1,
            now=T0,
            serving_since=drift.serving_since(status.get("conditions") or []),
        )
        assert d.condition is not None and d.condition[1] == drift.DriftReason.BASELINE_PENDING
