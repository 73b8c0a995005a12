"""TLS material for the store-central link: the chain's CA, central's certificate, and the contexts.

`storepos central init` makes a chain CA and central's certificate (ECDSA P-256) when there are
none; stores trust the CA (or central's own certificate, pinned) named in their config. Both node
kinds build their ssl contexts here only, so the rules are one: TLS 1.2 at least, hostname checked,
and a pinned leaf certificate accepted as a trust anchor (VERIFY_X509_PARTIAL_CHAIN).

Private keys are written 0600 and certificates 0644 by runtime.files.replace_file.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from runtime.files import PUBLIC, SECRET, replace_file

CA_DAYS = 3650
CERT_DAYS = 825
CA_KEY = "ca.key"
CA_CERT = "ca.pem"
CENTRAL_KEY = "central.key"
CENTRAL_CERT = "central.pem"


class TlsError(ValueError):
    """TLS material that cannot be used (missing, unreadable, not a certificate): said plainly."""


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, data, mode=mode)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "storepos"), x509.NameAttribute(NameOID.COMMON_NAME, common)]
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_ca(folder: Path, chain: str = "storepos chain") -> bool:
    """The chain CA in `folder` (ca.key 0600, ca.pem), made only when there is none; True if made."""
    if (folder / CA_CERT).exists() and (folder / CA_KEY).exists():
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{chain} CA"))
        .issuer_name(_name(f"{chain} CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
    _write(folder / CA_KEY, _key_pem(key), SECRET)
    _write(folder / CA_CERT, cert.public_bytes(serialization.Encoding.PEM), PUBLIC)
    return True


def issue_server(folder: Path, hosts: list[str], *, stem: str = "central") -> bool:
    """A server certificate (`stem`.key 0600, `stem`.pem) signed by the CA in `folder`, valid for
    `hosts` (names or IP addresses); made only when there is none. True if made."""
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    if cert_path.exists() and key_path.exists():
        return False
    if not hosts:
        raise TlsError("a server certificate needs at least one host name or address")
    ca_key = serialization.load_pem_private_key((folder / CA_KEY).read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TlsError(f"{folder / CA_KEY}: not an EC private key")
    ca_cert = x509.load_pem_x509_certificate((folder / CA_CERT).read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _server_builder(key, hosts).issuer_name(ca_cert.subject)
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
    )
    _write_pair(cert_path, key_path, builder.sign(ca_key, hashes.SHA256()), key)
    return True


def _server_builder(key: ec.EllipticCurvePrivateKey, hosts: list[str]) -> x509.CertificateBuilder:
    """What every server certificate of ours says (names, validity, server use), before who signs it."""
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in dict.fromkeys(hosts)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )


def _write_pair(cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    _write(key_path, _key_pem(key), SECRET)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), PUBLIC)


def self_signed(folder: Path, hosts: list[str], *, stem: str) -> bool:
    """A self-signed server certificate (`stem`.key 0600, `stem`.pem) for `hosts`, for a node with no
    chain CA to issue one (a store without central): clients pin the certificate itself. Made only when
    there is none; True if made."""
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    if cert_path.exists() and key_path.exists():
        return False
    if not hosts:
        raise TlsError("a server certificate needs at least one host name or address")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _server_builder(key, hosts).issuer_name(_name(hosts[0])).sign(key, hashes.SHA256())
    _write_pair(cert_path, key_path, cert, key)
    return True


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """What central serves with."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load the certificate {cert} with key {key}: {exc}") from None
    return context


def client_context(trust: Path) -> ssl.SSLContext:
    """What a store (or an operator's tool) dials central with: `trust` is the chain's CA, or central's
    own certificate pinned. The host name in the URL must be one the certificate names."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a pinned leaf is its own anchor
    try:
        context.load_verify_locations(cafile=str(trust))
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load the trusted certificate {trust}: {exc}") from None
    return context
