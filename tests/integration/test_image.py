"""What the container image would do, without a Docker engine: install the package exactly as the
Dockerfile does (a clean venv, a plain install constrained by constraints.txt), run its entrypoint
`slogate run` from outside the repository with no writable code directory, and check it reconciles a
ModelDeployment against the real API server and writes no files next to its code (so a read-only
root filesystem works)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kubernetes import client

from slogate.dev.cluster import LocalCluster, free_port
from tests.integration.conftest import wait_for
from tests.integration.test_operator import GROUP, PLURAL, VERSION, mdep, ready

ROOT = Path(__file__).resolve().parents[2]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_the_image_install_runs_the_operator(cluster: LocalCluster, kube, namespace, tmp_path):
    venv = tmp_path / "opt-slogate"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [
        str(venv / "bin" / "pip"),
        "install",
        "-q",
        "--constraint",
        str(ROOT / "constraints.txt"),
        str(ROOT),
    ]
    subprocess.run(pip, check=True, capture_output=True, timeout=600)
    entry = venv / "bin" / "slogate"
    assert entry.exists()
    before = _files(venv)
    health = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(
        {
            "PYTHONDONTWRITEBYTECODE": "1",
            "SLOGATE_LOG_FORMAT": "json",
            "HOME": "/nonexistent",
            "SLOGATE_PROMETHEUS_URL": cluster.prometheus_url,
        }
    )
    log = tmp_path / "operator.log"
    proc = subprocess.Popen(
        [
            str(entry),
            "run",
            f"--kubeconfig={cluster.operator_kubeconfig}",
            f"--metrics-port={free_port()}",
            f"--health-port={health}",
            "--bind-address=127.0.0.1",
            f"--namespace={namespace}",
        ],
        cwd="/",
        env=env,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        import urllib.request

        wait_for(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=1).status == 200,
            timeout=60,
            what="the image's /healthz",
        )
        client.CustomObjectsApi(kube).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, mdep("img", replicas=1)
        )
        md = ready(kube, namespace, "img")
        assert md["status"]["readyReplicas"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text()[-2000:]  # graceful shutdown on SIGTERM
    assert _files(venv) == before, sorted(_files(venv) - before)[:10]
    assert '"message"' in log.read_text()  # JSON logs
