"""``slogate run`` before it starts: an unreachable API server or missing read permissions end it with
one line naming what is missing and exit 1 (controller.run.startup_problem), never a retry loop.

The API server is a small HTTP stand-in on 127.0.0.1 answering /version and the LISTs with what a
real one answers (200, 401, 403 with its Status message, 404 for an API not served); the same checks
run in a container against the real API server in tests/integration/test_container.py.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from slogate.adapters.kube import Kube
from slogate.config import OperatorConfig
from slogate.controller.run import startup_problem
from slogate.dev.cluster import free_port

USER = "system:serviceaccount:ops:slogate"


class FakeAPIServer(http.server.ThreadingHTTPServer):
    """Answers GETs: ``status`` for /version, 403 for paths in ``forbidden``, 404 for ``absent``."""

    def __init__(self) -> None:
        self.status = 200
        self.forbidden: set[str] = set()
        self.absent: set[str] = set()
        self.seen: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.seen.append(self.path)
                if path == "/version":
                    code, body = server.status, {"gitVersion": "v1.37.1"}
                elif path in server.forbidden:
                    resource = path.rstrip("/").split("/")[-1]
                    code, body = (
                        403,
                        {
                            "kind": "Status",
                            "status": "Failure",
                            "reason": "Forbidden",
                            "code": 403,
                            "message": f'{resource} is forbidden: User "{USER}" cannot list resource "{resource}"',
                        },
                    )
                elif path in server.absent:
                    code, body = (
                        404,
                        {"kind": "Status", "code": 404, "message": "the server could not find it"},
                    )
                else:
                    code, body = 200, {"kind": "List", "items": [], "metadata": {"resourceVersion": "1"}}
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        super().__init__(("127.0.0.1", free_port()), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture()
def server() -> Iterator[FakeAPIServer]:
    s = FakeAPIServer()
    threading.Thread(target=s.serve_forever, daemon=True).start()
    yield s
    s.shutdown()
    s.server_close()


def kube_for(url: str) -> Kube:
    conf = client.Configuration()
    conf.host = url
    conf.api_key = {"BearerToken": "token"}
    conf.api_key_prefix = {"BearerToken": "Bearer"}
    return Kube(client.ApiClient(conf))


def test_everything_readable_is_no_problem_and_only_reads_the_operator_sends_anyway(server):
    server.absent = {"/apis/keda.sh/v1alpha1/scaledobjects"}  # an optional API not served is fine
    cfg = OperatorConfig(leader_election=True, lease_namespace="ops")
    assert startup_problem(kube_for(server.url), cfg) is None
    paths = [p.split("?")[0] for p in server.seen]
    assert paths[0] == "/version"
    assert "/apis/slogate.io/v1alpha1/modeldeployments" in paths and "/api/v1/nodes" in paths
    assert paths[-1] == "/apis/coordination.k8s.io/v1/namespaces/ops/leases/slogate-operator"
    assert all(p.endswith("?limit=1") for p in server.seen[1:-1]), server.seen  # LISTs of one item


def test_an_unreachable_api_server_is_one_line_at_once_without_retries(caplog):
    port = free_port()  # nothing listens
    started = time.monotonic()
    problem = startup_problem(kube_for(f"http://127.0.0.1:{port}"), OperatorConfig())
    assert problem and problem.startswith(
        f"cannot reach the Kubernetes API server at http://127.0.0.1:{port}: "
    )
    assert "Connection refused" in problem and "\n" not in problem
    assert time.monotonic() - started < 5
    assert not [r for r in caplog.records if "Retrying" in r.getMessage()]


def test_rejected_credentials_are_named(server):
    server.status = 401
    problem = startup_problem(kube_for(server.url), OperatorConfig())
    assert problem and "rejects the credentials (401 Unauthorized" in problem


def test_a_refused_read_names_the_user_the_verb_the_resource_and_where(server):
    server.forbidden = {"/api/v1/nodes", "/api/v1/namespaces/team-b/pods"}
    cfg = OperatorConfig(namespaces=["team-a", "team-b"])
    problem = startup_problem(kube_for(server.url), cfg)
    assert problem == (
        f'RBAC refuses "{USER}" what the operator needs at {server.url}: list pods (in team-b), '
        "list nodes (cluster-wide) (the chart's RBAC grants it: docs/install.md)"
    )
    # Namespaced: every namespaced kind is listed in each watched namespace, never cluster-wide.
    assert "/api/v1/namespaces/team-a/pods?limit=1" in server.seen
    assert "/api/v1/pods?limit=1" not in server.seen


def test_slogate_run_exits_1_with_one_line(tmp_path: Path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    argv = [sys.executable, "-m", "slogate", "run", f"--kubeconfig={kubeconfig}"]
    result = subprocess.run(
        [*argv, "--metrics-port=0", "--health-port=0"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("slogate run: ")]
    assert len(lines) == 1 and "cannot reach the Kubernetes API server" in lines[0], result.stderr
    assert "Traceback" not in result.stderr and "Retrying" not in result.stderr, result.stderr
    # Neither in a pod nor given a kubeconfig: one line too.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "slogate", "run", "--metrics-port=0", "--health-port=0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "slogate run: no Kubernetes configuration: not in-cluster" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
