"""Tokens per hour are asked once per namespace and window for all its ModelDeployments, and an
unanswered query is remembered for the same interval (controller.reconcile._tokens_per_hour)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from slogate.config import OperatorConfig
from slogate.controller.reconcile import TOKENS_INTERVAL, Reconciler
from slogate.errors import PrometheusUnavailable

URL = "http://prometheus"
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class Prom:
    def __init__(self, answers: dict[str, list[tuple[dict[str, str], float]]] | None = None) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def query_vector(self, q: str) -> list[tuple[dict[str, str], float]]:
        self.asked.append(q)
        if self.answers is None:
            raise PrometheusUnavailable("timed out after 5s querying http://prometheus")
        series = next((k for k in self.answers if k in q), None)
        return self.answers.get(series, []) if series else []


def reconciler(prom: Any) -> Reconciler:
    r = Reconciler(None, OperatorConfig())
    r._sources[URL] = prom
    return r


def tokens(r: Reconciler, name: str, now: datetime, ns: str = "ml") -> tuple[float | None, bool]:
    return r._tokens_per_hour(ns, name, "5m", URL, now)


def test_one_set_of_queries_answers_every_modeldeployment_of_the_namespace():
    prom = Prom(
        {
            "vllm:generation_tokens_total": [({"slogate_io_deployment": "a"}, 3600.0)],
            "tgi_request_generated_tokens_sum": [({"slogate_io_deployment": "a"}, 400.0)],
        }
    )
    r = reconciler(prom)
    assert tokens(r, "a", T0) == (4000.0, True)  # summed over the engines' series
    assert tokens(r, "b", T0 + timedelta(seconds=1)) == (0.0, True)  # in no answer: no traffic
    assert len(prom.asked) == 3  # one query per engine series, for both
    tokens(r, "a", T0 + TOKENS_INTERVAL - timedelta(seconds=1))
    assert len(prom.asked) == 3
    tokens(r, "a", T0 + TOKENS_INTERVAL)  # the interval is a rate limit: asked again after it
    assert len(prom.asked) == 6
    tokens(r, "a", T0 + TOKENS_INTERVAL, ns="other")  # another namespace has its own answers
    assert len(prom.asked) == 9


def test_an_unanswered_query_is_remembered_for_the_interval_not_retried_by_every_pass():
    prom = Prom(None)
    r = reconciler(prom)
    assert tokens(r, "a", T0) == (None, False)  # not measured: status keeps its value
    assert tokens(r, "b", T0 + timedelta(seconds=2)) == (None, False)
    assert len(prom.asked) == 1  # the first series failed; nobody asked again within the interval
    prom.answers = {"vllm:generation_tokens_total": [({"slogate_io_deployment": "a"}, 7.0)]}
    assert tokens(r, "a", T0 + TOKENS_INTERVAL) == (7.0, True)
