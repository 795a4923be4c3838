"""Self-made TLS: a private CA and a server certificate it signs, for the operator's admission
webhooks when no cert-manager provides one (the emulator, a separate distribution, has its own
copy in ``azure_arm_emulator.certs``).

``ensure_tls_files`` writes ``ca.pem`` (what clients trust: the SDK's ``connection_verify``,
a webhook configuration's ``caBundle``), ``ca-key.pem``, ``server.pem`` and
``server-key.pem`` into a directory. An existing CA there is reused, so a restarted server
stays trusted by clients configured with the old bundle; the server certificate is issued
anew each start, for the given host names and addresses.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"
_VALIDITY = timedelta(days=365)
_BACKDATE = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where the PEM files are; ``ca`` is what clients trust."""

    directory: Path
    ca: Path
    ca_key: Path
    server: Path
    server_key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.server, self.server_key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def ensure_tls_files(
    directory: Path, *, hosts: Sequence[str] = LOOPBACK_HOSTS, name: str = "azure-jit-operator"
) -> TlsFiles:
    """Create (or reuse) the CA in ``directory`` and issue a fresh server certificate
    valid for ``hosts`` (DNS names and IP addresses)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        directory=directory,
        ca=directory / CA_FILE,
        ca_key=directory / CA_KEY_FILE,
        server=directory / SERVER_FILE,
        server_key=directory / SERVER_KEY_FILE,
    )
    ca_cert, ca_key = _load_ca(files) or _create_ca(files, name=name)
    _issue_server_certificate(files, ca_cert, ca_key, hosts=hosts, name=name)
    return files


def _load_ca(files: TlsFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    if not (files.ca.exists() and files.ca_key.exists()):
        return None
    try:
        cert = x509.load_pem_x509_certificate(files.ca.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    except ValueError:
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if cert.not_valid_after_utc - datetime.now(UTC) < timedelta(days=1):
        return None
    return cert, key


def _create_ca(
    files: TlsFiles, *, name: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(files.ca_key, _key_pem(key))
    files.ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _issue_server_certificate(
    files: TlsFiles,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    hosts: Sequence[str],
    name: str,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    san = x509.SubjectAlternativeName([_general_name(host) for host in hosts])
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(files.server_key, _key_pem(key))
    files.server.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
