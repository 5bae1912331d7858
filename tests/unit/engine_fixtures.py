"""The engines' contract fixtures (``tests/fixtures/engines/*.json``) and checks over them.

A test helper. Each fixture lists, for one engine at one version, every metric family its
``/metrics`` can expose (name, type, labels, buckets) and how it counts failures, each fact with the
source file and line it was read from. The fixtures are written from the engines' released code,
not from slogate's code, so checking slogate's PromQL and the simulator against them can fail.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent.parent / "fixtures" / "engines"

PINNED = {"vllm": "vllm-0.33.0.json", "tgi": "tgi-3.3.7.json", "sglang": "sglang-0.5.23.json"}
"""The fixture of the engine version slogate pins (``core.desired.DEFAULT_IMAGES``; TGI's image is
3.3.6, whose only code difference from 3.3.7 is the automatic ``num_shard`` in its launcher)."""

SCRAPE_LABELS = frozenset(
    {"namespace", "pod", "slogate_io_deployment", "slogate_io_revision", "slogate_io_track"}
)
"""Labels Prometheus adds at scrape time (the PodMonitor's ``podTargetLabels``), not the engine."""

_SUFFIXES = {"gauge": ("",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}


@dataclass(frozen=True)
class Family:
    name: str
    type: str
    labels: frozenset[str]
    label_values: dict[str, list[str]]
    buckets: tuple[float, ...] | None
    source: str


@cache
def load(engine: str) -> dict[str, Any]:
    return json.loads((FIXTURES / PINNED[engine]).read_text())


def available() -> list[str]:
    """Engines whose pinned fixture exists."""
    return [e for e, f in PINNED.items() if (FIXTURES / f).is_file()]


def families(engine: str) -> dict[str, Family]:
    fx = load(engine)
    out = {}
    for f in fx["families"]:
        out[f["name"]] = Family(
            name=f["name"],
            type=f["type"],
            labels=frozenset(f.get("labels", [])),
            label_values=f.get("label_values", {}),
            buckets=tuple(float(b) for b in f["buckets"]) if f.get("buckets") is not None else None,
            source=f["source"],
        )
    return out


def series_names(engine: str) -> dict[str, Family]:
    """Every series name the engine can expose → its family (counters with the engine's suffix)."""
    suffix = load(engine)["counter_suffix"]
    out = {}
    for fam in families(engine).values():
        for s in _SUFFIXES.get(fam.type, (suffix,)):
            out[fam.name + s] = fam
    return out


_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def problems(engine: str, promql: str) -> list[str]:
    """What in ``promql``'s selectors does not exist on ``engine``: an unknown series, a label the
    family lacks, or a value outside a closed value set. Selectors of non-engine series (the
    operator's, recording rules) are the caller's to filter out first."""
    known = series_names(engine)
    out = []
    for match in _SELECTOR.finditer(promql):
        name, body = match.groups()
        fam = known.get(name)
        if fam is None:
            out.append(f"{name}: no such series on {engine} {load(engine)['version']}")
            continue
        allowed = fam.labels | SCRAPE_LABELS | ({"le"} if name.endswith("_bucket") else set())
        for label, op, value in _MATCHER.findall(body):
            if label not in allowed:
                out.append(f"{name}: no label {label!r} (has {sorted(fam.labels)}; {fam.source})")
            elif label in fam.label_values and op in ("=", "=~"):
                known_values = fam.label_values[label]
                if op == "=" and value not in known_values:
                    out.append(f"{name}: {label} never takes {value!r} (only {known_values})")
                elif op == "=~":
                    # every alternative of the regex must match some value the engine can give
                    for alt in value.split("|"):
                        if not any(re.fullmatch(alt, v) for v in known_values):
                            out.append(f"{name}: {label}=~{alt!r} matches none of {known_values}")
    return out
