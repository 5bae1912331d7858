"""The operator image, built by podman from the Dockerfile, running as the chart's pod would, in-cluster.

hack/build-image.sh builds the image (on our machines and in CI on the local Debian base of
hack/build-base-image.sh, docs/image.md). The container's settings are read from the chart's rendered
Deployment, not restated: command and args, env (the downward API's POD_NAME/POD_NAMESPACE filled in
as the kubelet fills them), the pod's and the container's securityContext (user, group, fsGroup,
read-only root, no privilege escalation, dropped capabilities, the runtime's default seccomp), its
volumes (the emptyDir and the ConfigMap as directories; nothing else is writable: podman's own tmpfs
mounts of a read-only container are turned off), its probes and ports, its grace period. Like a pod,
it gets the ServiceAccount volume at /var/run/secrets/kubernetes.io/serviceaccount (a TokenRequest
token of the chart's ServiceAccount, the cluster CA, the namespace) and KUBERNETES_SERVICE_HOST/PORT,
so the Kubernetes client's in-cluster configuration is what connects. ``--network host`` stands in
for the pod network: the chart's ports are set to free ones through its values.

The main test connects through a recording TLS proxy on 127.0.0.1 that serves the API server's own
certificate (issued by the cluster CA for 127.0.0.1), as a cluster's ``kubernetes`` Service forwards
to the API server; the proxy sees every request, so the chart's RBAC is proven granted == used as in
tests/integration/test_chart.py. The bad-input tests connect to the API server itself.

podman missing: the tests fail in CI (CI set, as .ci/run is run) and are skipped elsewhere, with
``bash hack/ensure-podman.sh`` as the fix.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client

from slogate.dev.cluster import LocalCluster, free_port
from tests.integration.conftest import wait_for
from tests.integration.test_chart import (
    LEASE_ATTRS,
    NOT_EXERCISED,
    RBAC_KINDS,
    RecordingProxy,
    baseline,
    docs_of,
    ensure_namespace,
    fmt,
    granted,
    install_rbac,
    render,
    scenario,
    token_kubeconfig,
    uninstall_cluster_rbac,
    used_by,
    workload,
)
from tests.integration.test_operator import GROUP, PLURAL, VERSION, events_for, get_md, mdep, ready
from tests.integration.test_rollout import manifest, new_model, roll, sim_set, start

REPO = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = REPO / "hack" / "containers.conf"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

pytestmark = [
    pytest.mark.local_only(
        reason="runs the image with podman on this host against our own control plane (its CA key)"
    ),
    # The first test may build the image (hack/build-image.sh): a cold base and install take minutes.
    pytest.mark.timeout(1800),
]


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF))}


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=podman_env(), timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {result.returncode}\n{result.stdout}{result.stderr}")
    return result


def require_podman() -> None:
    """podman missing fails the test in CI (where CI is set) and skips it elsewhere."""
    if not shutil.which("podman"):
        message = "podman is missing: bash hack/ensure-podman.sh"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"{message} (.ci/run installs it)")
        pytest.skip(f"{message} (in CI, where CI is set, this fails)")


@pytest.fixture(scope="module")
def image() -> str:
    """The image hack/build-image.sh builds (cached: a rebuild of an unchanged tree takes seconds), or
    ``SLOGATE_TEST_IMAGE`` as it is (an image built elsewhere)."""
    require_podman()
    if os.environ.get("SLOGATE_TEST_IMAGE"):
        podman("image", "exists", os.environ["SLOGATE_TEST_IMAGE"])
        return os.environ["SLOGATE_TEST_IMAGE"]
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "build-image.sh")],
        capture_output=True,
        text=True,
        env=podman_env(),
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"hack/build-image.sh failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout.strip().splitlines()[-1]


def chart_values(image: str, **extra: dict) -> dict:
    repository, _, tag = image.rpartition(":")
    return {"image": {"repository": repository, "tag": tag, "pullPolicy": "Never"}, **extra}


# ------------------------------------------------------------------ the chart's pod as a podman run
@dataclass
class Container:
    """One container of the chart's operator pod, run by podman with the pod's settings."""

    workload: dict
    docs: list[dict]
    root: Path
    token: str
    ca: Path
    service: tuple[str, int]
    namespace: str
    name: str = field(default_factory=lambda: f"slogate-{uuid.uuid4().hex[:8]}")

    @property
    def pod(self) -> dict:
        return self.workload["spec"]["template"]["spec"]

    @property
    def spec(self) -> dict:
        (c,) = self.pod["containers"]
        assert not self.pod.get("initContainers"), "the test runs one container"
        return c

    def port(self, name_or_number: str | int) -> int:
        if isinstance(name_or_number, int):
            return name_or_number
        return next(p["containerPort"] for p in self.spec["ports"] if p["name"] == name_or_number)

    @property
    def grace(self) -> int:
        return int(self.pod.get("terminationGracePeriodSeconds", 30))

    def security_flags(self) -> list[str]:
        pod, ctr = self.pod.get("securityContext") or {}, self.spec.get("securityContext") or {}
        known_pod = {"runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "seccompProfile"}
        known_ctr = {
            "runAsNonRoot",
            "runAsUser",
            "runAsGroup",
            "readOnlyRootFilesystem",
            "allowPrivilegeEscalation",
            "capabilities",
            "seccompProfile",
        }
        assert set(pod) <= known_pod and set(ctr) <= known_ctr, f"not mapped to podman: {pod} {ctr}"
        merged = {**pod, **ctr}
        user, group = merged.get("runAsUser"), merged.get("runAsGroup")
        assert merged.get("runAsNonRoot") and user and user != 0, merged
        flags = [f"--user={user}:{group if group is not None else user}"]
        if pod.get("fsGroup") is not None:
            flags.append(f"--group-add={pod['fsGroup']}")
        for scope in (pod, ctr):
            if "seccompProfile" in scope:  # podman's default profile is the runtime default
                assert scope["seccompProfile"] == {"type": "RuntimeDefault"}, scope
        if ctr.get("readOnlyRootFilesystem"):
            # Only the pod's volumes are writable: no tmpfs of podman's own on /tmp, /var/tmp, /run.
            flags += ["--read-only", "--read-only-tmpfs=false"]
        if ctr.get("allowPrivilegeEscalation") is False:
            flags.append("--security-opt=no-new-privileges")
        caps = ctr.get("capabilities") or {}
        flags += [f"--cap-drop={c}" for c in caps.get("drop", [])]
        flags += [f"--cap-add={c}" for c in caps.get("add", [])]
        return flags

    def env_flags(self) -> list[str]:
        fields = {"metadata.name": self.name, "metadata.namespace": self.namespace}
        env: dict[str, str] = {}
        for e in self.spec.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
            else:
                path = e["valueFrom"]["fieldRef"]["fieldPath"]
                assert path in fields, f"downward API field not mapped: {e}"
                env[e["name"]] = fields[path]
        host, port = self.service
        # What the kubelet sets for the default/kubernetes Service.
        env |= {
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": str(port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
            "KUBERNETES_PORT": f"tcp://{host}:{port}",
        }
        return [f"--env={k}={v}" for k, v in env.items()]

    def volume_flags(self) -> list[str]:
        volumes = {v["name"]: v for v in self.pod.get("volumes", [])}
        configmaps = {d["metadata"]["name"]: d for d in self.docs if d["kind"] == "ConfigMap"}
        flags = []
        for mount in self.spec.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            local = self.root / "volumes" / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            if "emptyDir" in volume:
                local.chmod(0o777)  # as the kubelet makes an emptyDir
            elif "configMap" in volume:
                for key, text in configmaps[volume["configMap"]["name"]].get("data", {}).items():
                    (local / key).write_text(text)
                    (local / key).chmod(0o644)
                local.chmod(0o755)
            else:
                raise AssertionError(f"volume kind not mapped to podman: {volume}")
            mode = "ro" if mount.get("readOnly") else "rw"
            flags.append(f"--volume={local}:{mount['mountPath']}:{mode}")
        if self.pod.get("automountServiceAccountToken", True):
            sa = self.root / "volumes" / "kube-api-access"
            sa.mkdir(parents=True, exist_ok=True)
            (sa / "token").write_text(self.token)
            (sa / "ca.crt").write_bytes(self.ca.read_bytes())
            (sa / "namespace").write_text(self.namespace)
            for f in sa.iterdir():
                f.chmod(0o644)
            sa.chmod(0o755)
            flags.append(f"--volume={sa}:{SA_DIR}:ro")
        return flags

    def argv(self, image: str, *, detach: bool = True) -> list[str]:
        c = self.spec
        assert c["image"] == image, (c["image"], image)
        return [
            "run",
            *(["--detach"] if detach else ["--rm"]),
            f"--name={self.name}",
            f"--hostname={self.name}",
            "--network=host",
            "--pull=never",
            *self.security_flags(),
            *self.env_flags(),
            *self.volume_flags(),
            f"--entrypoint={json.dumps(c['command'])}",
            image,
            *c.get("args", []),
        ]

    def mount_points(self) -> set[str]:
        """Where the container's volumes are mounted, as paths in the image (/var/run is /run there)."""
        points = {m["mountPath"] for m in self.spec.get("volumeMounts", [])}
        if self.pod.get("automountServiceAccountToken", True):
            points.add(SA_DIR)
        return {p.replace("/var/run/", "/run/", 1) if p.startswith("/var/run/") else p for p in points}

    def probe_url(self, probe: str) -> str:
        get = self.spec[probe]["httpGet"]
        return f"http://127.0.0.1:{self.port(get['port'])}{get['path']}"

    def logs(self, lines: int = 30) -> str:
        """The container's last log lines, each cut at 400 characters (JSON lines carry tracebacks)."""
        result = podman("logs", self.name, check=False)
        return "\n".join(line[:400] for line in (result.stdout + result.stderr).splitlines()[-lines:])


def rendered(helm: str, values: dict, release: str, namespace: str) -> list[dict]:
    return docs_of(render(helm, values, release=release, namespace=namespace))


def service_account(docs: list[dict]) -> str:
    return next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]["name"]


class TLSRecordingProxy(RecordingProxy):
    """test_chart's recording proxy over TLS with the API server's own serving certificate: a client
    that trusts the cluster CA connects to it as to the API server (127.0.0.1 is in its SANs)."""

    def __init__(self, cluster: LocalCluster) -> None:
        super().__init__(cluster.server, cluster.ca_file)
        self.serving = (cluster.dir / "pki" / "apiserver.crt", cluster.dir / "pki" / "apiserver.key")

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def _start(self) -> None:  # RecordingProxy._start with a TLS site
        import aiohttp
        from aiohttp import web

        upstream = ssl.create_default_context(cafile=str(self.cafile))
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=upstream, limit=0),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        serving.load_cert_chain(*map(str, self.serving))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=serving).start()


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture()
def release_namespace(cluster: LocalCluster) -> Iterator[str]:
    name = f"slogate-ctr-{uuid.uuid4().hex[:6]}"
    ensure_namespace(cluster, name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


# ------------------------------------------------------------------ the tests
def test_the_image_runs_in_cluster_under_the_chart_rbac(
    cluster, kube, helm, image, namespace, release_namespace, tmp_path
):
    op_ns = release_namespace
    work_ns = f"slogate-ctr-work-{uuid.uuid4().hex[:6]}"
    ensure_namespace(cluster, work_ns)
    values = chart_values(
        image,
        prometheus={"url": cluster.prometheus_url},
        operator={"metricsPort": free_port(), "healthPort": free_port(), "resyncSeconds": 3},
    )
    docs = install_rbac(cluster, helm, values, release="ctr", namespace=op_ns)
    sa = service_account(docs)
    token = cluster.kubectl("create", "token", sa, "-n", op_ns, "--duration=1h").strip()
    proxy = TLSRecordingProxy(cluster)
    proxy.start()
    ctr = Container(
        workload(docs),
        docs,
        tmp_path,
        token=token,
        ca=cluster.ca_file,
        service=("127.0.0.1", proxy.port),
        namespace=op_ns,
    )
    api = client.CustomObjectsApi(kube)
    started = False
    try:
        # Cold start: a ModelDeployment waits before the container starts; its first status write
        # is the first reconcile.
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, mdep("cold", replicas=1))
        t0 = time.monotonic()
        podman(*ctr.argv(image))
        started = True
        wait_for(
            lambda: (get_md(kube, namespace, "cold").get("status") or {}).get("observedGeneration"),
            timeout=120,
            what="the first reconcile",
            explain=ctr.logs,
        )
        cold = time.monotonic() - t0
        for probe in ("livenessProbe", "readinessProbe"):
            wait_for(lambda p=probe: http_get(ctr.probe_url(p))[0] == 200, timeout=30, what=probe)
        ready(kube, namespace, "cold")

        # Every child kind created, updated and deleted (test_chart's scenario), in its own namespace.
        try:
            scenario(kube, work_ns)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\ncontainer log:\n{ctr.logs()}") from exc
        leases = client.CoordinationV1Api(kube)
        wait_for(
            lambda: (
                (lease := leases.read_namespaced_lease("slogate-operator", op_ns)).spec.renew_time
                > lease.spec.acquire_time
            ),
            timeout=30,
            what="a Lease renewal",
        )

        # A canary that breaches its TTFT objective is rolled back. 30 client requests a second, as
        # in test_rollout: at 900 ms a half-weight canary then holds minRequests in every run.
        from slogate.dev.frontdoor import set_traffic

        set_traffic(cluster.dir, namespace=namespace, change={"rps": 30.0})
        doc = manifest("bad")
        stable = start(kube, namespace, doc)
        _, rev = new_model(doc, "hf://meta-llama/Llama-3.2-1B-Instruct")
        sim_set(cluster, namespace, f"slogate.io/revision={rev}", "--ttft-ms", "900")
        roll(kube, namespace, doc, "hf://meta-llama/Llama-3.2-1B-Instruct")
        md = wait_for(
            lambda: (m := get_md(kube, namespace, "bad"))["status"].get("phase") == "RolledBack" and m,
            timeout=120,
            what="the rollback",
            explain=ctr.logs,
        )
        assert md["status"]["stableRevision"] == stable and rev in md["status"]["rejectedRevisions"]
        wait_for(
            lambda: "RolledBack" in [e.reason for e in events_for(kube, namespace, "bad")],
            timeout=15,
            what="the RolledBack event",
        )
        status, text = http_get(f"http://127.0.0.1:{ctr.port('metrics')}/metrics")
        assert status == 200
        assert f'slogate_rollbacks_total{{modeldeployment="bad",namespace="{namespace}"' in text, text[-2000:]

        # SIGTERM (podman stop, then SIGKILL after the chart's grace period) ends it with exit 0.
        t1 = time.monotonic()
        podman("stop", f"--time={ctr.grace}", ctr.name, timeout=ctr.grace + 30)
        stopped = time.monotonic() - t1
        state = json.loads(podman("inspect", "--format", "{{json .State}}", ctr.name).stdout)
        assert state["ExitCode"] == 0 and not state.get("OOMKilled"), (state, ctr.logs())
        assert stopped < ctr.grace, f"SIGTERM took {stopped:.1f}s (grace {ctr.grace}s)"
        # Nothing written outside the chart's volumes: the only changes to the root filesystem are the
        # mount points the runtime made for them (a kubelet's runtime makes the same).
        diff = [line.split(maxsplit=1) for line in podman("diff", ctr.name).stdout.splitlines()]
        mount_points = ctr.mount_points()
        outside = [
            f"{kind} {path}"
            for kind, path in diff
            if not any(m == path or m.startswith(f"{path}/") for m in mount_points)
        ]
        assert outside == [], outside
        assert all(kind in ("A", "C") for kind, _ in diff), diff  # nothing deleted either
        written = sorted(
            str(p.relative_to(tmp_path / "volumes")) for p in (tmp_path / "volumes").rglob("*") if p.is_file()
        )
        size = int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout)
        print(
            f"image {image}: {size / 1e6:.0f} MB; cold start (container start -> first reconcile) "
            f"{cold:.1f}s; SIGTERM -> exit 0 in {stopped:.1f}s; files in the volumes: {written}"
        )
        logs = podman("logs", ctr.name).stdout + podman("logs", ctr.name).stderr
        assert '"message"' in logs, ctr.logs()  # JSON logs (the chart's logFormat)
        assert "Traceback" not in logs, ctr.logs()  # no stack trace in the whole run

        # The chart's RBAC is all it needed and all of it was used (test_chart's proof).
        by_ns, denied = used_by(proxy)
        assert denied == [], "\n".join(f"{s.method} {s.path}: {s.message}" for s in denied)
        assert by_ns.get(op_ns) == LEASE_ATTRS, fmt(by_ns.get(op_ns, set()))
        used = set().union(*(attrs for ns, attrs in by_ns.items() if ns != op_ns))
        direct = token_kubeconfig(cluster, tmp_path / "direct.kubeconfig", sa, op_ns, cluster.server)
        base = baseline(cluster, tmp_path, op_ns)
        for ns in (namespace, work_ns, "default"):
            grant = granted(cluster, direct, ns) - base
            assert grant - used - NOT_EXERCISED == set(), f"{ns}: granted but never used:\n  " + fmt(
                grant - used - NOT_EXERCISED
            )
            assert used - grant == set(), f"{ns}: used but not granted:\n  " + fmt(used - grant)
        lease_grant = granted(cluster, direct, op_ns) - granted(cluster, direct, "default")
        assert lease_grant == LEASE_ATTRS, fmt(lease_grant)  # the Lease Role, in the release namespace only
    finally:
        if started:
            podman("rm", "--force", "--time=0", ctr.name, check=False)
        proxy.stop()
        uninstall_cluster_rbac(cluster, docs)
        cluster.kubectl("delete", "namespace", work_ns, "--wait=false")


def run_to_exit(ctr: Container, image: str, timeout: float = 60) -> tuple[int, str, float]:
    """Run the container in the foreground until it exits; one still running after ``timeout`` fails."""
    t0 = time.monotonic()
    try:
        result = podman(*ctr.argv(image, detach=False), check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        logs = ctr.logs()
        podman("rm", "--force", "--time=0", ctr.name, check=False)
        raise AssertionError(f"the container still ran after {timeout}s (it must exit):\n{logs}") from None
    return result.returncode, result.stdout + result.stderr, time.monotonic() - t0


def one_line(output: str) -> str:
    """The output's one ``slogate run:`` line; it must be the last line and no traceback around it."""
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output and "Retrying" not in output, output
    ours = [line for line in lines if line.startswith("slogate run: ")]
    assert len(ours) == 1 and lines[-1] == ours[0], output
    return ours[0]


def test_without_a_reachable_api_server_the_container_says_so_and_exits(helm, image, tmp_path, cluster):
    docs = rendered(helm, chart_values(image), "down", "slogate-down")
    port = free_port()  # nothing listens there
    ctr = Container(
        workload(docs),
        docs,
        tmp_path,
        token="a-token",
        ca=cluster.ca_file,
        service=("127.0.0.1", port),
        namespace="slogate-down",
    )
    code, output, took = run_to_exit(ctr, image)
    assert code == 1, output
    line = one_line(output)
    assert line.startswith(
        f"slogate run: cannot reach the Kubernetes API server at https://127.0.0.1:{port}: "
    )
    assert "Connection refused" in line, line
    assert took < 30, f"{took:.1f}s"


def test_a_token_lacking_a_permission_is_named_and_the_container_exits(
    cluster, helm, image, release_namespace, tmp_path
):
    """The chart's RBAC without `nodes`; the container connects to the API server itself, whose serving
    certificate (the cluster CA's, for 127.0.0.1) the in-cluster configuration verifies."""
    values = chart_values(image)
    docs = rendered(helm, values, "lacking", release_namespace)
    rbac = [d for d in docs if d["kind"] in RBAC_KINDS]
    (role,) = [d for d in rbac if d["kind"] == "ClusterRole"]
    rules = [r for r in role["rules"] if "nodes" in r["resources"]]
    assert rules, role["rules"]
    for rule in rules:
        rule["resources"].remove("nodes")
    role["rules"] = [r for r in role["rules"] if r["resources"]]
    try:
        cluster.apply(rbac)
        sa = service_account(docs)
        token = cluster.kubectl("create", "token", sa, "-n", release_namespace, "--duration=10m").strip()
        apiserver = int(cluster.server.rpartition(":")[2])
        ctr = Container(
            workload(docs),
            docs,
            tmp_path,
            token=token,
            ca=cluster.ca_file,
            service=("127.0.0.1", apiserver),
            namespace=release_namespace,
        )
        code, output, took = run_to_exit(ctr, image)
        assert code == 1, output
        line = one_line(output)
        assert line == (
            f'slogate run: RBAC refuses "system:serviceaccount:{release_namespace}:{sa}" what the operator '
            f"needs at https://127.0.0.1:{apiserver}: list nodes (cluster-wide) "
            "(the chart's RBAC grants it: docs/install.md)"
        ), line
        assert took < 30, f"{took:.1f}s"
    finally:
        uninstall_cluster_rbac(cluster, rbac)
