"""Prometheus as a ``core.analysis.MetricsSource``: one number per PromQL query, or a clear error.

Parsing is kept apart from transport (as argo-rollouts' ``processResponse`` is from
``executeQuery``): ``parse_vector`` is pure and tested on recorded payloads in
``tests/fixtures/prometheus/``; ``PrometheusSource`` only sends the query with
prometheus-api-client and maps what can go wrong to ``errors.PrometheusUnavailable``:

    requests.Timeout                    → "timed out after 5s querying URL"
    requests.ConnectionError            → "cannot connect to URL: [Errno 111] Connection refused"
    PrometheusApiClientException (HTTP) → "HTTP 400 from URL: bad_data: 1:5: parse error: …"
    a 200 that is not the API's JSON    → "unexpected answer from URL: …"
    a result that is not one number     → the ``parse_vector`` message (the query must aggregate)

"No data" is not an error: ``query`` returns ``None`` and the analysis calls it Inconclusive.
"""

from __future__ import annotations

import ast
import json
import math
import re
from typing import Any

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from slogate.errors import PrometheusUnavailable

DEFAULT_TIMEOUT_S = 5.0
"""Per-request timeout. Analysis runs every minute or so; a Prometheus slower than this is treated
as unavailable for that run (Inconclusive) rather than holding up the reconcile."""


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"the query returned {text!r}, not a number") from None
    return value if math.isfinite(value) else None


def _labels(series: dict[str, Any]) -> str:
    metric = series.get("metric") or {}
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def parse_vector(payload: Any) -> float | None:
    """One number from an instant-query result (``data.result``, as ``custom_query`` returns it). Pure.

    An instant vector with one series gives its value; an empty vector gives ``None`` (no data), so
    does ``NaN`` (e.g. ``histogram_quantile`` over no observations, ``0/0``) and ``±Inf``. A scalar
    result (``[timestamp, "1.5"]``) gives its value. More than one series raises ``ValueError``:
    slogate does not guess how to combine them, the query must aggregate (``sum``, ``max``, …).

    >>> parse_vector([{"metric": {}, "value": [1714000000.0, "0.25"]}])
    0.25
    >>> parse_vector([]) is None, parse_vector([{"metric": {}, "value": [1714000000.0, "NaN"]}]) is None
    (True, True)
    >>> parse_vector([1714000000.0, "1.5"])
    1.5
    """
    if not isinstance(payload, list):
        raise ValueError(
            f"expected a list of series or a [timestamp, value] scalar, got {type(payload).__name__}"
        )
    if not payload:
        return None
    if len(payload) == 2 and not isinstance(payload[0], dict):
        return _number(payload[1])
    if not all(isinstance(s, dict) for s in payload):
        raise ValueError("expected a list of series (objects with metric and value)")
    if len(payload) > 1:
        shown = ", ".join(_labels(s) for s in payload[:3]) + (", …" if len(payload) > 3 else "")
        raise ValueError(
            f"the query returned {len(payload)} series ({shown}); it must return one number:"
            " aggregate it, e.g. sum(...) or max(...)"
        )
    series = payload[0]
    if "value" not in series:
        if "values" in series:
            raise ValueError("the query returned a range vector; use an instant query (e.g. rate(x[5m]))")
        raise ValueError("a series without a value")
    return _number(series["value"][1])


def parse_samples(payload: Any) -> list[tuple[dict[str, str], float]]:
    """Every series of an instant-vector result as ``(labels, value)``, for queries that return one
    series per label value (``sum by (le) (...)``). Pure.

    An empty vector gives ``[]``; ``NaN`` and ``±Inf`` values are kept as floats for the caller to
    judge. A scalar or a range vector raises ``ValueError``.

    >>> parse_samples([{"metric": {"le": "10"}, "value": [1714000000.0, "3"]},
    ...                {"metric": {"le": "+Inf"}, "value": [1714000000.0, "5"]}])
    [({'le': '10'}, 3.0), ({'le': '+Inf'}, 5.0)]
    """
    if not isinstance(payload, list):
        raise ValueError(f"expected a list of series, got {type(payload).__name__}")
    out: list[tuple[dict[str, str], float]] = []
    for series in payload:
        if not isinstance(series, dict):
            raise ValueError("expected a list of series (objects with metric and value)")
        if "value" not in series:
            if "values" in series:
                raise ValueError("the query returned a range vector; use an instant query")
            raise ValueError("a series without a value")
        try:
            value = float(series["value"][1])
        except (TypeError, ValueError, IndexError):
            raise ValueError(f"the query returned {series.get('value')!r}, not a number") from None
        out.append(({str(k): str(v) for k, v in (series.get("metric") or {}).items()}, value))
    return out


_API_ERROR = re.compile(r"^HTTP Status Code (\d+) \((.*)\)$", re.DOTALL)
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")]*")


def api_error_message(text: str) -> str:
    """The Prometheus error in a ``PrometheusApiClientException`` message. Pure.

    prometheus-api-client 0.7 formats it as ``HTTP Status Code 400 (b'{"status":"error",...}')``;
    this returns ``HTTP 400: bad_data: 1:5: parse error: …`` and falls back to the text as given.

    >>> api_error_message('HTTP Status Code 400 (b\\'{"status":"error","errorType":"bad_data","error":"oops"}\\')')
    'HTTP 400: bad_data: oops'
    """
    m = _API_ERROR.match(text.strip())
    if not m:
        return text
    status, body = m.groups()
    try:
        raw = ast.literal_eval(body)
        decoded = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    except (ValueError, SyntaxError):
        return f"HTTP {status}: {body}"
    try:
        doc = json.loads(decoded)
    except ValueError:
        return f"HTTP {status}: {decoded.strip()[:500]}"
    if isinstance(doc, dict) and "error" in doc:
        kind = doc.get("errorType")
        return f"HTTP {status}: {kind}: {doc['error']}" if kind else f"HTTP {status}: {doc['error']}"
    return f"HTTP {status}: {decoded.strip()[:500]}"


def _connection_reason(exc: BaseException) -> str:
    """``[Errno 111] Connection refused`` from requests' long ``HTTPConnectionPool(...)`` message."""
    m = _ERRNO.search(str(exc))
    if m:
        return m.group(0).strip()
    return type(exc).__name__


class PrometheusSource:
    """``MetricsSource`` backed by a Prometheus HTTP API (prometheus-api-client's ``PrometheusConnect``).

    One quick reconnect on a refused or dropped connection, no retries on HTTP errors or read
    timeouts (the next analysis run is the retry), and a small per-request timeout.
    """

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        # read=False, not 0: urllib3 then re-raises the read timeout itself, which requests reports as
        # ReadTimeout; with read=0 it would arrive as a ConnectionError("Max retries exceeded").
        retry = Retry(total=1, connect=1, read=False, status=0, backoff_factor=0.1, raise_on_status=False)
        # PrometheusConnect's ``timeout`` is typed int but handed to requests as is: floats work.
        self._client = PrometheusConnect(
            url=self.url,
            disable_ssl=True,
            retry=retry,
            timeout=timeout,  # type: ignore[arg-type]
        )

    def query(self, promql: str) -> float | None:
        """The one number ``promql`` evaluates to now; ``None`` for no data.

        Raises ``PrometheusUnavailable`` when Prometheus cannot be reached, times out, answers with
        an HTTP error (a rejected query carries Prometheus' own message) or returns more than one
        series.
        """
        payload = self._ask(promql)
        try:
            return parse_vector(payload)
        except ValueError as exc:
            raise PrometheusUnavailable(f"{exc} (query: {promql})") from exc

    def _ask(self, promql: str) -> Any:
        """``data.result`` of an instant query, with transport errors mapped (module docstring)."""
        try:
            return self._client.custom_query(promql)
        except PrometheusApiClientException as exc:
            raise PrometheusUnavailable(f"{api_error_message(str(exc))} (from {self.url})") from exc
        except requests.Timeout as exc:
            raise PrometheusUnavailable(f"timed out after {self.timeout:g}s querying {self.url}") from exc
        except requests.JSONDecodeError as exc:
            raise PrometheusUnavailable(f"unexpected answer from {self.url}: not JSON ({exc})") from exc
        except requests.ConnectionError as exc:
            raise PrometheusUnavailable(f"cannot connect to {self.url}: {_connection_reason(exc)}") from exc
        except requests.RequestException as exc:
            raise PrometheusUnavailable(f"request to {self.url} failed: {exc}") from exc
        except (KeyError, TypeError) as exc:
            raise PrometheusUnavailable(f"unexpected answer from {self.url}: no data.result") from exc

    def query_vector(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """Every series ``promql`` evaluates to now, as ``(labels, value)`` (``parse_samples``).

        Raises ``PrometheusUnavailable`` in the same cases as ``query``.
        """
        payload = self._ask(promql)
        try:
            return parse_samples(payload)
        except ValueError as exc:
            raise PrometheusUnavailable(f"{exc} (query: {promql})") from exc

    def is_online(self) -> bool:
        """Whether Prometheus answers at all (its web root, within the timeout)."""
        try:
            return bool(self._client.check_prometheus_connection())
        except requests.RequestException:
            return False

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()
