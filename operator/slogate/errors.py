"""Errors raised by slogate, by what the caller should do about them.

    SlogateError
    ├── TransientError      retry later (409 conflicts, 429 throttling, 5xx, timeouts); carries ``delay``
    ├── PermanentError      retrying cannot help (400/422 from the API server, a forbidden verb)
    │   └── InvalidSpec     the ModelDeployment itself is invalid; reported in status, never retried
    └── PrometheusUnavailable  the metrics source could not answer; analysis is Inconclusive, never Pass

Adapters map library exceptions to these; the controller maps them to kopf's TemporaryError /
PermanentError or to status conditions.
"""

from __future__ import annotations


class SlogateError(Exception):
    """Base of every slogate error."""


class TransientError(SlogateError):
    """Retry after ``delay`` seconds."""

    def __init__(self, message: str, *, delay: float = 5.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(SlogateError):
    """Retrying cannot help; carries the server's message."""


class InvalidSpec(PermanentError):
    """The ModelDeployment's spec is invalid."""


class PrometheusUnavailable(SlogateError):
    """The metrics source could not be queried."""
