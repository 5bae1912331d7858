from __future__ import annotations

from slogate.cli.status import explain_lines, render_table

ROLLED_BACK = {
    "metadata": {"name": "llama", "namespace": "ml"},
    "spec": {"rollout": {"steps": [{"setWeight": 25}, {"pause": {}}]}},
    "status": {
        "phase": "RolledBack",
        "stableRevision": "aaaa1111",
        "canaryRevision": "bbbb2222",
        "canaryWeight": 0,
        "currentStep": 0,
        "ready": "2/2",
        "message": "revision bbbb2222 rolled back",
        "lastAnalysis": {
            "verdict": "Fail",
            "results": [
                {"name": "ttft-p95", "value": "912ms", "threshold": "500ms", "verdict": "Fail"},
                {"name": "errorRate", "value": "0.00%", "threshold": "1%", "verdict": "Pass"},
            ],
        },
        "rollout": {"outcome": "RolledBack", "outcomeMessage": "ttft p95 912ms > 500ms"},
        "conditions": [
            {
                "type": "Degraded",
                "status": "True",
                "reason": "RolledBack",
                "message": "ttft p95 912ms > 500ms",
            }
        ],
        "history": [
            {
                "revision": "bbbb2222",
                "outcome": "RolledBack",
                "time": "2026-11-22T10:00:05Z",
                "reason": "ttft p95 912ms > 500ms",
            }
        ],
    },
}


def test_table_shows_the_breached_objective_against_its_threshold():
    out = render_table([ROLLED_BACK])
    header, line, message = out.splitlines()
    assert header.split()[:7] == ["NAME", "PHASE", "STABLE", "CANARY", "WEIGHT", "STEP", "READY"]
    assert line.split()[:7] == ["llama", "RolledBack", "aaaa1111", "bbbb2222", "0%", "1/2", "2/2"]
    assert "ttft-p95 912ms/500ms ✗" in line and "errorRate 0.00%/1% ✓" in line
    assert message.strip() == "└ revision bbbb2222 rolled back"


def test_table_all_namespaces_and_empty():
    assert render_table([ROLLED_BACK], all_namespaces=True).splitlines()[1].split()[0] == "ml"
    assert "(no ModelDeployments)" in render_table([])
    bare = {"metadata": {"name": "new"}}
    assert render_table([bare]).splitlines()[1].split()[:2] == ["new", "-"]


def test_explain_is_a_timeline_in_plain_words():
    events = [
        {
            "type": "Normal",
            "reason": "RolloutStarted",
            "message": "revision bbbb2222 starts",
            "lastTimestamp": "2026-11-22T09:59:00Z",
        },
        {
            "type": "Warning",
            "reason": "AnalysisFailed",
            "message": "ttft p95 912ms > 500ms (1/2)",
            "lastTimestamp": "2026-11-22T10:00:00Z",
        },
    ]
    lines = explain_lines(ROLLED_BACK, events)
    assert lines[0].startswith("llama: RolledBack")
    assert "  Degraded (RolledBack): ttft p95 912ms > 500ms" in lines
    timeline = [line for line in lines[lines.index("") + 1 :]]
    assert [t.split("  ", 1)[1] for t in timeline] == [
        "• RolloutStarted: revision bbbb2222 starts",
        "⚠ AnalysisFailed: ttft p95 912ms > 500ms (1/2)",
        "rollout of bbbb2222 ended: RolledBack — ttft p95 912ms > 500ms",
    ]


WAITING = {
    "metadata": {"name": "thin", "namespace": "ml"},
    "status": {
        "phase": "Progressing",
        "stableRevision": "aaaa1111",
        "canaryRevision": "bbbb2222",
        "canaryWeight": 50,
        "currentStep": 1,
        "message": "revision bbbb2222: 1/1 replicas Ready",
        "rollout": {
            "waitingFor": "waiting for a passing analysis: 0 of 1 needed, last verdict Inconclusive: "
            "12 requests < minRequests 20"
        },
    },
}


def test_status_and_explain_say_what_a_step_waits_for():
    why = WAITING["status"]["rollout"]["waitingFor"]
    assert render_table([WAITING]).splitlines()[2].strip() == f"└ {why}"
    assert f"  waiting: {why}" in explain_lines(WAITING, [])
    # Said once when it is already the headline (the operator copies it into status.message).
    headline = {**WAITING, "status": {**WAITING["status"], "message": why}}
    assert not any(line.startswith("  waiting:") for line in explain_lines(headline, []))
