"""The Prometheus adapter: parse_vector on payloads recorded from a real Prometheus 2.42
(tests/fixtures/prometheus/, each with the query that produced it), and PrometheusSource's error
mapping against a closed port and a tiny stdlib HTTP server that answers like Prometheus."""

from __future__ import annotations

import doctest
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import slogate.adapters.prometheus
from slogate.adapters.prometheus import PrometheusSource, api_error_message, parse_vector
from slogate.errors import PrometheusUnavailable

FIXTURES = Path(__file__).parent.parent / "fixtures" / "prometheus"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def result_of(name: str) -> Any:
    """``data.result``, which is what prometheus-api-client's ``custom_query`` returns."""
    return fixture(name)["body"]["data"]["result"]


# -------------------------------------------------------------------------------------- parse_vector


@pytest.mark.parametrize(
    "name, expected",
    [
        pytest.param("vector_one_series", 0.24071153846153845, id="one-series"),
        pytest.param("vector_empty", None, id="empty-is-no-data"),
        pytest.param("vector_nan", None, id="nan-is-no-data"),
        pytest.param("scalar", 201.25, id="scalar"),
        pytest.param("error_rate_zero", 0.0, id="real-zero-stays-zero"),
    ],
)
def test_parse_vector_recorded(name, expected):
    assert parse_vector(result_of(name)) == expected


def test_parse_vector_two_series_must_be_aggregated():
    with pytest.raises(ValueError) as err:
        parse_vector(result_of("vector_two_series"))
    assert str(err.value) == (
        'the query returned 2 series ({pod="llama-a"}, {pod="llama-b"}); it must return one number:'
        " aggregate it, e.g. sum(...) or max(...)"
    )


@pytest.mark.parametrize(
    "payload, expected",
    [
        pytest.param([{"metric": {}, "value": [1.0, "+Inf"]}], None, id="plus-inf"),
        pytest.param([{"metric": {}, "value": [1.0, "-Inf"]}], None, id="minus-inf"),
        pytest.param([1.0, "NaN"], None, id="scalar-nan"),
        pytest.param([{"metric": {"pod": "a"}, "value": [1.0, "3"]}], 3.0, id="labelled-single-series"),
        pytest.param([{"metric": {}, "value": [1.0, "1e-3"]}], 0.001, id="exponent"),
    ],
)
def test_parse_vector_values(payload, expected):
    assert parse_vector(payload) == expected


@pytest.mark.parametrize(
    "payload, message",
    [
        pytest.param(
            [{"metric": {}, "values": [[1.0, "1"], [2.0, "2"]]}],
            "the query returned a range vector; use an instant query (e.g. rate(x[5m]))",
            id="matrix",
        ),
        pytest.param([1.0, "hello"], "the query returned 'hello', not a number", id="string-result"),
        pytest.param(
            {"resultType": "vector"},
            "expected a list of series or a [timestamp, value] scalar, got dict",
            id="not-a-list",
        ),
        pytest.param([{"metric": {}}], "a series without a value", id="no-value"),
        pytest.param(
            [{"metric": {"i": str(i)}, "value": [1.0, "1"]} for i in range(5)],
            'the query returned 5 series ({i="0"}, {i="1"}, {i="2"}, …); it must return one number:'
            " aggregate it, e.g. sum(...) or max(...)",
            id="many-series-abbreviated",
        ),
    ],
)
def test_parse_vector_rejects(payload, message):
    with pytest.raises(ValueError) as err:
        parse_vector(payload)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param(
            # exactly how prometheus-api-client 0.7.2 words it (custom_query)
            "HTTP Status Code {} ({!r})".format(400, json.dumps(fixture("error_bad_data")["body"]).encode()),
            'HTTP 400: bad_data: invalid parameter "query": 1:107: parse error: unclosed left parenthesis',
            id="bad-data",
        ),
        pytest.param(
            "HTTP Status Code 502 (b'Bad Gateway\\n')", "HTTP 502: Bad Gateway", id="plain-text-body"
        ),
        pytest.param("something else", "something else", id="unknown-format"),
    ],
)
def test_api_error_message(text, expected):
    assert api_error_message(text) == expected


def test_doctests():
    assert doctest.testmod(slogate.adapters.prometheus).failed == 0


# ------------------------------------------------------------------------------------ error mapping


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_closed_port_is_unavailable_quickly():
    port = closed_port()
    source = PrometheusSource(f"http://127.0.0.1:{port}/")
    started = time.monotonic()
    with pytest.raises(PrometheusUnavailable) as err:
        source.query("up")
    assert str(err.value) == f"cannot connect to http://127.0.0.1:{port}: [Errno 111] Connection refused"
    assert time.monotonic() - started < 2
    assert source.is_online() is False


class FakePrometheus:
    """A real HTTP server on loopback answering every request with ``status`` and ``body``."""

    def __init__(self) -> None:
        self.status = 200
        self.body: bytes = b""
        self.content_type = "application/json"
        self.delay = 0.0
        self.queries: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                from urllib.parse import parse_qs, urlparse

                outer.queries.extend(parse_qs(urlparse(self.path).query).get("query", []))
                time.sleep(outer.delay)
                self.send_response(outer.status)
                self.send_header("Content-Type", outer.content_type)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                try:
                    self.wfile.write(outer.body)
                except OSError:
                    pass  # the client timed out and left

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def answer(self, name: str) -> None:
        recorded = fixture(name)
        self.status = recorded["status_code"]
        self.body = json.dumps(recorded["body"]).encode()


@pytest.fixture()
def prom() -> Iterator[FakePrometheus]:
    p = FakePrometheus()
    p.thread.start()
    yield p
    p.server.shutdown()
    p.server.server_close()


@pytest.mark.parametrize(
    "name, expected",
    [
        pytest.param("vector_one_series", 0.24071153846153845, id="one-series"),
        pytest.param("vector_empty", None, id="empty"),
        pytest.param("vector_nan", None, id="nan"),
        pytest.param("scalar", 201.25, id="scalar"),
    ],
)
def test_query_returns_the_number(prom, name, expected):
    prom.answer(name)
    source = PrometheusSource(prom.url)
    assert source.query(fixture(name)["query"]) == expected
    assert prom.queries == [fixture(name)["query"]]
    assert source.is_online() is True


@pytest.mark.parametrize(
    "name, message",
    [
        pytest.param(
            "error_bad_data",
            'HTTP 400: bad_data: invalid parameter "query": 1:107: parse error: unclosed left parenthesis (from {url})',
            id="bad-query-400-carries-prometheus-text",
        ),
        pytest.param(
            "error_execution",
            "HTTP 422: execution: found duplicate series for the match group",
            id="execution-422",
        ),
        pytest.param(
            "vector_two_series",
            'the query returned 2 series ({{pod="llama-a"}}, {{pod="llama-b"}}); it must return one number:'
            " aggregate it, e.g. sum(...) or max(...) (query: sum by (pod)",
            id="two-series",
        ),
    ],
)
def test_query_errors_are_unavailable(prom, name, message):
    prom.answer(name)
    with pytest.raises(PrometheusUnavailable) as err:
        PrometheusSource(prom.url).query(fixture(name)["query"])
    assert str(err.value).startswith(message.format(url=prom.url))


def test_server_error_is_unavailable_without_retries(prom):
    prom.status = 503
    prom.content_type = "text/plain"
    prom.body = b"Service Unavailable"
    with pytest.raises(PrometheusUnavailable) as err:
        PrometheusSource(prom.url).query("up")
    assert str(err.value) == f"HTTP 503: Service Unavailable (from {prom.url})"
    assert prom.queries == ["up"]


def test_not_json_is_unavailable(prom):
    prom.content_type = "text/html"
    prom.body = b"<html>login</html>"
    with pytest.raises(PrometheusUnavailable) as err:
        PrometheusSource(prom.url).query("up")
    assert str(err.value).startswith(f"unexpected answer from {prom.url}: not JSON")


def test_json_without_data_is_unavailable(prom):
    prom.body = b'{"status": "success"}'
    with pytest.raises(PrometheusUnavailable) as err:
        PrometheusSource(prom.url).query("up")
    assert str(err.value) == f"unexpected answer from {prom.url}: no data.result"


def test_slow_prometheus_times_out(prom):
    prom.answer("vector_one_series")
    prom.delay = 1.0
    started = time.monotonic()
    with pytest.raises(PrometheusUnavailable) as err:
        PrometheusSource(prom.url, timeout=0.2).query("up")
    assert str(err.value) == f"timed out after 0.2s querying {prom.url}"
    assert time.monotonic() - started < 0.9
