"""A throw-away PKI for the local control plane: CA, serving and client certificates, SA keys.

Generated with ``cryptography`` on every ``dev up`` (keys never leave the cluster's directory);
client identities follow kubeadm: ``system:masters`` for the admin, ``system:kube-controller-manager``
and ``system:kube-scheduler`` for the components, which RBAC's bootstrap policy already knows.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


@dataclass(frozen=True)
class PKI:
    """Paths of every PEM file the components need."""

    dir: Path

    @property
    def ca_crt(self) -> Path:
        return self.dir / "ca.crt"

    def crt(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"


CLIENTS = {
    "admin": ("slogate-admin", "system:masters"),
    # The operator under test gets its own identity so the audit log can count its writes apart.
    "operator": ("slogate-operator", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
}


def generate(directory: Path, *, service_ip: str = "10.0.0.1") -> PKI:
    """Write a CA, the API server's serving certificate, client certificates and the SA key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=7)
    ca_key = _key()
    ca_name = _name("slogate-local-ca")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = PKI(directory)
    pki.ca_crt.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "ca.key").write_bytes(_pem_key(ca_key))

    def issue(
        name: str, subject: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]
    ) -> None:
        key = _key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        pki.crt(name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pki.key(name).write_bytes(_pem_key(key))

    serving_sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address(service_ip)),
    ]
    issue("apiserver", _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, serving_sans)
    for name, (cn, org) in CLIENTS.items():
        issue(name, _name(cn, org), ExtendedKeyUsageOID.CLIENT_AUTH, [])
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pki.sa_key.write_bytes(_pem_key(sa))
    pki.sa_pub.write_bytes(
        sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


def kubeconfig(pki: PKI, *, server: str, user: str, embed: bool = False) -> dict:
    """A kubeconfig dict for one of ``CLIENTS`` (paths by default; embedded data with ``embed``)."""
    import base64

    def ref(field: str, path: Path) -> dict[str, str]:
        if embed:
            return {f"{field}-data": base64.b64encode(path.read_bytes()).decode()}
        return {field: str(path)}

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "slogate-local",
                "cluster": {"server": server, **ref("certificate-authority", pki.ca_crt)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {**ref("client-certificate", pki.crt(user)), **ref("client-key", pki.key(user))},
            }
        ],
        "contexts": [{"name": "slogate-local", "context": {"cluster": "slogate-local", "user": user}}],
        "current-context": "slogate-local",
    }
