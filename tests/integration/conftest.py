"""One cluster per test session, started by the project's own code (slogate.dev).

Never skipped: when a binary or Prometheus is missing the session fails with the reason, so a
green run always means the integration tests really ran.

``SLOGATE_E2E_CLUSTER`` picks the cluster (``slogate.dev.e2e``): ``local`` (default) is our own
control plane; ``attached`` and ``kind`` attach the same host-side harness to a control plane given
by a kubeconfig. The tests are the same; only these fixtures differ. A test that needs something
only our own control plane gives is marked ``local_only`` and is *deselected* in the other modes,
and the terminal summary lists it with its reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from slogate.dev.cluster import LocalCluster
from slogate.dev.e2e import E2ESettings, harness

E2E = E2ESettings.from_env(os.environ)
_deselected: list[tuple[str, str]] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    if E2E.mode == "local":
        return
    keep, drop = [], []
    for item in items:
        mark = item.get_closest_marker("local_only")
        (drop if mark else keep).append(item)
        if mark:
            _deselected.append((item.nodeid, mark.kwargs.get("reason", "")))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter) -> None:
    if E2E.mode == "local":
        return
    tr = terminalreporter
    tr.section(f"SLOGATE_E2E_CLUSTER={E2E.mode}: {len(_deselected)} local-only tests deselected")
    for nodeid, reason in _deselected:
        tr.write_line(f"{nodeid}: {reason}")


def wait_for(fn, *, timeout: float, what: str, interval: float = 0.25, explain=None):
    """Poll ``fn`` until it returns a truthy value without raising; fail with ``what`` on timeout.

    ``explain``, a callable returning text, is called once on timeout and its answer added to the
    failure (what the object looked like then), so a timeout in CI can be diagnosed from its output.
    """
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
    detail = ""
    if explain is not None:
        try:
            detail = f"\n{explain()}"
        except Exception as exc:  # the explanation must not hide the timeout
            detail = f"\n(explain failed: {exc!r})"
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last}){detail}")


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    with harness(E2E) as c:
        os.environ["SLOGATE_TEST_CLUSTER_DIR"] = str(c.dir)
        yield c


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
