"""Certificates the program makes itself: a certificate authority of the stack's own, and the
certificates it signs, for services that authenticate each other with mutual TLS (the off-host
backup repository and the database servers that send it their WAL: docs/pitr.md).

No certificate provider plugin is available to this program, so these are dynamic resources
(types `pulumi-python:dynamic/ecommerce:CertificateAuthority` and `...:IssuedCertificate`),
made with the `cryptography` package on the machine that runs Pulumi. Private keys are Pulumi
secrets (encrypted in the state, never printed). A certificate is replaced by the `up` that
finds it within its renewal window (`renew_before_days`) of its end, or its authority replaced:
nobody has to remember a date, as long as a deploy runs in that window.

Pulumi keeps the provider in the state as a reference to this module's classes: the module
must keep its name and place.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pulumi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

Usage = Literal["server", "client"]

CERT = "certPem"
KEY = "keyPem"
NOT_AFTER = "notAfter"
"""When the certificate ends, ISO 8601 in UTC: what the next deploy compares with its clock."""
COMMON_NAME = "commonName"
DNS_NAMES = "dnsNames"
USAGE = "usage"
VALID_DAYS = "validDays"
RENEW_BEFORE_DAYS = "renewBeforeDays"
CA_CERT = "caCertPem"
CA_KEY = "caKeyPem"
BACKDATE = datetime.timedelta(minutes=5)
"""A certificate is valid from a little before it was made: clocks differ between hosts."""


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM."""

    cert_pem: str
    key_pem: str

    @property
    def not_after(self) -> datetime.datetime:
        return not_after(self.cert_pem)


def not_after(cert_pem: str) -> datetime.datetime:
    return x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_after_utc


def renewal_due(
    end: datetime.datetime, renew_before_days: int, now: datetime.datetime | None = None
) -> bool:
    """Whether a certificate ending at `end` is within its renewal window."""
    now = now or datetime.datetime.now(datetime.UTC)
    return now >= end - datetime.timedelta(days=renew_before_days)


def new_authority(common_name: str, valid_days: int) -> Issued:
    """A self-signed CA that signs end-entity certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=valid_days))
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
    return Issued(_cert_pem(cert), _key_pem(key))


def issue(
    authority: Issued,
    common_name: str,
    usage: Usage,
    valid_days: int,
    dns_names: Sequence[str] = (),
) -> Issued:
    """A certificate signed by `authority`: a server's, for `dns_names` (the names its clients
    dial), or a client's, whose common name is what the server authorises."""
    ca_cert = x509.load_pem_x509_certificate(authority.cert_pem.encode())
    ca_key = serialization.load_pem_private_key(authority.key_pem.encode(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the certificate authority's key is not an EC key made by this module")
    if usage == "server" and not dns_names:
        raise ValueError(f"server certificate {common_name!r}: name at least one DNS name")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    end = min(now + datetime.timedelta(days=valid_days), ca_cert.not_valid_after_utc)
    purpose = (
        ExtendedKeyUsageOID.SERVER_AUTH if usage == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    return Issued(_cert_pem(builder.sign(ca_key, hashes.SHA256())), _key_pem(key))


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


# ----------------------------------------------------------------------------------------------
# The dynamic resources


def _replaces(olds: dict[str, Any], news: dict[str, Any], inputs: Sequence[str]) -> list[str]:
    """What makes a certificate a new one: an input changed, or its renewal window reached."""
    changed = [k for k in inputs if olds.get(k) != news.get(k)]
    end = olds.get(NOT_AFTER)
    if end is None or renewal_due(
        datetime.datetime.fromisoformat(str(end)), int(news[RENEW_BEFORE_DAYS])
    ):
        changed.append(NOT_AFTER)
    return changed


def _outputs(props: dict[str, Any], made: Issued) -> dict[str, Any]:
    return {**props, CERT: made.cert_pem, KEY: made.key_pem, NOT_AFTER: made.not_after.isoformat()}


class _CertificateProvider(ResourceProvider):
    """What both kinds share: a new certificate when an input of `INPUTS` changes or the
    renewal window is reached; a new window alone changes nothing made."""

    INPUTS: ClassVar[tuple[str, ...]]

    def make(self, props: dict[str, Any]) -> Issued:
        raise NotImplementedError

    def create(self, props: dict[str, Any]) -> CreateResult:
        made = self.make(props)
        return CreateResult(id_=_serial(made), outs=_outputs(props, made))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = _replaces(olds, news, self.INPUTS)
        changes = bool(replaces) or olds.get(RENEW_BEFORE_DAYS) != news.get(RENEW_BEFORE_DAYS)
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Only the renewal window changed: the same certificate."""
        return UpdateResult(outs={**olds, RENEW_BEFORE_DAYS: news[RENEW_BEFORE_DAYS]})


class CertificateAuthorityProvider(_CertificateProvider):
    INPUTS = (COMMON_NAME, VALID_DAYS)

    def make(self, props: dict[str, Any]) -> Issued:
        return new_authority(str(props[COMMON_NAME]), int(props[VALID_DAYS]))


class IssuedCertificateProvider(_CertificateProvider):
    INPUTS = (COMMON_NAME, DNS_NAMES, USAGE, VALID_DAYS, CA_CERT)

    def make(self, props: dict[str, Any]) -> Issued:
        return issue(
            Issued(str(props[CA_CERT]), str(props[CA_KEY])),
            str(props[COMMON_NAME]),
            props[USAGE],
            int(props[VALID_DAYS]),
            [str(n) for n in props.get(DNS_NAMES) or []],
        )


def _serial(made: Issued) -> str:
    return format(x509.load_pem_x509_certificate(made.cert_pem.encode()).serial_number, "x")


MADE = (CERT, KEY, NOT_AFTER)
"""The outputs the provider fills in."""


def _pems(resource: pulumi.dynamic.Resource) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """The certificate, and its key as a secret."""
    return (
        pulumi.Output.from_input(getattr(resource, CERT)),
        pulumi.Output.secret(getattr(resource, KEY)),
    )


class CertificateAuthority(
    pulumi.dynamic.Resource, module="ecommerce", name="CertificateAuthority"
):
    """A CA of the stack's own; `key_pem` is a secret."""

    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        common_name: str,
        valid_days: int,
        renew_before_days: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            COMMON_NAME: common_name,
            VALID_DAYS: valid_days,
            RENEW_BEFORE_DAYS: renew_before_days,
            **dict.fromkeys(MADE),
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=[KEY])
        super().__init__(
            CertificateAuthorityProvider(),
            name,
            props,
            pulumi.ResourceOptions.merge(opts, secret),
        )
        self.cert_pem, self.key_pem = _pems(self)


class IssuedCertificate(pulumi.dynamic.Resource, module="ecommerce", name="IssuedCertificate"):
    """A certificate signed by `authority`; `key_pem` is a secret."""

    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        authority: CertificateAuthority,
        common_name: str,
        usage: Usage,
        valid_days: int,
        renew_before_days: int,
        dns_names: Sequence[str] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            COMMON_NAME: common_name,
            DNS_NAMES: list(dns_names),
            USAGE: usage,
            VALID_DAYS: valid_days,
            RENEW_BEFORE_DAYS: renew_before_days,
            CA_CERT: authority.cert_pem,
            CA_KEY: authority.key_pem,
            **dict.fromkeys(MADE),
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=[KEY, CA_KEY])
        super().__init__(
            IssuedCertificateProvider(),
            name,
            props,
            pulumi.ResourceOptions.merge(opts, secret),
        )
        self.cert_pem, self.key_pem = _pems(self)
