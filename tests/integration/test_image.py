"""What the container image would do, without a Docker engine: install the package exactly as the
Dockerfile does (the build stage's files without the simulator and the local control plane, a clean
venv, a plain install constrained by constraints.txt), check the development tools are not in it,
run its entrypoint `slogate run` from outside the repository with no writable code directory, and
check it reconciles a ModelDeployment against the real API server and writes no files next to its
code (so a read-only root filesystem works). tests/unit/test_dockerfile.py checks the same layout
offline."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from kubernetes import client

from slogate.dev.cluster import LocalCluster, free_port
from tests.image import build_context
from tests.integration.conftest import wait_for
from tests.integration.test_operator import GROUP, PLURAL, VERSION, mdep, ready


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_the_image_install_runs_the_operator(cluster: LocalCluster, kube, namespace, tmp_path):
    src = build_context(tmp_path / "src")  # what the build stage copies, minus sim/ and dev/
    assert not (src / "operator" / "slogate" / "sim").exists()
    venv = tmp_path / "opt-slogate"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [
        str(venv / "bin" / "pip"),
        "install",
        "-q",
        "--constraint",
        "constraints.txt",
        ".",
    ]
    subprocess.run(pip, cwd=src, check=True, capture_output=True, timeout=600)
    entry = venv / "bin" / "slogate"
    assert entry.exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(
        {
            "PYTHONDONTWRITEBYTECODE": "1",
            "SLOGATE_LOG_FORMAT": "json",
            "HOME": "/nonexistent",
            "SLOGATE_PROMETHEUS_URL": cluster.prometheus_url,
        }
    )

    # The operator only: no simulator, no local control plane; `slogate dev` says where they are.
    assert not [f for f in _files(venv) if re.search(r"(^|/)slogate/(sim|dev)(/|$)", f)]
    python = str(venv / "bin" / "python")
    for module in ("slogate.sim", "slogate.dev"):
        result = subprocess.run(
            [python, "-c", f"import {module}"], cwd="/", env=env, capture_output=True, text=True
        )
        assert result.returncode == 1 and f"No module named '{module}'" in result.stderr, result.stderr
    result = subprocess.run(
        [str(entry), "dev", "up"], cwd="/", env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "slogate dev needs the development tools" in result.stderr
    assert "pip install -e '.[dev]' from a source checkout" in result.stderr
    assert "Traceback" not in result.stderr

    before = _files(venv)
    health = free_port()
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
