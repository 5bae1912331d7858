"""The local cluster's front door: clients that send requests to each ModelDeployment, delivered the
way the cluster would deliver them.

kwok's pods run no containers and the local cluster has no kube-proxy and no gateway, so nothing
would carry a request from a Service or an HTTPRoute to a pod's simulator. The front door does it:

- **Who sends.** One client per ModelDeployment (and per standalone target in the rules file), at
  ``rps`` requests a second (open loop), each a ``/v1/chat/completions`` request with the request mix
  of its :class:`TrafficConfig`: streamed with probability ``streamed_share``, a prompt of about
  ``prompt_tokens`` tokens (the simulators count four characters a token,
  ``slogate.sim.server.estimate_tokens``), ``max_tokens`` around ``generation_tokens``. The model
  name is the ModelDeployment's served name (``spec.model.servedName``, else its name), as a client
  of the real thing sends it.
- **Where it goes.** The ModelDeployment's front door is its root Service ``NAME`` with the
  ``replicas`` router and its HTTPRoute ``NAME`` (rule 0) with the ``gatewayAPI`` router
  (:func:`front_door_of`). Each request is decided by :func:`slogate.dev.router.deliver` over a
  :class:`~slogate.dev.router.RoutingState` built from the API server's EndpointSlices, Services,
  HTTPRoutes and ReferenceGrants, kept by watches (:class:`ApiCache`), never from the operator's
  status. Fallback needs nothing special: the operator moves the root Service's selector or the
  route's backendRefs, and the next requests follow.
- **What the client sees.** The primary request goes to the chosen endpoint's simulator over HTTP and
  is judged as a client judges it (``slogate.sim.loadgen.send_one``); a gateway's 500/503/404 or
  kube-proxy's refused connection is recorded without any simulator seeing the request. Mirrored
  copies are sent to their endpoints and their responses are read and discarded.
- **What is recorded.** Per client, ``traffic.json`` in the cluster directory (:class:`Ledger`):
  requests sent, the revision (and ModelDeployment) whose pod answered each client, what the client
  saw, gateway statuses, refused connections, mirrored copies per revision and the filters the model
  ignored. The demo and the tests read it; the simulators' own metrics in Prometheus are the other
  side of the same requests.

Rates and mixes are set with ``slogate dev traffic set`` (rules in ``traffic-rules.json``, later
rules win, like ``sim set``). Every ModelDeployment gets :data:`DEFAULT_RPS` unless a rule says
otherwise. The simulators themselves generate no load unless a test asks for it (``sim set --rps``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from slogate.dev import router as R
from slogate.sim.sampling import due_requests, sample_count

log = logging.getLogger("slogate.dev.frontdoor")

RULES_FILE = "traffic-rules.json"
LEDGER_FILE = "traffic.json"
DEFAULT_RPS = 10.0
"""Requests a second each ModelDeployment gets when no rule sets its rate."""
MAX_RPS = 200.0
MAX_IN_FLIGHT = 512
"""Requests one client keeps open at most; more are counted as ``skipped`` (the client is saturated)."""
TICK_S = 0.05
REQUEST_TIMEOUT_S = 120.0
CHARS_PER_TOKEN = 4
"""``slogate.sim.server.estimate_tokens`` counts ``(len(text) + 3) // 4`` tokens in a prompt."""
UNLABELLED = "-"


class TrafficError(ValueError):
    """A traffic setting was rejected; the message names the field."""


@dataclass(frozen=True)
class TrafficConfig:
    """What one client sends. Immutable; :func:`resolve_config` builds it from the rules."""

    rps: float = DEFAULT_RPS
    """Requests a second (open loop: the next request does not wait for the last answer)."""
    streamed_share: float = 1.0
    """Fraction of the requests sent with ``"stream": true``."""
    prompt_tokens: int = 512
    """Mean prompt length, tokens."""
    generation_tokens: int = 64
    """Mean ``max_tokens``; the simulators generate exactly ``max_tokens`` when nothing fails."""
    jitter: float = 0.2
    """Coefficient of variation of the prompt and generation lengths (lognormal); 0 = exact."""

    def __post_init__(self) -> None:
        _number("rps", self.rps, 0.0, MAX_RPS)
        _number("streamed_share", self.streamed_share, 0.0, 1.0)
        _number("jitter", self.jitter, 0.0, 2.0)
        for name in ("prompt_tokens", "generation_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
                raise TrafficError(f"{name} must be an integer between 1 and 100000, got {value!r}")


CONFIG_FIELDS = tuple(f.name for f in fields(TrafficConfig))


def _number(name: str, value: Any, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise TrafficError(f"{name} must be a number between {lo:g} and {hi:g}, got {value!r}")


def apply_change(cfg: TrafficConfig, change: Mapping[str, Any]) -> TrafficConfig:
    """``cfg`` with ``change`` applied; unknown fields and bad values raise :class:`TrafficError`. Pure."""
    unknown = sorted(set(change) - set(CONFIG_FIELDS))
    if unknown:
        raise TrafficError(
            f"unknown traffic field(s): {', '.join(unknown)}; known: {', '.join(CONFIG_FIELDS)}"
        )
    values = dict(change)
    for name in ("prompt_tokens", "generation_tokens"):
        if isinstance(values.get(name), float) and values[name].is_integer():
            values[name] = int(values[name])
    for name in ("rps", "streamed_share", "jitter"):
        if isinstance(values.get(name), int) and not isinstance(values.get(name), bool):
            values[name] = float(values[name])
    return replace(cfg, **values)


@dataclass(frozen=True)
class TrafficRule:
    """One line of ``traffic-rules.json``: a change for the clients it matches.

    ``namespace``/``name`` ``None`` match every namespace / every ModelDeployment. With ``target`` the
    rule also *creates* a standalone client (not tied to a ModelDeployment) that sends to that
    ``Service`` or ``HTTPRoute`` in ``namespace``, with ``model`` as the model name: how the tests
    exercise routes the operator did not write.
    """

    change: Mapping[str, Any]
    namespace: str | None = None
    name: str | None = None
    target: tuple[str, str] | None = None
    """``(kind, name)``: ``("Service", "svc")`` or ``("HTTPRoute", "route")``."""
    model: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrafficRule:
        target = d.get("target")
        if target is not None:
            kind, name = target.get("kind"), target.get("name")
            if kind not in ("Service", "HTTPRoute") or not name or not d.get("namespace"):
                raise TrafficError("a target needs kind Service or HTTPRoute, a name and a namespace")
            target = (kind, name)
        return cls(
            change=dict(d.get("config") or {}),
            namespace=d.get("namespace"),
            name=d.get("name"),
            target=target,
            model=d.get("model"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"namespace": self.namespace, "name": self.name, "config": dict(self.change)}
        if self.target is not None:
            out["target"] = {"kind": self.target[0], "name": self.target[1]}
            out["model"] = self.model
        return out


def resolve_config(
    rules: Iterable[TrafficRule], namespace: str, name: str, base: TrafficConfig | None = None
) -> TrafficConfig:
    """The config of the client ``namespace/name``: ``base`` (the defaults), then every matching rule
    in order. A rule that fails validation is skipped with a log line, so one typo does not stop
    every client. Pure but for the log."""
    cfg = base or TrafficConfig()
    for rule in rules:
        if rule.namespace not in (None, namespace) or rule.name not in (None, name):
            continue
        try:
            cfg = apply_change(cfg, rule.change)
        except (TrafficError, TypeError) as exc:
            log.warning("ignoring traffic rule %s: %s", rule.to_dict(), exc)
    return cfg


@dataclass(frozen=True)
class Client:
    """One source of requests: a ModelDeployment's users, or a standalone target's."""

    key: str
    """``namespace/name`` of the ModelDeployment; ``namespace/Kind/name`` of a standalone target."""
    namespace: str
    name: str
    target: R.ServiceTarget | R.RouteTarget
    model: str
    config: TrafficConfig


def front_door_of(md: Mapping[str, Any]) -> R.ServiceTarget | R.RouteTarget:
    """Where a ModelDeployment's clients send: its HTTPRoute ``NAME`` (rule 0) through the gateway with
    the ``gatewayAPI`` and ``inferencePool`` routers, else its root Service ``NAME`` (``core.traffic``: the operator names
    both after the ModelDeployment). Pure."""
    meta = md["metadata"]
    traffic = ((md.get("spec") or {}).get("rollout") or {}).get("traffic") or {}
    if traffic.get("router") in ("gatewayAPI", "inferencePool"):
        return R.RouteTarget(meta["namespace"], meta["name"], 0)
    return R.ServiceTarget(meta["namespace"], meta["name"])


def served_model_of(md: Mapping[str, Any]) -> str:
    """The model name a client asks for: ``spec.model.servedName``, else the ModelDeployment's name
    (what the operator passes as ``--served-model-name``). Pure."""
    return ((md.get("spec") or {}).get("model") or {}).get("servedName") or md["metadata"]["name"]


def clients_for(
    mds: Iterable[Mapping[str, Any]], rules: Iterable[TrafficRule], base: TrafficConfig | None = None
) -> list[Client]:
    """Every client the front door runs now: one per ModelDeployment that is not being deleted, and one
    per standalone target rule. Pure."""
    rules = list(rules)
    out: list[Client] = []
    for md in mds:
        meta = md.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        ns, name = meta["namespace"], meta["name"]
        out.append(
            Client(
                f"{ns}/{name}",
                ns,
                name,
                front_door_of(md),
                served_model_of(md),
                resolve_config(rules, ns, name, base),
            )
        )
    for rule in rules:
        if rule.target is None:
            continue
        kind, name = rule.target
        assert rule.namespace is not None
        target: R.ServiceTarget | R.RouteTarget = (
            R.RouteTarget(rule.namespace, name, 0)
            if kind == "HTTPRoute"
            else R.ServiceTarget(rule.namespace, name)
        )
        cfg = resolve_config([r for r in rules if r.target is None or r is rule], rule.namespace, name, base)
        out.append(
            Client(f"{rule.namespace}/{kind}/{name}", rule.namespace, name, target, rule.model or name, cfg)
        )
    # Later target rules for the same key replace earlier ones.
    return list({c.key: c for c in out}.values())


def request_body(cfg: TrafficConfig, model: str, rng: random.Random) -> dict[str, Any]:
    """One chat-completions request drawn from ``cfg``'s mix. Pure but for ``rng``.

    The prompt is ``4 x n`` characters for a draw ``n`` around ``prompt_tokens``, which the
    simulators count as ``n`` tokens; ``max_tokens`` is a draw around ``generation_tokens``.
    """
    prompt = sample_count(cfg.prompt_tokens, cfg.jitter, rng)
    generation = sample_count(cfg.generation_tokens, cfg.jitter, rng)
    stream = cfg.streamed_share >= 1.0 or rng.random() < cfg.streamed_share
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "x" * (CHARS_PER_TOKEN * prompt)}],
        "max_tokens": generation,
        "stream": stream,
    }
    return body


# ---------------------------------------------------------------------------------------------
# The ledger: what every client sent and saw.


@dataclass
class ClientLedger:
    """Counts for one client since the front door started it. Plain data, JSON in ``traffic.json``."""

    namespace: str
    name: str
    target: str
    model: str
    rps: float
    sent: int = 0
    answered: dict[str, int] = field(default_factory=dict)
    """Requests answered by a pod, by the pod's ``slogate.io/revision`` label."""
    answered_by: dict[str, int] = field(default_factory=dict)
    """The same by the pod's ``slogate.io/deployment`` label (the fallback tier is another one)."""
    seen: dict[str, int] = field(default_factory=dict)
    """What the client saw (``slogate.sim.loadgen.Seen`` values, plus ``refused``, ``skipped``)."""
    statuses: dict[str, int] = field(default_factory=dict)
    """HTTP statuses the client received, the gateway's own included."""
    reasons: dict[str, int] = field(default_factory=dict)
    """Why each delivery ended as it did (``slogate.dev.router.Reason``)."""
    mirrored: dict[str, int] = field(default_factory=dict)
    """Mirrored copies sent, by the receiving pod's revision; their responses were discarded."""
    mirror_statuses: dict[str, int] = field(default_factory=dict)
    ignored_filters: list[str] = field(default_factory=list)
    in_flight: int = 0
    rate: float = 0.0
    """Requests a second over the last ten seconds."""
    _times: deque[tuple[float, int]] = field(default_factory=deque, repr=False)

    def count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1

    def tick_rate(self, now: float) -> None:
        self._times.append((now, self.sent))
        while len(self._times) > 2 and now - self._times[1][0] >= 10.0:
            self._times.popleft()
        t0, s0 = self._times[0]
        self.rate = round((self.sent - s0) / (now - t0), 2) if now > t0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("_times", None)
        return out


def shares(answered: Mapping[str, int]) -> dict[str, float]:
    """Each key's share of the answers, in percent, two decimals. Pure.

    >>> shares({"a": 1, "b": 3})
    {'a': 25.0, 'b': 75.0}
    """
    total = sum(answered.values())
    return {k: round(100.0 * v / total, 2) for k, v in sorted(answered.items())} if total else {}


def binomial_tolerance(n: int, p: float, sigmas: float = 4.0) -> float:
    """Half-width of the interval ``p ± sigmas·sqrt(p(1-p)/n)`` for an observed share of ``n``
    Bernoulli(``p``) draws (normal approximation; 4 sigmas: a correct router fails it about once in
    16,000 runs). Pure.

    >>> round(binomial_tolerance(400, 0.1), 4)
    0.06
    """
    if n <= 0:
        return 1.0
    return sigmas * math.sqrt(p * (1.0 - p) / n)


def read_ledger(directory: Path) -> dict[str, dict[str, Any]]:
    """``traffic.json``: every client's ledger by key (empty when the front door has not written yet)."""
    path = Path(directory) / LEDGER_FILE
    try:
        return json.loads(path.read_text()).get("clients", {})
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def read_rules(directory: Path) -> list[TrafficRule]:
    path = Path(directory) / RULES_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    return [TrafficRule.from_dict(r) for r in raw]


def set_traffic(
    directory: Path,
    *,
    change: Mapping[str, Any],
    namespace: str | None = None,
    name: str | None = None,
    target: tuple[str, str] | None = None,
    model: str | None = None,
) -> TrafficRule:
    """Record a traffic rule (``slogate dev traffic set``, the demo and the tests); the front door
    reads the file on its next tick. Validates the change first, so a bad one never reaches the file."""
    apply_change(TrafficConfig(), change)
    rule = TrafficRule(change=dict(change), namespace=namespace, name=name, target=target, model=model)
    if target is not None:
        TrafficRule.from_dict(rule.to_dict())
    path = Path(directory) / RULES_FILE
    raw = json.loads(path.read_text()) if path.exists() else []
    raw.append(rule.to_dict())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(raw, indent=1))
    tmp.replace(path)
    return rule


# ---------------------------------------------------------------------------------------------
# Watch-fed copies of the API objects routing depends on.


@dataclass(frozen=True)
class Resource:
    """One kind the cache keeps: how to list (and watch) it."""

    name: str
    lister: Callable[..., Any]


class ApiCache:
    """Watch-fed copies of the objects routing depends on, one thread per kind.

    Each thread lists (``resourceVersion`` from the list), then watches from there, applying ADDED,
    MODIFIED and DELETED to its dict; on a watch error (410 Gone) it lists again. A kind whose API is
    not served (the Gateway API CRDs are optional) is retried every few seconds and is empty until
    then. ``state()`` builds the :class:`~slogate.dev.router.RoutingState` once per change.
    """

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        core, disc, custom = (
            client.CoreV1Api(api_client),
            client.DiscoveryV1Api(api_client),
            client.CustomObjectsApi(api_client),
        )
        gw = "gateway.networking.k8s.io"
        self.resources = [
            Resource("endpointslices", disc.list_endpoint_slice_for_all_namespaces),
            Resource("services", core.list_service_for_all_namespaces),
            Resource(
                "httproutes", lambda **kw: custom.list_cluster_custom_object(gw, "v1", "httproutes", **kw)
            ),
            Resource(
                "referencegrants",
                lambda **kw: custom.list_cluster_custom_object(gw, "v1beta1", "referencegrants", **kw),
            ),
            Resource(
                "inferencepools",
                lambda **kw: custom.list_cluster_custom_object(
                    "inference.networking.k8s.io", "v1", "inferencepools", **kw
                ),
            ),
            # Pods only for InferencePool members (a pool selects pods, not an EndpointSlice).
            Resource("pods", core.list_pod_for_all_namespaces),
            Resource(
                "modeldeployments",
                lambda **kw: custom.list_cluster_custom_object(
                    "slogate.io", "v1alpha1", "modeldeployments", **kw
                ),
            ),
        ]
        self._items: dict[str, dict[str, dict[str, Any]]] = {r.name: {} for r in self.resources}
        self._synced: set[str] = set()
        self._lock = threading.Lock()
        self._version = 0
        self._built: tuple[int, R.RoutingState] | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for res in self.resources:
            t = threading.Thread(target=self._run, args=(res,), name=f"watch-{res.name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()

    @property
    def synced(self) -> bool:
        with self._lock:
            return len(self._synced) == len(self.resources)

    def items(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items[kind].values())

    def state(self) -> R.RoutingState:
        with self._lock:
            if self._built is not None and self._built[0] == self._version:
                return self._built[1]
            version = self._version
            slices = list(self._items["endpointslices"].values())
            services = list(self._items["services"].values())
            routes = list(self._items["httproutes"].values())
            grants = list(self._items["referencegrants"].values())
            pools = list(self._items["inferencepools"].values())
            pods = list(self._items["pods"].values()) if pools else []
        try:
            built = R.build_state(
                endpointslices=slices,
                services=services,
                httproutes=routes,
                referencegrants=grants,
                inferencepools=pools,
                pods=pods,
            )
        except ValueError as exc:  # a route the API server would not have accepted: skip routes
            log.warning("routing state without HTTPRoutes: %s", exc)
            built = R.build_state(endpointslices=slices, services=services, referencegrants=grants)
        with self._lock:
            self._built = (version, built)
        return built

    @staticmethod
    def _key(obj: Mapping[str, Any]) -> str:
        meta = obj.get("metadata") or {}
        return f"{meta.get('namespace', '')}/{meta.get('name', '')}"

    def _changed(self, kind: str) -> None:
        """Count a change (under the lock): the next ``state()`` rebuilds. Pods matter only to
        InferencePools, so without any pool a pod's frequent status updates rebuild nothing."""
        if kind != "pods" or self._items["inferencepools"]:
            self._version += 1

    def _replace(self, kind: str, items: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            self._items[kind] = items
            self._synced.add(kind)
            self._changed(kind)

    def _event(self, kind: str, typ: str, obj: dict[str, Any]) -> None:
        with self._lock:
            if typ == "DELETED":
                self._items[kind].pop(self._key(obj), None)
            else:
                self._items[kind][self._key(obj)] = obj
            self._changed(kind)

    def _run(self, res: Resource) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        while not self._stop.is_set():
            try:
                resp = res.lister(_preload_content=False, timeout_seconds=30)
                doc = json.loads(resp.data)
                self._replace(res.name, {self._key(o): o for o in doc.get("items") or ()})
                rv = doc["metadata"]["resourceVersion"]
                while not self._stop.is_set():
                    relist = True
                    w = watch.Watch()
                    for ev in w.stream(
                        res.lister, resource_version=rv, timeout_seconds=60, allow_watch_bookmarks=True
                    ):
                        typ, obj = ev["type"], ev["raw_object"]
                        if typ == "ERROR":
                            break
                        rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                        if typ != "BOOKMARK":
                            self._event(res.name, typ, obj)
                    else:
                        relist = False  # the watch timed out normally: resume from rv
                    if relist:
                        break
            except ApiException as exc:
                if exc.status == 404:  # the API is not served (yet): empty, try again later
                    self._replace(res.name, {})
                    self._stop.wait(5.0)
                    continue
                log.warning("watching %s: %s", res.name, exc)
                self._stop.wait(1.0)
            except Exception as exc:
                log.warning("watching %s: %r", res.name, exc)
                self._stop.wait(1.0)


def with_listening(state: R.RoutingState, listening: frozenset[str]) -> R.RoutingState:
    """``state`` with every endpoint whose pod (``namespace/pod``) has no simulator listening marked
    not ready and not serving. Pure.

    On a real cluster a pod is Ready only once its readiness probe passes, that is once the server
    answers. kwok marks pods Ready without running anything, and the bridge starts a pod's simulator
    a moment later; without this, requests in that moment would go to an endpoint nobody listens on,
    which a real cluster would not do.
    """

    def mark(namespace: str, endpoints: tuple[R.Endpoint, ...]) -> tuple[R.Endpoint, ...]:
        return tuple(
            ep
            if ep.pod is None or f"{namespace}/{ep.pod}" in listening
            else replace(ep, ready=False, serving=False)
            for ep in endpoints
        )

    services = {ref: mark(ref.namespace, eps) for ref, eps in state.services.items()}
    pools = {ref: replace(p, endpoints=mark(ref.namespace, p.endpoints)) for ref, p in state.pools.items()}
    return replace(state, services=services, pools=pools)


# ---------------------------------------------------------------------------------------------
# The sender.

SimLookup = Callable[[str, str], "tuple[int, Mapping[str, str]] | None"]
"""``(namespace, pod) → (simulator port, pod labels)``, or ``None`` when the pod has no simulator."""


class FrontDoor:
    """Runs the clients: every tick, each client's due requests are delivered and sent."""

    def __init__(
        self,
        directory: Path,
        cache: ApiCache,
        lookup: SimLookup,
        *,
        base: TrafficConfig | None = None,
        seed: int | None = None,
        listening: Callable[[], frozenset[str]] | None = None,
    ) -> None:
        self.dir = Path(directory)
        self.cache = cache
        self.lookup = lookup
        self.listening = listening
        self._derived: tuple[R.RoutingState, frozenset[str], R.RoutingState] | None = None
        self.base = base or TrafficConfig()
        self.rng = random.Random(seed)
        self.ledgers: dict[str, ClientLedger] = {}
        self._carry: dict[str, float] = {}
        self._rules: tuple[float, list[TrafficRule]] = (-1.0, [])
        self._tasks: set[asyncio.Task[None]] = set()

    def rules(self) -> list[TrafficRule]:
        path = self.dir / RULES_FILE
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return []
        if mtime != self._rules[0]:
            try:
                self._rules = (mtime, read_rules(self.dir))
            except (TrafficError, json.JSONDecodeError, AttributeError) as exc:
                log.warning("ignoring %s: %s", path, exc)
        return self._rules[1]

    async def run(self, stopping: asyncio.Event) -> None:
        import aiohttp

        loop = asyncio.get_running_loop()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S), connector=connector
        ) as session:
            last = loop.time()
            written = 0.0
            while not stopping.is_set():
                try:
                    await asyncio.wait_for(stopping.wait(), timeout=TICK_S)
                except TimeoutError:
                    pass
                now = loop.time()
                if self.cache.synced:
                    self.tick(session, min(now - last, 1.0))
                last = now
                if now - written >= 1.0:
                    self.write(time.monotonic())
                    written = now
            # Let the requests in flight finish (a client does not hang up on stop), then cancel.
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=5.0)
            for task in list(self._tasks):
                task.cancel()
            self.write(time.monotonic())

    def tick(self, session: Any, dt_s: float) -> None:
        clients = clients_for(self.cache.items("modeldeployments"), self.rules(), self.base)
        keys = {c.key for c in clients}
        for gone in [k for k in self.ledgers if k not in keys]:
            del self.ledgers[gone]
            self._carry.pop(gone, None)
        state = self.routing_state()
        for c in clients:
            ledger = self.ledgers.get(c.key)
            if ledger is None:
                kind = "HTTPRoute" if isinstance(c.target, R.RouteTarget) else "Service"
                ledger = self.ledgers[c.key] = ClientLedger(
                    c.namespace, c.name, f"{kind} {c.target.namespace}/{c.target.name}", c.model, c.config.rps
                )
            ledger.rps = c.config.rps
            n, self._carry[c.key] = due_requests(self._carry.get(c.key, 0.0), c.config.rps, dt_s)
            for _ in range(n):
                ledger.sent += 1
                if ledger.in_flight >= MAX_IN_FLIGHT:
                    ledger.count(ledger.seen, "skipped")
                    continue
                delivery = R.deliver(state, c.target, self.rng)
                body = request_body(c.config, c.model, self.rng)
                self._spawn(self._send(session, ledger, c, delivery, body))

    def routing_state(self) -> R.RoutingState:
        """The cache's state, with the endpoints whose simulator is not listening yet taken out of
        rotation (:func:`with_listening`), rebuilt only when either changes."""
        state = self.cache.state()
        if self.listening is None:
            return state
        listening = self.listening()
        if self._derived is None or self._derived[0] is not state or self._derived[1] != listening:
            self._derived = (state, listening, with_listening(state, listening))
        return self._derived[2]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(
        self, session: Any, ledger: ClientLedger, c: Client, d: R.Delivery, body: dict[str, Any]
    ) -> None:
        from slogate.sim.loadgen import Seen, send_one

        ledger.count(ledger.reasons, str(d.reason))
        for name in d.ignored_filters:
            if name not in ledger.ignored_filters:
                ledger.ignored_filters.append(name)
        for copy in d.mirrors:
            self._spawn(self._mirror(session, ledger, copy, body))
        if d.refused:
            ledger.count(ledger.seen, "refused")
            return
        if d.endpoint is None:
            ledger.count(ledger.seen, str(Seen.HTTP_ERROR))
            ledger.count(ledger.statuses, str(d.status))
            return
        assert d.service is not None
        found = self.lookup(d.service.namespace, d.endpoint.pod or "")
        if found is None:  # Ready in the EndpointSlice, but the bridge has not started its simulator yet
            ledger.count(ledger.seen, str(Seen.TRANSPORT_ERROR))
            ledger.count(ledger.reasons, "NoSimulator")
            return
        port, labels = found
        ledger.count(ledger.answered, labels.get("slogate.io/revision", UNLABELLED))
        ledger.count(ledger.answered_by, labels.get("slogate.io/deployment", UNLABELLED))
        ledger.in_flight += 1
        try:
            seen, status, _ = await send_one(
                session, f"http://127.0.0.1:{port}/v1/chat/completions", body, stream=bool(body["stream"])
            )
        finally:
            ledger.in_flight -= 1
        ledger.count(ledger.seen, str(seen))
        if status is not None:
            ledger.count(ledger.statuses, str(status))

    async def _mirror(
        self, session: Any, ledger: ClientLedger, copy: R.MirrorCopy, body: dict[str, Any]
    ) -> None:
        from slogate.sim.loadgen import send_one

        found = self.lookup(copy.service.namespace, copy.endpoint.pod or "")
        if found is None:
            ledger.count(ledger.mirror_statuses, "no-simulator")
            return
        port, labels = found
        ledger.count(ledger.mirrored, labels.get("slogate.io/revision", UNLABELLED))
        # The gateway ignores the mirror's response: read to the end, keep only its status for the record.
        _, status, _ = await send_one(
            session, f"http://127.0.0.1:{port}/v1/chat/completions", body, stream=bool(body["stream"])
        )
        ledger.count(ledger.mirror_statuses, str(status))

    def write(self, now: float) -> None:
        for ledger in self.ledgers.values():
            ledger.tick_rate(now)
        doc = {"written": time.time(), "clients": {k: v.to_dict() for k, v in sorted(self.ledgers.items())}}
        path = self.dir / LEDGER_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(path)
