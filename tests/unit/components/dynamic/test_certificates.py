"""The stack's own certificate authority and the certificates it signs
(components/dynamic/certificates.py): what they may be used for, who signed them, and when a
deploy replaces them."""

from __future__ import annotations

import datetime
import ssl
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from components.dynamic import certificates as c

UTC = datetime.UTC


@pytest.fixture(scope="module")
def authority() -> c.Issued:
    return c.new_authority("ecommerce backup CA", valid_days=3650)


def load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def test_the_authority_signs_certificates_and_nothing_else(authority: c.Issued) -> None:
    cert = load(authority.cert_pem)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and not usage.digital_signature
    assert authority.not_after - datetime.datetime.now(UTC) > datetime.timedelta(days=3640)


def test_a_server_and_a_client_certificate_verify_against_the_authority_only(
    authority: c.Issued, tmp_path: Path
) -> None:
    server = c.issue(authority, "repository", "server", 365, ["backup-repository"])
    client = c.issue(authority, "order", "client", 365)
    stranger = c.new_authority("someone else", 3650)
    for name, pem in {
        "ca": authority.cert_pem,
        "server": server.cert_pem,
        "client": client.cert_pem,
        "stranger": stranger.cert_pem,
    }.items():
        (tmp_path / f"{name}.pem").write_text(pem)

    def verify(ca: str, cert: str, purpose: str) -> bool:
        argv = ["openssl", "verify", "-purpose", purpose, "-CAfile", ca, cert]
        return subprocess.run(argv, capture_output=True, cwd=tmp_path).returncode == 0

    assert verify("ca.pem", "server.pem", "sslserver")
    assert verify("ca.pem", "client.pem", "sslclient")
    assert not verify("ca.pem", "client.pem", "sslserver"), "a client certificate served"
    assert not verify("ca.pem", "server.pem", "sslclient"), "a server certificate logged in"
    assert not verify("stranger.pem", "client.pem", "sslclient")
    purposes = load(server.cert_pem).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(purposes.value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    names = load(server.cert_pem).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.DNSName) == ["backup-repository"]
    # Python's own TLS stack reads them as a pair with their keys.
    (tmp_path / "server.key").write_text(server.key_pem)
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
        tmp_path / "server.pem", tmp_path / "server.key"
    )


def test_a_certificate_ends_no_later_than_its_authority() -> None:
    short = c.new_authority("short-lived CA", valid_days=10)
    client = c.issue(short, "order", "client", valid_days=365)
    assert client.not_after <= short.not_after


def test_a_server_certificate_without_a_name_is_refused(authority: c.Issued) -> None:
    with pytest.raises(ValueError, match="name at least one DNS name"):
        c.issue(authority, "repository", "server", 365)


def test_renewal_is_due_within_the_window_only() -> None:
    end = datetime.datetime(2027, 12, 1, tzinfo=UTC)
    assert not c.renewal_due(end, 30, now=datetime.datetime(2027, 10, 31, tzinfo=UTC))
    assert c.renewal_due(end, 30, now=datetime.datetime(2027, 11, 1, tzinfo=UTC))
    assert c.renewal_due(end, 30, now=datetime.datetime(2028, 1, 1, tzinfo=UTC))


def props(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        c.COMMON_NAME: "order",
        c.DNS_NAMES: [],
        c.USAGE: "client",
        c.VALID_DAYS: 365,
        c.RENEW_BEFORE_DAYS: 30,
        c.CA_CERT: "ca-1",
        c.CA_KEY: "key-1",
    }
    return base | changes


def made(days_left: float, **changes: object) -> dict[str, object]:
    end = datetime.datetime.now(UTC) + datetime.timedelta(days=days_left)
    return props(**changes) | {c.NOT_AFTER: end.isoformat(), c.CERT: "pem", c.KEY: "key"}


def test_a_deploy_keeps_a_certificate_until_its_renewal_window() -> None:
    provider = c.IssuedCertificateProvider()
    assert not provider.diff("id", made(days_left=200), props()).changes
    renew = provider.diff("id", made(days_left=20), props())
    assert renew.changes and renew.replaces == [c.NOT_AFTER]


def test_a_new_authority_or_name_makes_a_new_certificate_a_new_window_does_not() -> None:
    provider = c.IssuedCertificateProvider()
    assert provider.diff("id", made(200), props(**{c.CA_CERT: "ca-2"})).replaces == [c.CA_CERT]
    assert provider.diff("id", made(200), props(**{c.COMMON_NAME: "cart"})).replaces == [
        c.COMMON_NAME
    ]
    window = provider.diff("id", made(200), props(**{c.RENEW_BEFORE_DAYS: 60}))
    assert window.changes and not window.replaces
    kept = provider.update("id", made(200), props(**{c.RENEW_BEFORE_DAYS: 60})).outs or {}
    assert kept[c.CERT] == "pem" and kept[c.RENEW_BEFORE_DAYS] == 60


def test_the_authority_is_replaced_within_its_window_too() -> None:
    provider = c.CertificateAuthorityProvider()
    fresh = {c.COMMON_NAME: "ca", c.VALID_DAYS: 3650, c.RENEW_BEFORE_DAYS: 365}
    late = datetime.datetime.now(UTC) + datetime.timedelta(days=100)
    early = datetime.datetime.now(UTC) + datetime.timedelta(days=1000)
    assert provider.diff("id", fresh | {c.NOT_AFTER: late.isoformat()}, fresh).replaces
    assert not provider.diff("id", fresh | {c.NOT_AFTER: early.isoformat()}, fresh).changes
    outs = provider.create(fresh).outs or {}
    assert "BEGIN CERTIFICATE" in outs[c.CERT]
    assert "PRIVATE KEY" in outs[c.KEY]
