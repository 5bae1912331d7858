"""One local control plane per test session, started by the project's own code (slogate.dev).

Never skipped: when a binary or Prometheus is missing the session fails with the reason, so a
green run always means the integration tests really ran.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from slogate.dev.cluster import LocalCluster, temporary_cluster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def wait_for(fn, *, timeout: float, what: str, interval: float = 0.25):
    """Poll ``fn`` until it returns a truthy value without raising; fail with ``what`` on timeout."""
    import time

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except Exception as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    c = temporary_cluster()
    c.up()
    os.environ["SLOGATE_TEST_CLUSTER_DIR"] = str(c.dir)
    try:
        yield c
    finally:
        left = c.down()
        assert not left, f"processes left running after down(): {left}"


@pytest.fixture(scope="session")
def kube(cluster: LocalCluster):
    from kubernetes import config

    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture()
def namespace(kube) -> Iterator[str]:
    import uuid

    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": name}})
    # Pods need the namespace's default ServiceAccount, which the controller-manager creates.
    wait_for(
        lambda: core.read_namespaced_service_account("default", name),
        timeout=30,
        what="default ServiceAccount",
    )
    yield name
    core.delete_namespace(name)
