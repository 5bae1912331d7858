"""The chart's disruption and scheduling options, rendered by the pinned helm (no cluster needed).

``helm template`` of charts/slogate with the values under test: the operator's PodDisruptionBudget
(``podDisruptionBudget``), the pod anti-affinity (``podAntiAffinity``, preferred or required) and the
Deployment strategy that has to follow a required one, the operator image by digest, the pod's IDs
against the Dockerfile's ``USER``, and the production values docs/install.md recommends (the file
``make lint`` lints as the chart's production variant). helm is built by hack/build-helm.sh (pinned in
hack/versions.env); when it cannot be built these tests fail, never skip. Everything else the chart
renders is covered by tests/integration/test_chart.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "slogate"
PRODUCTION_VALUES = REPO / "hack" / "lint" / "values-production.yaml"
NAMESPACE = "slogate-system"
DIGEST = "sha256:" + "ab" * 32


def template(helm: str, values: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"slogate-values-{uuid.uuid4().hex[:8]}.yaml"
    tmp.write_text(yaml.safe_dump(values))
    try:
        return subprocess.run(
            [helm, "template", "slogate", str(CHART), "-n", NAMESPACE, "-f", str(tmp)],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        tmp.unlink()


def render(helm: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    result = template(helm, values)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (obj,) = [d for d in docs if d["kind"] == kind]
    return obj


def pdbs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "PodDisruptionBudget"]


# ------------------------------------------------------------------------------- PodDisruptionBudget
def test_the_default_install_has_a_pdb_of_max_unavailable_1_for_the_operator_pods(helm):
    docs = render(helm, {})
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    (pdb,) = pdbs(docs)
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["metadata"]["name"] == "slogate" and pdb["metadata"]["namespace"] == NAMESPACE
    assert pdb["metadata"]["labels"] == deployment["metadata"]["labels"]
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
        "selector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]},
    }
    # It selects exactly the operator's pods.
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param({}, 1, id="default: 2 replicas"),
        pytest.param({"replicaCount": 3}, 1, id="3 replicas"),
        pytest.param({"replicaCount": 1}, 0, id="1 replica: nothing to keep"),
        pytest.param({"ha": {"leaderElection": {"enabled": False}}}, 0, id="no leader election: 1 replica"),
        pytest.param({"podDisruptionBudget": {"enabled": False}}, 0, id="toggled off"),
        pytest.param(
            {"replicaCount": 3, "podDisruptionBudget": {"enabled": False}}, 0, id="toggled off, 3 replicas"
        ),
    ],
)
def test_the_pdb_is_rendered_only_with_more_than_one_replica_and_when_enabled(helm, values, expected):
    docs = render(helm, values)
    assert len(pdbs(docs)) == expected
    for pdb in pdbs(docs):
        assert pdb["spec"]["maxUnavailable"] == 1


def test_the_pdb_toggle_is_in_the_schema(helm):
    result = template(helm, {"podDisruptionBudget": {"enabled": True, "minAvailable": 1}})
    assert result.returncode != 0 and "minAvailable" in result.stderr


# ------------------------------------------------------------------------------- anti-affinity
def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")["spec"]["template"]["spec"]


def test_the_default_anti_affinity_stays_preferred_with_a_surge_rollout(helm):
    docs = render(helm, {})
    selector = one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert pod_spec(docs)["affinity"] == {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": selector},
                    },
                }
            ]
        }
    }
    assert one(docs, "Deployment")["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }


@pytest.mark.parametrize("topology_key", ["kubernetes.io/hostname", "topology.kubernetes.io/zone"])
def test_required_anti_affinity_allows_one_operator_pod_per_domain_and_rolls_without_surge(
    helm, topology_key
):
    docs = render(helm, {"podAntiAffinity": {"mode": "required", "topologyKey": topology_key}})
    deployment = one(docs, "Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert pod_spec(docs)["affinity"] == {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": topology_key, "labelSelector": {"matchLabels": selector}}
            ]
        }
    }
    # A surge pod could not be scheduled while every domain holds an old pod: an old one goes first.
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    # The PDB still allows that one pod to be evicted.
    assert one(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_a_users_affinity_replaces_the_anti_affinity_and_keeps_the_surge_rollout(helm):
    mine = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["system"]}]}
                ]
            }
        }
    }
    docs = render(helm, {"affinity": mine, "podAntiAffinity": {"mode": "required"}})
    assert pod_spec(docs)["affinity"] == mine
    assert one(docs, "Deployment")["spec"]["strategy"]["rollingUpdate"] == {
        "maxUnavailable": 0,
        "maxSurge": 1,
    }


def test_without_leader_election_there_is_no_anti_affinity_and_the_pod_is_recreated(helm):
    docs = render(
        helm, {"ha": {"leaderElection": {"enabled": False}}, "podAntiAffinity": {"mode": "required"}}
    )
    assert "affinity" not in pod_spec(docs)
    assert one(docs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"podAntiAffinity": {"mode": "sometimes"}}, id="unknown mode"),
        pytest.param({"podAntiAffinity": {"mode": "required", "weight": 50}}, id="unknown key"),
        pytest.param({"podAntiAffinity": {"topologyKey": "not a label"}}, id="invalid topology key"),
    ],
)
def test_invalid_anti_affinity_values_are_refused(helm, values):
    result = template(helm, values)
    assert result.returncode != 0 and "values don't meet the specifications of the schema" in result.stderr


# ------------------------------------------------------------------------------- images and IDs
def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = pod_spec(docs)["containers"]
    return container


def test_the_operator_image_is_pinned_by_digest_instead_of_the_tag(helm):
    assert operator_container(render(helm, {}))["image"] == "ghcr.io/slogate/slogate:0.1.0"
    assert (
        operator_container(render(helm, {"image": {"tag": "0.2.0"}}))["image"]
        == "ghcr.io/slogate/slogate:0.2.0"
    )
    pinned = render(helm, {"image": {"tag": "0.2.0", "digest": DIGEST}})
    assert operator_container(pinned)["image"] == f"ghcr.io/slogate/slogate@{DIGEST}"
    other = render(helm, {"image": {"repository": "registry.example/slogate", "digest": DIGEST}})
    assert operator_container(other)["image"] == f"registry.example/slogate@{DIGEST}"


@pytest.mark.parametrize("digest", ["latest", "sha256:abc", "sha512:" + "ab" * 64, DIGEST.upper()])
def test_a_malformed_digest_is_refused(helm, digest):
    assert template(helm, {"image": {"digest": digest}}).returncode != 0


def test_the_pod_runs_as_the_user_of_the_dockerfile():
    (user,) = re.findall(r"^USER\s+(\d+):(\d+)\s*$", (REPO / "Dockerfile").read_text(), flags=re.M)
    uid, gid = (int(x) for x in user)
    text = (CHART / "templates" / "_pod.tpl").read_text()
    ids = {
        k: int(v) for k, v in re.findall(r"^\s+(runAsUser|runAsGroup|fsGroup):\s*(\d+)\s*$", text, flags=re.M)
    }
    assert ids == {"runAsUser": uid, "runAsGroup": gid, "fsGroup": gid}


def test_the_rendered_pod_ids_match_the_dockerfile(helm):
    (user,) = re.findall(r"^USER\s+(\d+):(\d+)\s*$", (REPO / "Dockerfile").read_text(), flags=re.M)
    context = pod_spec(render(helm, {}))["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (
        int(user[0]),
        int(user[1]),
        int(user[1]),
    )
    assert context["runAsNonRoot"] is True


# ------------------------------------------------------------------------------- production values
def test_the_production_values_render_namespaced_pinned_and_spread(helm):
    values = yaml.safe_load(PRODUCTION_VALUES.read_text())
    docs = render(helm, values)
    assert {d["metadata"]["namespace"] for d in docs if d["kind"] == "Role"} == {
        NAMESPACE,  # the leader-election Role
        *values["watchNamespaces"],
    }
    assert "ClusterRoleBinding" in {d["kind"] for d in docs}
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert all(set(r["verbs"]) <= {"list", "watch"} for r in cluster_role["rules"])
    assert operator_container(docs)["image"].endswith("@" + values["image"]["digest"])
    assert "requiredDuringSchedulingIgnoredDuringExecution" in pod_spec(docs)["affinity"]["podAntiAffinity"]
    assert len(pdbs(docs)) == 1
    assert one(docs, "ServiceMonitor")["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_install_docs_show_the_production_values_verbatim():
    docs = (REPO / "docs" / "install.md").read_text()
    section = docs.split("### Production (recommended)", 1)[1].split("\n### ", 1)[0]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    assert yaml.safe_load(block) == yaml.safe_load(PRODUCTION_VALUES.read_text())
