"""Sandbox certificates shaped like ICP-Brasil's, generated at run time (never committed).

An ``Authority`` (a self-signed AC, or one issued by another) issues end-entity certificates
shaped like e-CNPJ / e-CPF A1 (DOC-ICP-04): subject C=BR, O=ICP-Brasil, OUs, CN "NOME:DOCUMENTO";
subjectAltName otherNames with the ICP-Brasil OIDs; keyUsage digitalSignature + nonRepudiation;
extendedKeyUsage clientAuth + emailProtection. An OU says they have no legal value.

Keys are RSA (2048 bits unless told), unencrypted PKCS#8 PEM: these are test/simulator keys, kept
in a runtime directory with mode 0600.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

# ICP-Brasil otherName OIDs (DOC-ICP-04, 7.1.2.3).
# e-CPF holder's data: nascimento(8) CPF(11) NIS(11) RG(15) órgão expedidor + UF(10)
OID_PF_DADOS = ObjectIdentifier("2.16.76.1.3.1")
OID_PJ_CNPJ = ObjectIdentifier("2.16.76.1.3.3")  # e-CNPJ: the CNPJ (14)
OID_PJ_RESPONSAVEL = ObjectIdentifier("2.16.76.1.3.4")  # e-CNPJ responsible: same layout as 2.16.76.1.3.1

DEFAULT_AUTHORITY = "AC Simulada TISS"
SEM_VALOR_LEGAL = "Ambiente de testes - sem valor legal"
KEY_FILE = "ca-key.pem"
CERT_FILE = "ca-cert.pem"

_CNPJ = re.compile(r"[A-Z0-9]{12}[0-9]{2}")  # 4.03.00 allows an alphanumeric CNPJ
_CPF = re.compile(r"[0-9]{11}")
_CN_MAX = 64  # ub-common-name (RFC 5280): ICP-Brasil truncates the name, never the document
_SKEW = timedelta(minutes=5)  # not_before slightly in the past: clocks of the two ends differ
# Universal tags a DER otherName value may use for these ASCII fields: OCTET STRING, UTF8String,
# PrintableString, IA5String.
_TEXT_TAGS = frozenset({0x04, 0x0C, 0x13, 0x16})


@dataclass(frozen=True)
class Leaf:
    """An end-entity certificate with its key; ``chain_pem`` is the leaf then its ACs."""

    key_pem: bytes
    cert_pem: bytes
    chain_pem: list[bytes]

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def cnpj(self) -> str | None:
        return cnpj_do_certificado(self.certificate)

    @property
    def cpf(self) -> str | None:
        return cpf_do_certificado(self.certificate)

    @property
    def documento(self) -> str | None:
        return documento_do_certificado(self.certificate)

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    def save(self, directory: str | os.PathLike[str], stem: str) -> None:
        """Write ``<stem>-key.pem`` (0600) and ``<stem>-cert.pem`` (leaf then chain)."""
        directory = Path(directory)
        _write_private(directory / f"{stem}-key.pem", self.key_pem)
        _write_public(directory / f"{stem}-cert.pem", b"".join(self.chain_pem))


def load_leaf(directory: str | os.PathLike[str], stem: str) -> Leaf:
    directory = Path(directory)
    key_pem = (directory / f"{stem}-key.pem").read_bytes()
    chain = [_pem(c) for c in x509.load_pem_x509_certificates((directory / f"{stem}-cert.pem").read_bytes())]
    return Leaf(key_pem, chain[0], chain)


@dataclass(frozen=True)
class Authority:
    """A certification authority: its key, its certificate and the ACs above it (if any)."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    parents: tuple[x509.Certificate, ...] = ()

    @property
    def name(self) -> str:
        return _common_name(self.certificate) or ""

    @property
    def cert_pem(self) -> bytes:
        return _pem(self.certificate)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)

    @property
    def chain_pem(self) -> list[bytes]:
        """This AC then its parents, up to the self-signed root."""
        return [self.cert_pem, *(_pem(c) for c in self.parents)]

    def issue(self, nome: str, *, cnpj: str | None = None, cpf: str | None = None, days: int = 365,
              not_before: datetime | None = None, key_size: int = 2048) -> Leaf:
        """An e-CNPJ (``cnpj``; ``cpf`` = the responsible's) or e-CPF (``cpf`` only) A1-like leaf.

        ``not_before`` (default: now) and ``days`` set the validity: a ``not_before`` more than
        ``days`` ago gives an already expired certificate.
        """
        if cnpj is None and cpf is None:
            raise ValueError("informe o CNPJ ou o CPF do titular")
        _check_documents(cnpj, cpf)
        key = _new_key(key_size)
        start = _utc(not_before) if not_before is not None else datetime.now(UTC) - _SKEW
        tipo = "RFB e-CNPJ A1" if cnpj else "RFB e-CPF A1"
        documento = cnpj or cpf or ""
        subject = _icp_name(_leaf_cn(nome, documento), tipo, self.name, SEM_VALOR_LEGAL)
        builder = (
            _builder(subject, self.certificate.subject, key, start, start + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH,
                                                  ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectAlternativeName(_other_names(cnpj, cpf)), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
        )
        cert = builder.sign(self.key, hashes.SHA256())
        return Leaf(_key_pem(key), _pem(cert), [_pem(cert), *self.chain_pem])

    def issue_server(self, *hosts: str, days: int = 365, key_size: int = 2048) -> Leaf:
        """A TLS server certificate for ``hosts`` (DNS names or IP addresses; the first is the CN):
        HTTPS with client certificates in tests and sandboxes."""
        if not hosts:
            raise ValueError("informe ao menos um nome ou endereço do servidor")
        key = _new_key(key_size)
        start = datetime.now(UTC) - _SKEW
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        usage = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                              data_encipherment=False, key_agreement=False, key_cert_sign=False,
                              crl_sign=False, encipher_only=False, decipher_only=False)
        cert = (
            _builder(_icp_name(hosts[0], SEM_VALOR_LEGAL), self.certificate.subject, key, start,
                     start + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return Leaf(_key_pem(key), _pem(cert), [_pem(cert), *self.chain_pem])

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Persist as ``ca-key.pem`` (mode 0600) and ``ca-cert.pem`` (this AC then its parents)."""
        directory = Path(directory)
        _write_private(directory / KEY_FILE, self.key_pem)
        _write_public(directory / CERT_FILE, b"".join(self.chain_pem))


def new_authority(name: str = DEFAULT_AUTHORITY, *, issuer: Authority | None = None, days: int = 3650,
                  not_before: datetime | None = None, key_size: int = 2048) -> Authority:
    """A self-signed AC (or, with ``issuer``, a subordinate one, like an ICP-Brasil AC final)."""
    key = _new_key(key_size)
    start = _utc(not_before) if not_before is not None else datetime.now(UTC) - timedelta(days=1)
    subject = _icp_name(name, SEM_VALOR_LEGAL)
    issuer_name = issuer.certificate.subject if issuer else subject
    signing_key = issuer.key if issuer else key
    builder = (
        _builder(subject, issuer_name, key, start, start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
                       critical=False)
    )
    cert = builder.sign(signing_key, hashes.SHA256())
    parents = (issuer.certificate, *issuer.parents) if issuer else ()
    return Authority(key, cert, parents)


def load_authority(directory: str | os.PathLike[str]) -> Authority:
    """The AC saved by ``Authority.save`` (FileNotFoundError if there is none)."""
    directory = Path(directory)
    key = serialization.load_pem_private_key((directory / KEY_FILE).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{directory / KEY_FILE}: esperada chave RSA")
    certs = x509.load_pem_x509_certificates((directory / CERT_FILE).read_bytes())
    return Authority(key, certs[0], tuple(certs[1:]))


def load_or_create_authority(directory: str | os.PathLike[str], name: str = DEFAULT_AUTHORITY,
                             *, key_size: int = 2048) -> Authority:
    """The AC kept in ``directory``, created and saved there on first use (simulator restarts)."""
    directory = Path(directory)
    if (directory / KEY_FILE).exists():
        return load_authority(directory)
    authority = new_authority(name, key_size=key_size)
    authority.save(directory)
    return authority


# ------------------------------------------------------------------- reading a certificate back


def documento_do_certificado(cert: x509.Certificate) -> str | None:
    """The holder's CNPJ (e-CNPJ) or CPF (e-CPF): the otherName, else the "NOME:DOC" CN suffix."""
    return cnpj_do_certificado(cert) or _cpf_do_titular(cert)


def cnpj_do_certificado(cert: x509.Certificate) -> str | None:
    value = _other_name(cert, OID_PJ_CNPJ)
    if value is not None and _CNPJ.fullmatch(value):
        return value
    suffix = _documento_do_cn(cert)
    return suffix if suffix and _CNPJ.fullmatch(suffix) else None


def cpf_do_certificado(cert: x509.Certificate) -> str | None:
    """The e-CPF holder's CPF, or the CPF of an e-CNPJ's responsible."""
    return _cpf_do_titular(cert) or _cpf_do_campo(_other_name(cert, OID_PJ_RESPONSAVEL))


def _cpf_do_titular(cert: x509.Certificate) -> str | None:
    cpf = _cpf_do_campo(_other_name(cert, OID_PF_DADOS))
    if cpf:
        return cpf
    if _other_name(cert, OID_PJ_CNPJ) is not None:
        return None  # an e-CNPJ: its CN suffix is a CNPJ
    suffix = _documento_do_cn(cert)
    return suffix if suffix and _CPF.fullmatch(suffix) else None


def _cpf_do_campo(value: str | None) -> str | None:
    """The CPF in a 2.16.76.1.3.1/.4 field (positions 9-19); zeros mean not informed."""
    cpf = value[8:19] if value else ""
    return cpf if _CPF.fullmatch(cpf) and cpf.strip("0") else None


def _documento_do_cn(cert: x509.Certificate) -> str | None:
    cn = _common_name(cert)
    if not cn or ":" not in cn:
        return None
    suffix = cn.rsplit(":", 1)[1].strip()
    return suffix if _CNPJ.fullmatch(suffix) or _CPF.fullmatch(suffix) else None


def _common_name(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else None
    return value if isinstance(value, str) else None


def _other_name(cert: x509.Certificate, oid: ObjectIdentifier) -> str | None:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == oid:
            return _der_text(other.value)
    return None


# ------------------------------------------------------------------- building


def _new_key(key_size: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def _builder(subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey, start: datetime,
             end: datetime) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _icp_name(cn: str, *units: str) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "BR"),
                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ICP-Brasil")]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _fit(u, _CN_MAX)) for u in units if u]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, _fit(cn, _CN_MAX)))
    return x509.Name(attributes)


def _fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-8 *bytes* (the bound cryptography enforces): accented names
    like "PASA - Plano de Assistência à Saúde..." overflow a cut by characters."""
    return text.strip().encode("utf-8")[:limit].decode("utf-8", "ignore")


def _leaf_cn(nome: str, documento: str) -> str:
    return f"{_fit(nome, _CN_MAX - len(documento) - 1)}:{documento}"


def _key_usage(*, digital_signature: bool = False, content_commitment: bool = False,
               key_cert_sign: bool = False, crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=content_commitment,
        key_encipherment=False, data_encipherment=False, key_agreement=False,
        key_cert_sign=key_cert_sign, crl_sign=crl_sign, encipher_only=False, decipher_only=False)


def _other_names(cnpj: str | None, cpf: str | None) -> list[x509.GeneralName]:
    if cnpj:
        return [x509.OtherName(OID_PJ_CNPJ, _der_octet_string(cnpj)),
                x509.OtherName(OID_PJ_RESPONSAVEL, _der_octet_string(_dados_pessoa(cpf)))]
    return [x509.OtherName(OID_PF_DADOS, _der_octet_string(_dados_pessoa(cpf)))]


def _dados_pessoa(cpf: str | None) -> str:
    """nascimento(8) CPF(11) NIS(11) RG(15) órgão expedidor + UF(10); unknown fields are zeros."""
    return "0" * 8 + (cpf or "0" * 11) + "0" * 11 + "0" * 15 + "0" * 10


def _check_documents(cnpj: str | None, cpf: str | None) -> None:
    if cnpj is not None and not _CNPJ.fullmatch(cnpj):
        raise ValueError(f"CNPJ inválido: {cnpj!r} (14 posições, sem pontuação)")
    if cpf is not None and not _CPF.fullmatch(cpf):
        raise ValueError(f"CPF inválido: {cpf!r} (11 dígitos, sem pontuação)")


def _der_octet_string(text: str) -> bytes:
    """DER of an OCTET STRING holding ASCII text: what ``x509.OtherName`` wants as its value."""
    content = text.encode("ascii")
    return b"\x04" + _der_length(len(content)) + content


def _der_length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def _der_text(value: bytes) -> str | None:
    """The text of a DER string TLV (short or long length form), None if it is not one."""
    if len(value) < 2 or value[0] not in _TEXT_TAGS:
        return None
    size, start = value[1], 2
    if size & 0x80:
        count = size & 0x7F
        size, start = int.from_bytes(value[2:2 + count], "big"), 2 + count
    content = value[start:start + size]
    if len(content) != size:
        return None
    return content.decode("latin-1").strip()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_private(path: Path, data: bytes) -> None:
    """Write a key readable by the owner only, from its creation on (no window at 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a leftover tmp file
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
