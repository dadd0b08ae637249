"""TLS inspection shared by ssl-check and domain-intel.

Two handshakes to the vetted address, concurrently: one that accepts anything
(so expired, self-signed or weak certificates can still be described) and one
that verifies the chain against the system store plus ``outbound_ca_file`` (the
trust verdict, exactly as OpenSSL clients see it). Host name matching is judged
separately, so a wrong-host certificate on a good chain is reported as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID
from pydantic import BaseModel, Field, computed_field

from arkgate.catalog._security.common import iso
from arkgate.errors import UpstreamError, UpstreamTimeoutError
from arkgate.outbound.guard import OutboundGuard

EXPIRY_WARNING_DAYS = 21
# OpenSSL verify codes (x509_vfy.h) we turn into findings.
_ISSUER_UNKNOWN = {2, 20, 21}  # unable to get (local) issuer certificate / verify leaf signature
_SELF_SIGNED = {18, 19}

Severity = Literal["critical", "high", "medium", "low", "info"]


class Finding(BaseModel):
    id: str = Field(..., description="Stable identifier: expired, self_signed, weak_key, sha1_signature, ...")
    severity: Severity
    message: str


class CertInfo(BaseModel):
    subject: str
    issuer: str
    common_name: str | None = None
    sans: list[str] = []
    serial: str
    not_before: str
    not_after: str
    days_remaining: int
    signature_algorithm: str
    key_type: str
    key_bits: int | None = None
    sha256_fingerprint: str
    is_ca: bool = False
    self_issued: bool = False


class TlsReport(BaseModel):
    host: str
    port: int
    ip: str
    protocol: str = Field(..., description="Negotiated version, e.g. TLSv1.3.")
    cipher: str
    cipher_bits: int | None = None
    valid: bool = Field(..., description="Trusted chain, matching host name, inside its validity dates.")
    trusted: bool = Field(..., description="The chain verifies against the system trust store.")
    trust_error: str | None = None
    hostname_match: bool
    subject: str
    issuer: str
    sans: list[str]
    not_before: str
    not_after: str
    days_remaining: int
    chain_details: list[CertInfo] = Field(..., description="The presented chain, leaf first, in detail.")
    chain_length: int
    findings: list[Finding]

    # ArkAPI's names and types beside arkgate's own (see docs/arkapi-compatibility.md)
    @computed_field(description="ArkAPI's name for host.")  # type: ignore[prop-decorator]
    @property
    def domain(self) -> str:
        return self.host

    @computed_field(description="ArkAPI's name for cipher.")  # type: ignore[prop-decorator]
    @property
    def cipher_suite(self) -> str:
        return self.cipher

    @computed_field(description="The leaf certificate is past its notAfter date.")  # type: ignore[prop-decorator]
    @property
    def expired(self) -> bool:
        return self.days_remaining < 0 or any(f.id == "expired" for f in self.findings)

    @computed_field(description="ArkAPI's chain: the common name of each certificate, leaf first.")  # type: ignore[prop-decorator]
    @property
    def chain(self) -> list[str]:
        return [c.common_name or c.subject for c in self.chain_details]


def _name(name: x509.Name) -> str:
    return name.rfc4514_string()


def _cn(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else None


def _key(cert: x509.Certificate) -> tuple[str, int | None]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC ({key.curve.name})", key.curve.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return type(key).__name__, None


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [str(n) for n in ext.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
    return names


def _signature(cert: x509.Certificate) -> str:
    algo = cert.signature_hash_algorithm
    oid_name = getattr(cert.signature_algorithm_oid, "_name", "") or cert.signature_algorithm_oid.dotted_string
    return f"{oid_name}" if algo is None else f"{oid_name} ({algo.name})"


def describe(cert: x509.Certificate, now: datetime) -> CertInfo:
    key_type, bits = _key(cert)
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    not_after = cert.not_valid_after_utc
    return CertInfo(
        subject=_name(cert.subject),
        issuer=_name(cert.issuer),
        common_name=_cn(cert.subject),
        sans=_sans(cert),
        serial=format(cert.serial_number, "x"),
        not_before=iso(cert.not_valid_before_utc) or "",
        not_after=iso(not_after) or "",
        days_remaining=(not_after - now).days,
        signature_algorithm=_signature(cert),
        key_type=key_type,
        key_bits=bits,
        sha256_fingerprint=cert.fingerprint(hashes.SHA256()).hex(":"),
        is_ca=bool(is_ca),
        self_issued=cert.issuer == cert.subject,
    )


def hostname_matches(host: str, names: list[str]) -> bool:
    """RFC 6125: exact match, or a wildcard standing for exactly one left-most label."""
    host = host.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in names):
        if name == host:
            return True
        if name.startswith("*.") and name.count(".") >= 2 and host.partition(".")[2] == name[2:]:
            return True
    return False


def _probe_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Accept anything the server offers so weak setups can be described, not just refused.
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    return ctx


class _Handshake:
    """What one handshake revealed, read before the connection is closed."""

    def __init__(self, sslobj: ssl.SSLObject) -> None:
        self.protocol = sslobj.version() or "unknown"
        self.cipher = sslobj.cipher() or ("", "", 0)
        self.chain = _peer_chain(sslobj)


async def _handshake(ip: str, port: int, host: str, ctx: ssl.SSLContext, timeout_s: float) -> _Handshake:
    _reader, writer = await asyncio.wait_for(
        asyncio.open_connection(ip, port, ssl=ctx, server_hostname=host, ssl_handshake_timeout=timeout_s),
        timeout_s,
    )
    try:
        return _Handshake(writer.get_extra_info("ssl_object"))
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


def _peer_chain(sslobj: ssl.SSLObject) -> list[x509.Certificate]:
    inner: Any = getattr(sslobj, "_sslobj", None)
    getter = getattr(inner, "get_unverified_chain", None)  # private before Python 3.13
    if getter is not None:
        chain = getter() or []
        return [x509.load_der_x509_certificate(c.public_bytes(ssl._ssl.ENCODING_DER)) for c in chain]  # type: ignore[attr-defined]
    der = sslobj.getpeercert(binary_form=True)
    return [x509.load_der_x509_certificate(der)] if der else []


async def inspect_tls(guard: OutboundGuard, host: str, port: int, *, timeout_s: float) -> TlsReport:
    """Resolve ``host`` through the guard, handshake with its first address, and assess what it sent."""
    ips = await guard.resolve(host)
    ip = str(ips[0])
    verify_ctx = guard.ssl_context()
    strict = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    strict.load_verify_locations(cadata=_ca_bundle(verify_ctx))
    strict.check_hostname = False  # judged separately below
    try:
        probe, verdict = await asyncio.gather(
            _handshake(ip, port, host, _probe_context(), timeout_s),
            _handshake(ip, port, host, strict, timeout_s),
            return_exceptions=True,
        )
    except Exception as exc:  # gather with return_exceptions only raises on cancellation
        raise UpstreamError(f"TLS handshake with {host} failed") from exc
    if isinstance(probe, BaseException):
        if isinstance(probe, TimeoutError):
            raise UpstreamTimeoutError(f"{host} port {port} did not complete a TLS handshake in time") from probe
        if isinstance(probe, ConnectionRefusedError):
            raise UpstreamError(f"{host} refused the connection on port {port}") from probe
        raise UpstreamError(f"TLS handshake with {host} port {port} failed") from probe
    trust_error: str | None = None
    verify_code: int | None = None
    if isinstance(verdict, ssl.SSLCertVerificationError):
        trust_error, verify_code = verdict.verify_message, verdict.verify_code
    elif isinstance(verdict, BaseException):
        trust_error = f"verification handshake failed: {type(verdict).__name__}"
    now = datetime.now(UTC)
    chain = probe.chain
    if not chain:
        raise UpstreamError(f"{host} sent no certificate")
    infos = [describe(c, now) for c in chain]
    leaf, leaf_info = chain[0], infos[0]
    names = leaf_info.sans or ([leaf_info.common_name] if leaf_info.common_name else [])
    match = hostname_matches(host, names)
    cipher = probe.cipher
    protocol = probe.protocol
    findings = _findings(host, protocol, leaf, infos, match, trust_error, verify_code, now)
    in_dates = leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc
    trusted = trust_error is None
    return TlsReport(
        host=host,
        port=port,
        ip=ip,
        protocol=protocol,
        cipher=cipher[0],
        cipher_bits=cipher[2],
        valid=trusted and match and in_dates,
        trusted=trusted,
        trust_error=trust_error,
        hostname_match=match,
        subject=leaf_info.subject,
        issuer=leaf_info.issuer,
        sans=leaf_info.sans,
        not_before=leaf_info.not_before,
        not_after=leaf_info.not_after,
        days_remaining=leaf_info.days_remaining,
        chain_details=infos,
        chain_length=len(infos),
        findings=findings,
    )


def _ca_bundle(ctx: ssl.SSLContext) -> str:
    """The verifying context's CAs as PEM (system store and the operator's extra file)."""
    pems = [ssl.DER_cert_to_PEM_cert(der) for der in ctx.get_ca_certs(binary_form=True)]
    if not pems:  # the system store is loaded lazily from a directory: read it by path
        paths = ssl.get_default_verify_paths()
        for path in (paths.cafile, paths.openssl_cafile):
            if path:
                try:
                    with open(path) as handle:
                        pems.append(handle.read())
                    break
                except OSError:
                    continue
    return "\n".join(pems)


def _findings(
    host: str,
    protocol: str,
    leaf: x509.Certificate,
    infos: list[CertInfo],
    match: bool,
    trust_error: str | None,
    verify_code: int | None,
    now: datetime,
) -> list[Finding]:
    out: list[Finding] = []
    leaf_info = infos[0]
    if leaf.not_valid_after_utc < now:
        out.append(Finding(id="expired", severity="critical", message=f"Certificate expired on {leaf_info.not_after}."))
    elif leaf.not_valid_before_utc > now:
        out.append(Finding(id="not_yet_valid", severity="high", message="Certificate is not valid yet."))
    elif leaf_info.days_remaining < EXPIRY_WARNING_DAYS:
        out.append(
            Finding(
                id="expiring_soon",
                severity="medium",
                message=f"Certificate expires in {leaf_info.days_remaining} days.",
            )
        )
    if leaf_info.self_issued or verify_code in _SELF_SIGNED:
        out.append(
            Finding(id="self_signed", severity="high", message="Certificate is self-signed: no client trusts it.")
        )
    elif verify_code in _ISSUER_UNKNOWN:
        out.append(
            Finding(
                id="incomplete_chain",
                severity="high",
                message="The chain does not reach a trusted root: the server does not send its intermediate "
                "certificate(s), or the issuer is unknown.",
            )
        )
    if not match:
        out.append(
            Finding(
                id="hostname_mismatch",
                severity="critical",
                message=f"Certificate is not valid for {host} (it names: {', '.join(leaf_info.sans) or 'nothing'}).",
            )
        )
    for position, info in enumerate(infos):
        if info.self_issued and position > 0:
            continue  # a root's own signature is not checked by clients
        if "sha1" in info.signature_algorithm.lower() or "md5" in info.signature_algorithm.lower():
            out.append(
                Finding(
                    id="sha1_signature",
                    severity="high",
                    message=f"Certificate {position} ({info.common_name}) is signed with {info.signature_algorithm}.",
                )
            )
        weak_rsa = info.key_type in ("RSA", "DSA") and (info.key_bits or 0) < 2048
        weak_ec = info.key_type.startswith("EC") and (info.key_bits or 0) < 256
        if weak_rsa or weak_ec:
            out.append(
                Finding(
                    id="weak_key",
                    severity="high",
                    message=f"Certificate {position} ({info.common_name}) has a weak {info.key_bits}-bit "
                    f"{info.key_type} key.",
                )
            )
    if protocol in ("TLSv1", "TLSv1.1", "SSLv3"):
        out.append(Finding(id="legacy_protocol", severity="high", message=f"Server negotiated obsolete {protocol}."))
    known = {"expired", "self_signed", "incomplete_chain", "weak_key", "sha1_signature"}
    if trust_error and not any(f.id in known for f in out):
        out.append(Finding(id="untrusted", severity="high", message=f"Chain is not trusted: {trust_error}."))
    return out
