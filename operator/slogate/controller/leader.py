"""Lease-based leader election for ``slogate run`` (decisions in ``core.lease``).

Chosen over kopf peering: a coordination.k8s.io Lease needs no extra CRDs, is what every
Kubernetes controller uses (so SREs know how to inspect it: ``kubectl get lease -n NS``), and its
timing is explicit. Standbys keep their watches warm but run no reconcile; the leader starts the
workers when it acquires the Lease and exits the process if it ever fails to renew in time, so a
replica that lost the Lease can never act on stale leadership (the Deployment restarts it as a
standby).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from slogate.adapters.kube import Kube
from slogate.core.lease import decide, still_leader
from slogate.errors import SlogateError

log = logging.getLogger("slogate.leader")


class LeaderElector:
    """Acquire and renew one Lease; call ``on_leading`` once when leadership starts."""

    def __init__(
        self,
        kube: Kube,
        *,
        namespace: str,
        name: str,
        identity: str,
        duration: int = 15,
        renew: float = 5.0,
        retry: float = 2.0,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.renew = renew
        self.retry = retry
        self.leading = False
        self.renewed: datetime | None = None

    def _step(self) -> bool:
        """One attempt; True when we hold the Lease afterwards."""
        now = datetime.now(UTC)
        lease = self.kube.get("coordination.k8s.io/v1", "Lease", self.namespace, self.name)
        act = decide(lease, identity=self.identity, now=now, duration=self.duration)
        if act.action == "wait":
            return False
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": act.spec,
        }
        try:
            if act.action == "create":
                self.kube.create(body)
            else:
                assert lease is not None
                body["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
                self.kube.replace(body)
        except SlogateError as exc:  # a conflict: another replica won this round
            log.info("lease %s/%s: %s lost: %s", self.namespace, self.name, act.action, exc)
            return False
        if act.action == "takeover":
            log.warning(
                "lease %s/%s taken over from %s by %s", self.namespace, self.name, act.holder, self.identity
            )
        self.renewed = now
        return True

    async def run(self, on_leading: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                held = await asyncio.to_thread(self._step)
            except Exception:
                log.exception("lease %s/%s: renew failed", self.namespace, self.name)
                held = False
            now = datetime.now(UTC)
            if held and not self.leading:
                self.leading = True
                log.warning("became leader (%s) of lease %s/%s", self.identity, self.namespace, self.name)
                await on_leading()
            elif (
                self.leading and not held and not still_leader(self.renewed, now=now, duration=self.duration)
            ):
                log.error(
                    "lost leadership of lease %s/%s (%s): exiting", self.namespace, self.name, self.identity
                )
                logging.shutdown()
                os._exit(1)  # never act on stale leadership; the Deployment restarts us as a standby
            await asyncio.sleep(self.renew if self.leading else self.retry)
