"""``slogate status`` and ``slogate explain``: what an SRE needs to know, without writing PromQL.

``render_table`` and ``explain_lines`` are pure (ModelDeployment dicts and Events in, text out) and
unit-tested; the commands only fetch and print. Both honour ``KUBECONFIG`` and ``--context``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

PASS, FAIL, UNKNOWN = "✓", "✗", "?"


def _mark(verdict: str | None) -> str:
    return {"Pass": PASS, "Fail": FAIL}.get(verdict or "", UNKNOWN)


def objectives_cell(md: dict[str, Any]) -> str:
    """``ttft-p95 612ms/500ms ✗  errorRate 0.40%/1% ✓``. Pure."""
    results = ((md.get("status") or {}).get("lastAnalysis") or {}).get("results") or []
    return "  ".join(
        f"{r['name']} {r.get('value') or '-'}/{r.get('threshold')} {_mark(r.get('verdict'))}" for r in results
    )


def _over_budget(md: dict[str, Any]) -> dict[str, Any] | None:
    conds = (md.get("status") or {}).get("conditions") or []
    return next((c for c in conds if c.get("type") == "OverBudget"), None)


def cost_cells(md: dict[str, Any]) -> tuple[str, str]:
    """``12.00 USD`` per hour and ``2.61 > 2.50 ✗`` per million tokens (against ``spec.budget``). Pure."""
    cost = (md.get("status") or {}).get("cost") or {}
    budget = ((md.get("spec") or {}).get("budget") or {}).get("maxCostPerMillionTokens")
    per_hour = f"{cost['perHour']} {cost.get('currency') or ''}".rstrip() if cost.get("perHour") else "-"
    value = cost.get("perMillionTokens")
    if value is None:
        return per_hour, "-"
    verdict = (_over_budget(md) or {}).get("status")
    if budget and verdict == "True":
        return per_hour, f"{value} > {budget} {FAIL}"
    if budget and verdict == "False":
        return per_hour, f"{value} ≤ {budget} {PASS}"
    return per_hour, value


def row(md: dict[str, Any], *, all_namespaces: bool) -> list[str]:
    """One table row. Pure."""
    st = md.get("status") or {}
    fb = st.get("fallback") or {}
    step = st.get("currentStep")
    steps = len(((md.get("spec") or {}).get("rollout") or {}).get("steps") or [])
    cells = [
        md["metadata"]["name"],
        st.get("phase") or "-",
        st.get("stableRevision") or "-",
        st.get("canaryRevision") or "-",
        f"{st['canaryWeight']}%" if st.get("canaryWeight") is not None else "-",
        f"{step + 1}/{steps}" if step is not None and steps else "-",
        st.get("ready") or "-",
        objectives_cell(md) or (st.get("sloVerdict") or "-"),
        fb.get("target") if fb.get("active") else "-",
        *cost_cells(md),
    ]
    if all_namespaces:
        cells.insert(0, md["metadata"].get("namespace", ""))
    return cells


HEADERS = [
    "NAME",
    "PHASE",
    "STABLE",
    "CANARY",
    "WEIGHT",
    "STEP",
    "READY",
    "SLO (value/threshold)",
    "FALLBACK",
    "COST/H",
    "COST/MTOK",
]


def render_table(items: list[dict[str, Any]], *, all_namespaces: bool = False, messages: bool = True) -> str:
    """The status table, with each object's status message underneath. Pure."""
    headers = (["NAMESPACE"] if all_namespaces else []) + HEADERS
    rows = [row(md, all_namespaces=all_namespaces) for md in items]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for md, r in zip(items, rows, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        msg = (md.get("status") or {}).get("message")
        ro = (md.get("status") or {}).get("rollout") or {}
        why = ro.get("pausedReason") or ro.get("waitingFor") or msg
        if messages and why:
            lines.append(f"    └ {why}")
    if not items:
        lines.append("(no ModelDeployments)")
    return "\n".join(lines)


def quality_lines(status: dict[str, Any]) -> list[str]:
    """The latest quality gate and probe runs in status: each suite's verdict and pass rate, and the
    failing cases with the checks they failed and the start of an answer. Pure."""
    out: list[str] = []
    for title, key in (("quality gate", "qualityGate"), ("quality probe", "qualityProbe")):
        section = status.get(key) or {}
        run = section.get("lastRun") or {}
        if not run:
            continue
        gate = f" {run['gate']}" if run.get("gate") else ""
        out.append(f"  {title}{gate} on {run.get('revision')}: {run.get('verdict')} at {run.get('time')}")
        for suite in run.get("suites") or []:
            rate = f" {suite['passRate']} ({suite.get('interval')})" if suite.get("passRate") else ""
            out.append(f"    {suite['name']}: {suite['verdict']}{rate} — {suite.get('message', '')}")
            for case in suite.get("failingCases") or []:
                out.append(
                    f"      ✗ {case['case']} {case.get('samples', '')}: {'; '.join(case.get('failed') or [])}"
                    f" — answer: {case.get('answer', '')[:120]!r}"
                )
    return out


def explain_lines(md: dict[str, Any], events: list[dict[str, Any]]) -> list[str]:
    """The timeline of decisions in plain words, from status history and Events, oldest first. Pure."""
    timeline: list[tuple[str, str]] = []
    st = md.get("status") or {}
    for h in st.get("history") or []:
        timeline.append(
            (
                h.get("time", ""),
                f"rollout of {h['revision']} ended: {h['outcome']}"
                + (f" — {h['reason']}" if h.get("reason") else ""),
            )
        )
    for ev in events:
        when = ev.get("lastTimestamp") or ev.get("eventTime") or ev.get("firstTimestamp") or ""
        kind = "⚠" if ev.get("type") == "Warning" else "•"
        timeline.append((when, f"{kind} {ev.get('reason')}: {ev.get('message')}"))
    budget = _over_budget(md)
    if budget and budget.get("status") in ("True", "False"):
        reason = budget.get("reason")
        if not any(ev.get("reason") == reason for ev in events):  # Events expire (1 h); the condition stays
            kind = "⚠" if budget["status"] == "True" else "•"
            timeline.append(
                (budget.get("lastTransitionTime", ""), f"{kind} {reason}: {budget.get('message')}")
            )
    timeline.sort(key=lambda t: t[0])
    name = md["metadata"]["name"]
    out = [f"{name}: {st.get('phase', 'Pending')} — {st.get('message') or ''}".rstrip(" —")]
    for cond in st.get("conditions") or []:
        if cond["status"] == "True" and cond["type"] in (
            "Degraded",
            "InsufficientGPU",
            "FallbackActive",
            "OverBudget",
            "InputDrift",
            "QualityDegraded",
        ):
            out.append(f"  {cond['type']} ({cond['reason']}): {cond['message']}")
    out += quality_lines(st)
    ro = st.get("rollout") or {}
    if ro.get("waitingFor") and ro.get("waitingFor") != st.get("message"):
        out.append(f"  waiting: {ro['waitingFor']}")
    if ro.get("pausedReason") and ro.get("pausedReason") != st.get("message"):
        out.append(f"  paused: {ro['pausedReason']}")
    cost = st.get("cost") or {}
    if cost.get("perHour"):
        unit = f" {cost['currency']}" if cost.get("currency") else ""
        line = f"  cost: {cost['perHour']}{unit}/h for {cost.get('gpus', 0)} GPUs"
        if cost.get("perMillionTokens"):
            line += (
                f"; {cost['perMillionTokens']}{unit} per million generated tokens over {cost.get('window')}"
            )
        budget_value = ((md.get("spec") or {}).get("budget") or {}).get("maxCostPerMillionTokens")
        if budget_value:
            line += f" (budget {budget_value})"
        out.append(line)
    out.append("")
    out += [f"{when}  {text}" for when, text in timeline]
    return out


def _client(args: argparse.Namespace) -> Any:
    from slogate.cli.commands import api_client

    return api_client(args.kubeconfig, args.context)


def _fetch(args: argparse.Namespace) -> list[dict[str, Any]]:
    from kubernetes import client

    from slogate import constants as C

    api = client.CustomObjectsApi(_client(args))
    if args.name:
        return [api.get_namespaced_custom_object(C.GROUP, C.VERSION, args.namespace, C.PLURAL, args.name)]
    if args.all_namespaces:
        items = api.list_cluster_custom_object(C.GROUP, C.VERSION, C.PLURAL)["items"]
    else:
        items = api.list_namespaced_custom_object(C.GROUP, C.VERSION, args.namespace, C.PLURAL)["items"]
    return sorted(items, key=lambda m: (m["metadata"].get("namespace", ""), m["metadata"]["name"]))


def _cmd_status(args: argparse.Namespace) -> int:
    from kubernetes.client.rest import ApiException

    try:
        while True:
            table = render_table(_fetch(args), all_namespaces=args.all_namespaces)
            if args.watch and sys.stdout.isatty():
                sys.stdout.write("\033[H\033[2J" + table + "\n")
            else:
                print(table)
            if not args.watch:
                return 0
            sys.stdout.flush()
            time.sleep(args.interval)
    except ApiException as exc:
        print(f"error: {exc.status} {exc.reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        md = _fetch(args)[0]
        core = client.CoreV1Api(_client(args))
        events = [
            e.to_dict()
            for e in core.list_namespaced_event(
                args.namespace,
                field_selector=f"involvedObject.name={args.name},involvedObject.kind=ModelDeployment",
            ).items
        ]
    except ApiException as exc:
        print(f"error: {exc.status} {exc.reason}", file=sys.stderr)
        return 1
    for e in events:  # the client's snake_case dicts → the API's names used by explain_lines
        e["lastTimestamp"] = e.get("last_timestamp").isoformat() if e.get("last_timestamp") else ""
    print("\n".join(explain_lines(md, events)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``status`` and ``explain`` to the main parser."""
    p = sub.add_parser("status", help="a table of ModelDeployments: phase, revisions, weight, SLOs, fallback")
    p.add_argument("name", nargs="?")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-w", "--watch", action="store_true", help="refresh until interrupted")
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--kubeconfig")
    p.add_argument("--context")
    p.set_defaults(func=_cmd_status)
    p = sub.add_parser("explain", help="the timeline of a ModelDeployment's decisions, in plain words")
    p.add_argument("name")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("--kubeconfig")
    p.add_argument("--context")
    p.set_defaults(func=_cmd_explain, all_namespaces=False)
