"""Which cluster the integration tests run against, chosen by the environment (docs/kind.md).

``SLOGATE_E2E_CLUSTER`` selects it; the tests are the same in every mode, only the fixtures differ:

- ``local`` (default): our own control plane and every host-side piece (``LocalCluster``), as always.
- ``attached``: a control plane we start (``control_plane_only``) and a second harness attached to
  it through its kubeconfig alone, exactly as it attaches to kind. Runs without Docker, so the part
  the kind path shares with the local one is exercised here.
- ``kind``: the kind cluster of ``make kind-up``, from ``SLOGATE_E2E_KUBECONFIG`` (and
  ``SLOGATE_E2E_CONTEXT``), with Prometheus bound to ``SLOGATE_E2E_HOST_IP`` (the kind network's
  gateway) and the API server's audit log at ``SLOGATE_E2E_AUDIT_LOG``. The operator under test is
  the chart's Deployment (``slogate.dev.kind``), not a process on the host.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from slogate.dev import kind
from slogate.dev.cluster import Attachment, ClusterError, LocalCluster, temporary_cluster

MODES = ("local", "attached", "kind")


@dataclass(frozen=True)
class E2ESettings:
    """The test cluster's mode and, for kind, where to find it."""

    mode: str = "local"
    kubeconfig: Path | None = None
    context: str | None = None
    host_ip: str | None = None
    audit_log: Path | None = None

    @property
    def in_cluster_operator(self) -> bool:
        """Whether the operator under test is the chart's Deployment (kind) rather than a host process."""
        return self.mode == "kind"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> E2ESettings:
        """Read ``SLOGATE_E2E_*``. Pure; a missing or wrong value is a ``ValueError`` that names it."""
        mode = env.get("SLOGATE_E2E_CLUSTER", "").strip() or "local"
        if mode not in MODES:
            raise ValueError(f"SLOGATE_E2E_CLUSTER={mode!r}: expected one of {', '.join(MODES)}")
        if mode != "kind":
            return cls(mode=mode)
        missing = [k for k in ("SLOGATE_E2E_KUBECONFIG", "SLOGATE_E2E_HOST_IP") if not env.get(k)]
        if missing:
            raise ValueError(
                f"SLOGATE_E2E_CLUSTER=kind needs {' and '.join(missing)} "
                "(`make e2e-kind` sets them from .slogate-kind/e2e.env; see docs/kind.md)"
            )
        audit = env.get("SLOGATE_E2E_AUDIT_LOG")
        return cls(
            mode=mode,
            kubeconfig=Path(env["SLOGATE_E2E_KUBECONFIG"]),
            context=env.get("SLOGATE_E2E_CONTEXT") or None,
            host_ip=env["SLOGATE_E2E_HOST_IP"],
            audit_log=Path(audit) if audit else None,
        )


def kind_harness(settings: E2ESettings, directory: Path) -> LocalCluster:
    """The host-side harness for the kind cluster of ``settings`` (not started yet)."""
    assert settings.kubeconfig is not None and settings.host_ip is not None
    return LocalCluster(
        directory,
        attach=Attachment(
            kubeconfig=settings.kubeconfig,
            context=settings.context,
            audit_log=settings.audit_log,
            operator_user=kind.OPERATOR_USER,
        ),
        prometheus_host=settings.host_ip,
        prometheus_port=kind.PROMETHEUS_PORT,
    )


def _down(c: LocalCluster) -> None:
    left = c.down()
    if left:
        raise ClusterError(f"processes left running after down(): {left}")


def _scale_operator(c: LocalCluster, replicas: int) -> None:
    c.kubectl("scale", f"deployment/{kind.RELEASE}", "-n", kind.NAMESPACE, f"--replicas={replicas}")


@contextmanager
def harness(settings: E2ESettings) -> Iterator[LocalCluster]:
    """The session's cluster for ``settings``, started, and everything it started stopped afterwards."""
    if settings.mode == "local":
        c = temporary_cluster().up()
        try:
            yield c
        finally:
            _down(c)
        return
    if settings.mode == "attached":
        base = temporary_cluster(control_plane_only=True).up()
        try:
            c = LocalCluster(
                Path(tempfile.mkdtemp(prefix="slogate-attached-")),
                attach=Attachment(
                    kubeconfig=base.kubeconfig,
                    audit_log=base.audit_log,
                    operator_user=base.operator_user,
                    operator_kubeconfig=base.operator_kubeconfig,
                ),
            ).up()
            try:
                yield c
            finally:
                _down(c)
        finally:
            _down(base)
        return
    c = kind_harness(settings, Path(tempfile.mkdtemp(prefix="slogate-kind-"))).up()
    try:
        # The chart's operator runs only while a test module's `operator` fixture wants it: tests
        # that run an operator process on the host must not have a second one reconciling.
        _scale_operator(c, 0)
        yield c
    finally:
        try:
            _scale_operator(c, 1)
        finally:
            _down(c)


def main(argv: list[str] | None = None) -> int:
    """``python -m slogate.dev.e2e up --dir DIR``: the kind harness from ``SLOGATE_E2E_*``, left running
    (``make kind-up``); ``slogate dev down --dir DIR`` stops it and removes its fake nodes."""
    import os

    parser = argparse.ArgumentParser(prog="python -m slogate.dev.e2e")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="attach the host-side harness to the kind cluster of SLOGATE_E2E_*")
    p.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        settings = E2ESettings.from_env(os.environ)
        if settings.mode != "kind":
            raise ValueError("SLOGATE_E2E_CLUSTER=kind is not set (source .slogate-kind/e2e.env)")
        c = kind_harness(settings, args.dir).up()
    except (ValueError, ClusterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"host side attached to {c.server} in {c.state['startup_seconds']}s ({c.dir})", file=sys.stderr)
    sys.stdout.write(c.env_file.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
