"""Start and stop the local control plane: etcd, kube-apiserver, controller-manager, scheduler,
kwok, Prometheus and the pod-to-simulator bridge, all on 127.0.0.1 with random free ports.

The API server starts the way controller-runtime's envtest starts it (throw-away CA, service-account
key pair, service IP range, RBAC on); then the pieces envtest lacks are added: a controller-manager
(garbage collector, deployments, HPA, service-account tokens), a scheduler and kwok, so pods are
really scheduled onto GPU-shaped fake nodes and become Ready. Every process runs in its own session
and is recorded in ``DIR/state.json``, so ``slogate dev down`` from another shell stops exactly
what ``up`` started. A component that fails to come up raises ``ClusterError`` with its log tail.

The same harness attaches to a cluster it did not start (``attach=Attachment(kubeconfig)``, the kind
path of docs/kind.md): then only the control plane is someone else's, and everything the tests touch
on the host side (kwok and its fake GPU nodes, the CRDs, Prometheus, the bridge and its simulators)
is started by the very same code.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slogate.dev import crds, pki
from slogate.dev.nodes import NodeSet, build_nodes
from slogate.dev.versions import ensure_binaries

SERVICE_CIDR = "10.0.0.0/16"
"""Room for 65,534 Services: every ModelDeployment has two or three (``NAME``, ``NAME-stable``,
``NAME-canary`` in a rollout), so a /24 ran out at ~127 ModelDeployments ("range is full") and the
scale benchmarks need 5,000."""
POD_CIDR = "10.244.0.0/16"

# Audit every write at Metadata level, and the reads of the operators under test (the local one's
# certificate user, the kind one's ServiceAccount): tests count the operator's writes and reads from
# the audit log. Shared with the kind cluster's API server (slogate.dev.kind.kind_config), so both
# paths count the same.
OPERATOR_USERS = ["slogate-operator", "system:serviceaccount:slogate-system:slogate-operator"]
AUDIT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted"],
    "rules": [
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        {"level": "Metadata", "users": OPERATOR_USERS, "verbs": ["get", "list"]},
        {"level": "None"},
    ],
}


class ClusterError(RuntimeError):
    """A component failed to start or to become healthy; the message carries its log tail."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, chosen below the kernel's ephemeral range.

    ``bind(0)`` would pick from the ephemeral range, where any outgoing connection can take the port
    between our check and the component's own bind; ports in 20000-32767 are never handed out for
    outgoing connections, so a free one stays free until the component binds it.
    """
    import random

    for _ in range(200):
        port = random.randint(20000, 32767)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ClusterError("no free TCP port on 127.0.0.1 in 20000-32767")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def find_prometheus() -> str:
    """The prometheus binary from Debian's package (or PATH)."""
    for candidate in (shutil.which("prometheus"), "/usr/bin/prometheus"):
        if candidate and Path(candidate).exists():
            return candidate
    raise ClusterError("prometheus not found: install Debian's package (apt-get install prometheus)")


@dataclass(frozen=True)
class Attachment:
    """An existing cluster the harness attaches to instead of starting a control plane (kind).

    ``operator_user`` is the identity the operator's writes carry in the audit log; when it is a
    ServiceAccount (``system:serviceaccount:NS:NAME``, the chart's) and no ``operator_kubeconfig`` is
    given, the harness writes ``DIR/operator.kubeconfig`` with a token of that ServiceAccount, so an
    operator started on the host acts exactly as the in-cluster one, under the chart's RBAC.
    """

    kubeconfig: Path
    context: str | None = None
    audit_log: Path | None = None
    operator_user: str | None = None
    operator_kubeconfig: Path | None = None

    def to_state(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Attachment:
        paths = ("kubeconfig", "audit_log", "operator_kubeconfig")
        return cls(**{k: (Path(v) if k in paths and v else v) for k, v in data.items()})


def service_account_of(user: str | None) -> tuple[str, str] | None:
    """``(namespace, name)`` of a ServiceAccount user name, else None. Pure.

    >>> service_account_of("system:serviceaccount:slogate-system:slogate-operator")
    ('slogate-system', 'slogate-operator')
    >>> service_account_of("slogate-operator") is None
    True
    """
    parts = (user or "").split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"] and all(parts[2:]):
        return parts[2], parts[3]
    return None


@dataclass
class LocalCluster:
    """A local control plane rooted at ``dir``. ``up()`` starts it, ``down()`` stops every process.

    ``control_plane_only`` starts etcd, the API server, the controller-manager and the scheduler and
    nothing else (a cluster for an attached harness to take, as kind's would be). ``attach`` starts no
    control plane but attaches the host-side pieces to an existing cluster. ``prometheus_host`` and
    ``prometheus_port`` put Prometheus where an in-cluster operator can reach it (kind: the Docker
    network's gateway and a fixed port the chart's ``prometheus.url`` names).

    ``apiserver_only`` starts etcd and the API server and nothing else, and ``apiserver_bin`` runs
    that kube-apiserver instead of the built one: the version matrix (docs/compatibility.md) dry-runs
    objects against an older minor's API server, built by hack/build-matrix.sh, on the same etcd.
    """

    dir: Path
    nodes: NodeSet = field(default_factory=NodeSet)
    optional_crds: bool = True
    prometheus: bool = True
    bridge: bool = True
    bridge_selector: str | None = None
    """Only pods matching this label selector get a simulator (scale runs: probes among thousands)."""
    traffic: bool = True
    """Run the front door (``slogate.dev.frontdoor``) in the bridge: every ModelDeployment gets client
    requests through its Service or HTTPRoute. Off, the simulators see only what tests send."""
    state: dict[str, Any] = field(default_factory=dict)
    control_plane_only: bool = False
    attach: Attachment | None = None
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int | None = None
    apiserver_only: bool = False
    apiserver_bin: Path | None = None

    # ------------------------------------------------------------------ paths and state
    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def env_file(self) -> Path:
        return self.dir / "env"

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.prometheus_host}:{self.state['ports']['prometheus']}"

    @property
    def server(self) -> str:
        """The API server's URL (from the kubeconfig when attached)."""
        if "server" in self.state:
            return self.state["server"]
        return f"https://127.0.0.1:{self.state['ports']['apiserver']}"

    @property
    def ca_file(self) -> Path:
        """The CA bundle that verifies the API server's serving certificate."""
        return self.dir / "ca.crt" if self.attach else self.dir / "pki" / "ca.crt"

    @property
    def audit_log(self) -> Path | None:
        """The API server's audit log (JSON lines), if this harness can read it."""
        return self.attach.audit_log if self.attach else self.logs / "audit.log"

    @property
    def operator_user(self) -> str | None:
        """The user name the operator under test authenticates as (what the audit log records)."""
        return self.attach.operator_user if self.attach else pki.CLIENTS["operator"][0]

    @property
    def operator_kubeconfig(self) -> Path:
        """The kubeconfig an operator started on the host uses: the operator's own identity."""
        if self.attach and self.attach.operator_kubeconfig:
            return self.attach.operator_kubeconfig
        if self.attach and not (self.dir / "operator.kubeconfig").exists():
            return self.kubeconfig
        return self.dir / "operator.kubeconfig"

    @property
    def fake_node_names(self) -> list[str]:
        return [n["metadata"]["name"] for n in build_nodes(self.nodes)]

    def _save(self) -> None:
        self.state_file.write_text(json.dumps(self.state, indent=2))

    @classmethod
    def load(cls, directory: Path) -> LocalCluster:
        """Attach to a cluster started earlier (possibly by another process)."""
        c = cls(Path(directory))
        if not c.state_file.exists():
            raise ClusterError(f"no cluster state in {directory} (run `slogate dev up --dir {directory}`)")
        c.state = json.loads(c.state_file.read_text())
        if c.state.get("attach"):
            c.attach = Attachment.from_state(c.state["attach"])
        c.prometheus_host = c.state.get("prometheus_host", c.prometheus_host)
        return c

    # ------------------------------------------------------------------ processes
    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=self.dir,
        )
        log.close()
        self.state.setdefault("processes", {})[name] = proc.pid
        self._save()

    def _fail(self, name: str, what: str) -> ClusterError:
        return ClusterError(
            f"{name} {what}; last lines of {self.logs / (name + '.log')}:\n{_tail(self.logs / (name + '.log'))}"
        )

    def _wait(self, name: str, check: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        # An attached cluster's control plane is not ours: there is no process to watch, only the check.
        pid = self.state.get("processes", {}).get(name)
        last: Exception | None = None
        while time.monotonic() < deadline:
            if pid is not None and not _alive(pid):
                raise self._fail(name, "exited during start-up")
            try:
                if check():
                    return
            except Exception as exc:
                last = exc
            time.sleep(0.2)
        raise self._fail(name, f"did not become healthy within {timeout:.0f}s ({last})")

    def _https_ok(self, url: str, *, client: str | None = "admin") -> bool:
        p = pki.PKI(self.dir / "pki")
        ctx = ssl.create_default_context(cafile=str(p.ca_crt))
        if client:
            ctx.load_cert_chain(str(p.crt(client)), str(p.key(client)))
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen(url, context=ctx, timeout=2) as r:
            return r.status == 200

    def _crds_established(self, names: list[str]) -> bool:
        """Whether every named CRD has condition ``Established=True``."""
        out = json.loads(self.kubectl("get", "-o", "json", *[f"crd/{n}" for n in names]))
        items = out.get("items", [out]) if out.get("kind") == "List" else [out]
        return len(items) == len(names) and all(
            any(
                c.get("type") == "Established" and c.get("status") == "True"
                for c in (i.get("status") or {}).get("conditions") or []
            )
            for i in items
        )

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, kubeconfig: Path | None = None
    ) -> str:
        """Run the built kubectl against this cluster."""
        result = subprocess.run(
            [
                str(Path(self.state["bin"]) / "kubectl"),
                f"--kubeconfig={kubeconfig or self.kubeconfig}",
                *args,
            ],
            input=input,
            text=True,
            capture_output=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def apply(self, docs: list[dict[str, Any]]) -> None:
        """Server-side apply documents with kubectl."""
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=slogate-dev",
            "-f",
            "-",
            input=yaml.safe_dump_all(docs),
        )

    # ------------------------------------------------------------------ up / down
    def up(self, *, timeout: float = 120) -> LocalCluster:
        """Start everything and wait until nodes are Ready; writes ``kubeconfig`` and ``env``."""
        self.dir = self.dir.resolve()
        if self.state_file.exists():
            old = json.loads(self.state_file.read_text())
            if any(_alive(pid) for pid in old.get("processes", {}).values()):
                raise ClusterError(
                    f"a cluster is already running in {self.dir} (slogate dev down --dir {self.dir})"
                )
        for sub in ("etcd", "prometheus-data", "file_sd", "logs"):
            shutil.rmtree(self.dir / sub, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        binaries = ensure_binaries()
        control = () if self.attach else ("etcd", "etcd_peer", "apiserver", "cm", "scheduler")
        host = () if self.control_plane_only else ("kwok", "prometheus")
        ports = {k: free_port() for k in (*control, *host)}
        if self.prometheus_port and "prometheus" in ports:
            ports["prometheus"] = self.prometheus_port
        self.state = {
            "bin": str(binaries),
            "ports": ports,
            "processes": {},
            "dir": str(self.dir),
            "prometheus_host": self.prometheus_host,
        }
        if self.attach:
            self.state["attach"] = self.attach.to_state()
        self._save()
        try:
            self._up(binaries, ports, timeout)
        except BaseException:
            self.down()
            raise
        self.state["startup_seconds"] = round(time.monotonic() - started, 1)
        self._save()
        return self

    def _up(self, b: Path, ports: dict[str, int], timeout: float) -> None:
        if self.attach:
            self._attach(timeout)
        else:
            self._start_control_plane(b, ports)
        if not (self.control_plane_only or self.apiserver_only):
            self._start_host_side(b, ports, timeout)
        env = {"KUBECONFIG": str(self.kubeconfig), "SLOGATE_DEV_DIR": str(self.dir)}
        if self.prometheus and not (self.control_plane_only or self.apiserver_only):
            env["PROMETHEUS_URL"] = self.prometheus_url
        self.env_file.write_text("".join(f"export {k}={v}\n" for k, v in env.items()))

    def _attach(self, timeout: float) -> None:
        """Take the given cluster: a self-contained copy of its kubeconfig, its CA, a check that it answers."""
        assert self.attach is not None
        src = self.attach.kubeconfig
        if not Path(src).exists():
            raise ClusterError(f"kubeconfig {src} does not exist")
        context = [f"--context={self.attach.context}"] if self.attach.context else []
        flat = self.kubectl(
            "config", "view", "--raw", "--flatten", "--minify", *context, kubeconfig=Path(src)
        )
        self.kubeconfig.write_text(flat)
        self.kubeconfig.chmod(0o600)
        cfg = yaml.safe_load(flat) or {}
        cluster = (cfg.get("clusters") or [{}])[0].get("cluster") or {}
        if not cluster.get("server"):
            raise ClusterError(f"no cluster in {src} (context {self.attach.context or 'current'})")
        self.state["server"] = cluster["server"]
        if cluster.get("certificate-authority-data"):
            import base64

            self.ca_file.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        self._save()
        deadline = time.monotonic() + min(timeout, 60)
        while True:
            try:
                self.kubectl("get", "--raw", "/readyz")
                break
            except ClusterError as exc:
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"the API server {cluster['server']} ({src}) is not ready: {exc}"
                    ) from exc
                time.sleep(1)
        sa = service_account_of(self.attach.operator_user)
        if sa and not self.attach.operator_kubeconfig:
            token = self.kubectl("create", "token", sa[1], "-n", sa[0], "--duration=24h").strip()
            path = self.dir / "operator.kubeconfig"
            path.write_text(
                yaml.safe_dump(token_kubeconfig(cfg, user=self.attach.operator_user, token=token))
            )
            path.chmod(0o600)

    def _start_control_plane(self, b: Path, ports: dict[str, int]) -> None:
        p = pki.generate(self.dir / "pki")
        server = f"https://127.0.0.1:{ports['apiserver']}"
        for user in pki.CLIENTS:
            path = self.kubeconfig if user == "admin" else self.dir / f"{user}.kubeconfig"
            path.write_text(yaml.safe_dump(pki.kubeconfig(p, server=server, user=user)))
            path.chmod(0o600)

        self._start(
            "etcd",
            [
                str(b / "etcd"),
                "--name=slogate",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{ports['etcd']}",
                f"--advertise-client-urls=http://127.0.0.1:{ports['etcd']}",
                f"--listen-peer-urls=http://127.0.0.1:{ports['etcd_peer']}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{ports['etcd_peer']}",
                f"--initial-cluster=slogate=http://127.0.0.1:{ports['etcd_peer']}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=2147483648",
                "--log-level=warn",
            ],
        )
        self._wait(
            "etcd",
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{ports['etcd']}/health", timeout=2).status == 200
            ),
            30,
        )

        audit_policy = self.dir / "audit-policy.yaml"
        audit_policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        self._start(
            "kube-apiserver",
            [
                str(self.apiserver_bin or b / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={ports['apiserver']}",
                f"--cert-dir={self.dir / 'pki'}",
                f"--tls-cert-file={p.crt('apiserver')}",
                f"--tls-private-key-file={p.key('apiserver')}",
                f"--client-ca-file={p.ca_crt}",
                "--authorization-mode=RBAC",
                "--anonymous-auth=true",
                f"--service-account-key-file={p.sa_pub}",
                f"--service-account-signing-key-file={p.sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,DefaultTolerationSeconds,ResourceQuota,"
                "PodSecurity",
                "--endpoint-reconciler-type=none",
                f"--audit-policy-file={audit_policy}",
                f"--audit-log-path={self.logs / 'audit.log'}",
                "--audit-log-format=json",
                "--audit-log-maxsize=200",
                "--v=1",
            ],
        )
        self._wait("kube-apiserver", lambda: self._https_ok(f"{server}/readyz"), 90)
        if self.apiserver_only:
            return

        self._start(
            "kube-controller-manager",
            [
                str(b / "kube-controller-manager"),
                f"--kubeconfig={self.dir / 'controller-manager.kubeconfig'}",
                f"--authentication-kubeconfig={self.dir / 'controller-manager.kubeconfig'}",
                f"--authorization-kubeconfig={self.dir / 'controller-manager.kubeconfig'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['cm']}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={p.sa_key}",
                f"--root-ca-file={p.ca_crt}",
                f"--cluster-signing-cert-file={p.ca_crt}",
                f"--cluster-signing-key-file={self.dir / 'pki' / 'ca.key'}",
                "--controllers=*,-node-ipam-controller",
                "--concurrent-gc-syncs=5",
                "--horizontal-pod-autoscaler-sync-period=5s",
                # client-go's defaults (20 qps, burst 30) would make the controllers, not the operator,
                # the limit of a scale run (1,000 Deployments → ReplicaSets → Pods); raised as in a
                # large cluster's tuning.
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--v=1",
            ],
        )
        self._start(
            "kube-scheduler",
            [
                str(b / "kube-scheduler"),
                f"--kubeconfig={self.dir / 'scheduler.kubeconfig'}",
                f"--authentication-kubeconfig={self.dir / 'scheduler.kubeconfig'}",
                f"--authorization-kubeconfig={self.dir / 'scheduler.kubeconfig'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['scheduler']}",
                "--leader-elect=false",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--v=1",
            ],
        )
        self._wait(
            "kube-controller-manager",
            lambda: self._https_ok(f"https://127.0.0.1:{ports['cm']}/healthz", client=None),
            60,
        )
        self._wait(
            "kube-scheduler",
            lambda: self._https_ok(f"https://127.0.0.1:{ports['scheduler']}/healthz", client=None),
            60,
        )

    def _start_host_side(self, b: Path, ports: dict[str, int], timeout: float) -> None:
        """kwok and its fake GPU nodes, the CRDs, Prometheus and the bridge: the same for an attached
        cluster as for our own control plane."""
        kwok_config = self.dir / "kwok.yaml"
        kwok_config.write_text(crds.kwok_config())
        self._start(
            "kwok",
            [
                str(b / "kwok"),
                f"--kubeconfig={self.kubeconfig}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--manage-nodes-with-label-selector=",
                f"--config={kwok_config}",
                f"--cidr={POD_CIDR}",
                "--node-ip=10.1.0.1",
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{ports['kwok']}",
            ],
        )
        docs = crds.our_crds() + (crds.optional_crds() if self.optional_crds else [])
        self.apply(docs)
        # Polled, not `kubectl wait`: on a CRD whose status has no conditions yet (a busy API server
        # right after the create), kubectl wait fails at once with ".status.conditions accessor error".
        names = [d["metadata"]["name"] for d in docs]
        self._wait("kube-apiserver", lambda: self._crds_established(names), 60)
        self.apply(build_nodes(self.nodes))
        self._wait("kwok", lambda: self._nodes_ready(), timeout)

        if self.prometheus:
            self._start_prometheus(ports["prometheus"])
        if self.bridge:
            self._start(
                "bridge",
                [
                    sys.executable,
                    "-m",
                    "slogate.dev.bridge",
                    f"--dir={self.dir}",
                    f"--kubeconfig={self.kubeconfig}",
                    *([f"--selector={self.bridge_selector}"] if self.bridge_selector else []),
                    *(["--traffic"] if self.traffic else []),
                ],
            )
            self._wait("bridge", lambda: (self.dir / "bridge.ready").exists(), 30)

    def _nodes_ready(self) -> bool:
        out = json.loads(self.kubectl("get", "nodes", "-o", "json"))
        # Only our fake nodes count: an attached cluster has its own (kind's) node besides.
        ours = set(self.fake_node_names)
        items = [n for n in out["items"] if n["metadata"]["name"] in ours]
        want = len(ours)
        ready = [
            n
            for n in items
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]
        # The node-lifecycle controller lifts the not-ready taint that admission puts on new nodes.
        tainted = [
            n
            for n in ready
            if any(t["key"] == "node.kubernetes.io/not-ready" for t in n.get("spec", {}).get("taints") or [])
        ]
        return len(ready) >= want and not tainted

    def _start_prometheus(self, port: int) -> None:
        sd = self.dir / "file_sd"
        sd.mkdir(parents=True, exist_ok=True)
        if not (sd / "sims.json").exists():
            (sd / "sims.json").write_text("[]")
        config = {
            "global": {"scrape_interval": "2s", "evaluation_interval": "2s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {
                    # Targets and their labels come from the bridge, shaped like a PodMonitor's.
                    "job_name": "slogate-pods",
                    "file_sd_configs": [{"files": [str(sd / "*.json")], "refresh_interval": "1s"}],
                },
            ],
        }
        cfg = self.dir / "prometheus.yml"
        cfg.write_text(yaml.safe_dump(config))
        self._start(
            "prometheus",
            [
                find_prometheus(),
                f"--config.file={cfg}",
                f"--storage.tsdb.path={self.dir / 'prometheus-data'}",
                f"--web.listen-address={self.prometheus_host}:{port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
                "--storage.tsdb.retention.time=1d",
            ],
        )
        self._wait(
            "prometheus",
            lambda: urllib.request.urlopen(f"{self.prometheus_url}/-/ready", timeout=2).status == 200,
            60,
        )

    def down(self, *, timeout: float = 15) -> list[str]:
        """Stop every recorded process (newest first), SIGTERM then SIGKILL. Returns names still alive (none).

        Attached, it first deletes the fake nodes it created (their pods go with them); the attached
        cluster itself, and the CRDs applied to it, stay.
        """
        procs: dict[str, int] = self.state.get("processes", {})
        if self.attach and procs and self.kubeconfig.exists():
            try:
                self.kubectl("delete", "node", "--ignore-not-found", "--wait=false", *self.fake_node_names)
            except (ClusterError, OSError, KeyError):
                pass  # the cluster may be gone already; processes are stopped regardless
        for _name, pid in reversed(list(procs.items())):
            if _alive(pid):
                try:
                    os.killpg(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_alive(pid) for pid in procs.values()):
            time.sleep(0.1)
        for pid in procs.values():
            if _alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.2)
        for pid in procs.values():  # reap our own children so they are not left as zombies
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        left = [name for name, pid in procs.items() if _alive(pid)]
        self.state["processes"] = {}
        if self.state_file.parent.exists():
            self._save()
        (self.dir / "bridge.ready").unlink(missing_ok=True)
        return left

    def stop_component(self, name: str) -> None:
        """Stop one component (fault injection: e.g. a Prometheus outage)."""
        pid = self.state["processes"].get(name)
        if pid and _alive(pid):
            os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass

    def start_prometheus_again(self) -> None:
        """Restart a stopped Prometheus on its port (its data directory survives)."""
        self._start_prometheus(self.state["ports"]["prometheus"])

    def audit_writes(self, user: str, *, since: float | None = None) -> list[dict[str, Any]]:
        """Write requests by ``user`` recorded in the audit log (ResponseComplete), optionally since a Unix time."""
        return [e for e in self.audit_events(user, since=since) if e.get("verb") not in ("get", "list")]

    def audit_reads(self, user: str, *, since: float | None = None) -> list[dict[str, Any]]:
        """GET and LIST requests (not WATCH) by the operator's ``user`` in the audit log, since a Unix time."""
        assert user in OPERATOR_USERS, f"the audit policy records reads only of {OPERATOR_USERS}"
        return [e for e in self.audit_events(user, since=since) if e.get("verb") in ("get", "list")]

    def audit_events(self, user: str, *, since: float | None = None) -> list[dict[str, Any]]:
        """Requests by ``user`` recorded in the audit log (ResponseComplete), optionally since a Unix time."""
        path = self.audit_log
        if path is None:
            raise ClusterError(
                "this cluster's audit log is not readable here (kind: see docs/kind.md, Audit log)"
            )
        out: list[dict[str, Any]] = []
        if not path.exists():
            return out
        for line in path.read_text().splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("stage") != "ResponseComplete" or ev.get("user", {}).get("username") != user:
                continue
            if since is not None:
                from slogate.core.timefmt import parse_rfc3339

                at = parse_rfc3339(ev.get("requestReceivedTimestamp"))
                if at is None or at.timestamp() < since:
                    continue
            out.append(ev)
        return out

    def status(self) -> dict[str, Any]:
        """Which components run, on which ports."""
        return {
            "dir": str(self.dir),
            "components": {
                name: {"pid": pid, "running": _alive(pid)}
                for name, pid in self.state.get("processes", {}).items()
            },
            "ports": self.state.get("ports", {}),
            "kubeconfig": str(self.kubeconfig),
        }


def token_kubeconfig(flat: dict[str, Any], *, user: str, token: str) -> dict[str, Any]:
    """A copy of a flattened one-context kubeconfig that authenticates with a bearer token. Pure."""
    ctx = flat["contexts"][0]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": flat["clusters"][:1],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": ctx["name"], "context": {"cluster": ctx["context"]["cluster"], "user": user}}],
        "current-context": ctx["name"],
    }


def default_dir() -> Path:
    """``$SLOGATE_DEV_DIR`` or ``.slogate-dev`` in the current directory."""
    return Path(os.environ.get("SLOGATE_DEV_DIR") or Path.cwd() / ".slogate-dev")


def temporary_cluster(**kwargs: Any) -> LocalCluster:
    """A cluster in a fresh temporary directory (tests, benchmarks)."""
    return LocalCluster(Path(tempfile.mkdtemp(prefix="slogate-dev-")), **kwargs)
