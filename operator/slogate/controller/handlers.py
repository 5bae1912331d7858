"""kopf handlers: thin, level-triggered glue around ``Reconciler``.

Watch-fed caches (``adapters.cache``) hold ModelDeployments, the objects they own, Pods and Nodes;
each change they see only enqueues the owning ModelDeployment; workers reconcile it from the caches,
so a pass sends no read to the API server; a resync loop re-enqueues every cached ModelDeployment
periodically and costs writes only where the plan differs from the live state. kopf runs the
process (start-up, clean-up, liveness, signals); nothing here persists state, so the operator
writes no progress annotations and puts no finalizer on objects: deleting a ModelDeployment while
the operator is down still works (the garbage collector removes the children).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from slogate import constants as C
from slogate.adapters.cache import CachedKube, Informer, informers_for
from slogate.config import OperatorConfig
from slogate.controller.queue import WorkQueue
from slogate.controller.reconcile import CHILD_KINDS, Reconciler
from slogate.core.vocabulary import Phase
from slogate.errors import PermanentError, TransientError
from slogate.telemetry import MODEL_DEPLOYMENTS

log = logging.getLogger("slogate.handlers")


class Runtime:
    """State shared by the handlers of one operator process."""

    def __init__(self) -> None:
        self.config: OperatorConfig | None = None
        self.reconciler: Reconciler | None = None
        self.queue: WorkQueue | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.kube: Any = None
        self.informers: list[Informer] = []

    def modeldeployments(self) -> list[dict[str, Any]]:
        """Every cached ModelDeployment."""
        return [o for i in self.informers if i.watched.kind == C.KIND for o in i.store.list(None)]


RUNTIME = Runtime()


def configure(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """kopf settings, each chosen deliberately."""
    # Silent frozen watches are a known kopf failure mode: have the server end every watch after
    # 5 minutes and give up on a silent connection after 6, so kopf re-lists and re-watches.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 360
    settings.watching.connect_timeout = 30
    # kopf's own progress and diff-base storage (unused by our event handlers, but never under
    # kopf's default kopf.zalando.org prefix on our objects) and finalizer name live under ours.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=C.ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=C.ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{C.GROUP}/finalizer"
    # kopf would turn its own log lines into Kubernetes Events; we post our own, deliberate Events,
    # so only kopf's warnings and errors become Events.
    settings.posting.level = logging.WARNING
    # Workers per watched object stream; our own queue bounds concurrent reconciles (config.workers).
    settings.batching.worker_limit = 64
    # At start-up with thousands of objects the API server may answer 429: back off increasingly
    # instead of hammering it (kopf retries API errors with these delays, then keeps the last).
    settings.networking.error_backoffs = [1, 2, 5, 10, 20, 30]
    settings.networking.request_timeout = 60
    # Never kopf peering: high availability is the coordination.k8s.io Lease (config.leader_election,
    # controller.leader). kopf's peering pause would only stop kopf's watch streams, not our workers.
    settings.peering.standalone = True


def _enqueue(namespace: str | None, name: str | None) -> None:
    if RUNTIME.queue is not None and namespace and name:
        RUNTIME.queue.add((namespace, name))


def owner_key(obj: dict[str, Any]) -> tuple[str, str] | None:
    """The ModelDeployment a cached object's change concerns: itself, or the one its
    ``slogate.io/deployment`` label names (Nodes and other tenants' Pods concern none). Pure."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    if not namespace:
        return None
    if obj.get("kind") == C.KIND:
        return (namespace, meta["name"])
    owner = (meta.get("labels") or {}).get(C.LABEL_DEPLOYMENT)
    return (namespace, owner) if owner else None


def start_caches(loop: asyncio.AbstractEventLoop, config: OperatorConfig) -> CachedKube:
    """Start the informers; their changes enqueue the owning ModelDeployment on ``loop``."""

    def on_change(obj: dict[str, Any]) -> None:
        key = owner_key(obj)
        if key is not None and RUNTIME.queue is not None:
            loop.call_soon_threadsafe(RUNTIME.queue.add, key)

    RUNTIME.informers = informers_for(RUNTIME.kube, list(config.namespaces), CHILD_KINDS, on_change)
    for informer in RUNTIME.informers:
        informer.start()
    return CachedKube(RUNTIME.kube, RUNTIME.informers)


@kopf.on.startup()
async def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    assert RUNTIME.config is not None and RUNTIME.reconciler is not None
    configure(settings, RUNTIME.config)
    RUNTIME.queue = WorkQueue()
    config = RUNTIME.config
    # Caches warm on a standby replica too (as controller-runtime's do): a new leader starts at once.
    cached = start_caches(asyncio.get_running_loop(), config)
    RUNTIME.reconciler.kube = cached

    async def start_workers() -> None:
        # No pass before every cache has its first LIST: a Deployment not yet cached would look absent.
        while not await asyncio.to_thread(cached.wait_synced, 10.0):
            log.info(
                "waiting for the caches to sync: %s",
                [i.name for i in RUNTIME.informers if not i.synced.is_set()],
            )
        for i in range(config.workers):
            RUNTIME.tasks.append(asyncio.create_task(_worker(i), name=f"slogate-worker-{i}"))
        RUNTIME.tasks.append(asyncio.create_task(_resync(), name="slogate-resync"))
        # Everything seen while standing by is reconciled now.
        for md in RUNTIME.modeldeployments():
            _enqueue(md["metadata"]["namespace"], md["metadata"]["name"])

    if config.leader_election:
        from slogate.controller.leader import LeaderElector

        elector = LeaderElector(
            RUNTIME.kube, namespace=config.lease_namespace, name=config.lease_name, identity=config.identity
        )
        RUNTIME.tasks.append(asyncio.create_task(elector.run(start_workers), name="slogate-leader"))
    else:
        await start_workers()
    log.info("slogate operator started: %s", config.model_dump(exclude={"log_level"}))


@kopf.on.cleanup()
async def _cleanup(**_: Any) -> None:
    for informer in RUNTIME.informers:
        informer.stop()
    for task in RUNTIME.tasks:
        task.cancel()
    await asyncio.gather(*RUNTIME.tasks, return_exceptions=True)
    RUNTIME.tasks.clear()


async def _worker(index: int) -> None:
    assert RUNTIME.queue is not None and RUNTIME.reconciler is not None
    queue = RUNTIME.queue
    while True:
        key = await queue.get()
        namespace, name = key  # type: ignore[misc]
        try:
            result = await asyncio.to_thread(RUNTIME.reconciler.reconcile, namespace, name)
            queue.forget(key)
            if result.requeue_after:
                queue.add_after(key, result.requeue_after)
        except Exception as exc:
            # Per-object exponential backoff (Retry-After honoured); the server's message reaches
            # the ModelDeployment's status and an Event.
            at_least = exc.delay if isinstance(exc, TransientError) else 0.0
            delay = queue.add_rate_limited(key, at_least=at_least)
            if isinstance(exc, (TransientError, PermanentError)):
                log.warning(
                    "reconcile %s/%s: %s (retry %d in %.3gs)",
                    namespace,
                    name,
                    exc,
                    queue.failures(key),
                    delay,
                )
            else:
                log.exception("reconcile %s/%s failed (retry in %.3gs)", namespace, name, delay)
            await asyncio.to_thread(RUNTIME.reconciler.report_failure, namespace, name, exc)
        finally:
            queue.done(key)


async def _resync() -> None:
    assert RUNTIME.config is not None
    while True:
        await asyncio.sleep(RUNTIME.config.resync_seconds)
        phases: dict[str, int] = {}
        for md in RUNTIME.modeldeployments():
            if RUNTIME.queue is not None:
                RUNTIME.queue.add_resync((md["metadata"]["namespace"], md["metadata"]["name"]))
            phase = (md.get("status") or {}).get("phase") or Phase.PENDING.value
            phases[phase] = phases.get(phase, 0) + 1
        for known in Phase:
            MODEL_DEPLOYMENTS.labels(phase=known.value).set(phases.get(known.value, 0))
