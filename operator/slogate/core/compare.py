"""Is a live object already what we would apply? Pure.

Server-side apply of an unchanged object is a no-op on the server, but it is still a write request;
the operator promises zero writes when nothing changed. So before applying, the controller checks
that every field of the desired object is present in the live object with the same value. Fields the
API server added (defaults, status, managedFields) are ignored; quantities compare by value, since
the server canonicalises them (``0.5`` becomes ``500m``).
"""

from __future__ import annotations

from typing import Any

from slogate.api.types import parse_quantity


def _same_scalar(desired: Any, live: Any) -> bool:
    if desired == live:
        return True
    if isinstance(desired, str) and isinstance(live, str):
        try:
            return parse_quantity(desired) == parse_quantity(live)
        except ValueError:
            return False
    if (isinstance(desired, int | float) and isinstance(live, str)) or (
        isinstance(live, int | float) and isinstance(desired, str)
    ):
        try:
            return parse_quantity(str(desired)) == parse_quantity(str(live))
        except ValueError:
            return False
    return False


def is_subset(desired: Any, live: Any) -> bool:
    """Whether ``live`` contains everything in ``desired``. Pure; consumed by the controller's apply step.

    >>> is_subset({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}, "d": 3})
    True
    >>> is_subset({"cpu": "0.5"}, {"cpu": "500m"})
    True
    >>> is_subset({"args": ["--a", "--b"]}, {"args": ["--a"]})
    False
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(k in live and is_subset(v, live[k]) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(is_subset(d, item) for d, item in zip(desired, live, strict=True))
    return _same_scalar(desired, live)
