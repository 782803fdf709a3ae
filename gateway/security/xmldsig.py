"""Enveloped XMLDSig of a TISS ``*WS`` element or ``mensagemTISS`` (signxml).

Where the official XSDs (4.01.00-4.03.00, tissWebServices and tissV) put the signature, always
as the last child (after ``hash``; in mensagemTISS after ``epilogo``), typed ds:SignatureType:

- most ``*WS`` elements: ``ans:Signature`` (ANS namespace; children in the xmldsig namespace);
- respostaElegibilidadeWS, protocoloRecebimentoAnexoWS, reciboDocumentosWS: ``ans:Signatures``;
- mensagemTISS: ``ds:Signature`` itself (``ref="ds:Signature"``);
- tissFaultWS: none.

signxml writes and reads ``ds:Signature``: the element is renamed after signing, and back on a
copy before verifying. The signature covers the whole element (Reference URI="", transforms
enveloped-signature + exclusive c14n), verified as its own document, so the SOAP envelope around
it and namespace declarations on ancestors do not matter. The TISS hash leaves the signature out,
so a sender stamps the hash first, then signs; rewriting or re-indenting after signing breaks it.

Failures raise ``SignatureError`` with an ANS Table 38 (dm_tipoGlosa) code:

- 5018 CERTIFICADO DIGITAL INVÁLIDO: no/unreadable certificate, not an end-entity signing
  certificate, not yet valid;
- 5019 CERTIFICADO DIGITAL VENCIDO: a certificate of the chain expired at ``now``;
- 5020 CERTIFICADO DIGITAL REVOGADO: serial listed in ``revoked_serials``;
- 5021 CADEIA DE CERTIFICAÇÃO INVÁLIDA: does not chain to a trusted AC;
- 5022 ASSINATURA DIGITAL NÃO CONFERE: content altered after signing, signature value wrong,
  malformed, misplaced or duplicated signature, and a missing one (Table 38 has no "assinatura
  ausente" code; 5018-5021 are about a certificate, which an absent signature does not present).
"""

from __future__ import annotations

import base64
import copy
import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    InvalidCertificate,
    InvalidDigest,
    InvalidInput,
    SignatureConfiguration,
    SignatureConstructionMethod,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
)
from signxml.exceptions import SignXMLException

from gateway.message import findings as f
from gateway.message import hashing, schema_types
from gateway.message.services import ANS_NS, DSIG_NS, MENSAGEM_TISS
from gateway.security.pki import documento_do_certificado

CERTIFICADO_INVALIDO = "5018"
CERTIFICADO_VENCIDO = "5019"
CERTIFICADO_REVOGADO = "5020"
CADEIA_INVALIDA = "5021"
ASSINATURA_NAO_CONFERE = "5022"
schema_types.prepare()  # signxml compiles its xmldsig schema in whichever thread verifies first

DS_SIGNATURE = f"{{{DSIG_NS}}}Signature"
ANS_SIGNATURE = f"{{{ANS_NS}}}Signature"
ANS_SIGNATURES = f"{{{ANS_NS}}}Signatures"
_SIGNATURE_TAGS = (DS_SIGNATURE, ANS_SIGNATURE, ANS_SIGNATURES)
# The *WS elements whose schema names the element "Signatures" (same in 4.01.00, 4.02.00, 4.03.00).
_PLURAL = frozenset({"respostaElegibilidadeWS", "protocoloRecebimentoAnexoWS", "reciboDocumentosWS"})
_UNSIGNED = frozenset({"tissFaultWS"})
_DS = {"ds": DSIG_NS}
_MAX_CHAIN = 8
_ENVELOPED = SignatureConstructionMethod.enveloped
# Exclusive c14n: what a signed *WS canonicalises to does not depend on the envelope around it.
_EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
_T = TypeVar("_T", bound=x509.ExtensionType)


class SignatureError(Exception):
    """The signature does not verify; ``codigo`` is the Table 38 code to answer with."""

    def __init__(self, codigo: str, mensagem: str):
        super().__init__(f"{codigo}: {mensagem}")
        self.codigo = codigo
        self.mensagem = mensagem

    def finding(self) -> f.Finding:
        return f.error(self.codigo, self.mensagem, "Signature")


@dataclass(frozen=True)
class Signer:
    documento: str | None  # CNPJ (e-CNPJ) or CPF (e-CPF) of the certificate's holder
    subject: str  # RFC 4514
    not_after: datetime


# ------------------------------------------------------------------- public API


def signature_tag(root: etree._Element) -> str | None:
    """The tag the schema gives the signature of ``root``; None if it cannot be signed."""
    qname = etree.QName(root)
    if qname.namespace != ANS_NS or qname.localname in _UNSIGNED:
        return None
    if qname.localname == MENSAGEM_TISS:
        return DS_SIGNATURE
    if qname.localname in _PLURAL:
        return ANS_SIGNATURES
    return ANS_SIGNATURE if qname.localname.endswith("WS") else None


def has_signature(root: etree._Element) -> bool:
    """Whether ``root`` has a signature child (any of the three names)."""
    return any(child.tag in _SIGNATURE_TAGS for child in root.iterchildren(etree.Element))


def sign(root: etree._Element, key_pem: bytes, chain_pem: list[bytes]) -> etree._Element:
    """Sign ``root`` in place (RSA-SHA256, SHA-256, exclusive c14n) and return it.

    The signature is appended as the last child under the name the schema gives it (see the
    module docstring), with ``chain_pem`` (signing certificate first) in KeyInfo/X509Data.
    Stamp the hash before: the signature covers it.
    """
    tag = signature_tag(root)
    if tag is None:
        raise ValueError(f"{etree.QName(root).localname} não tem assinatura no schema TISS")
    if any(True for _ in root.iter(*_SIGNATURE_TAGS)):
        raise ValueError("a mensagem já está assinada")
    hash_element = hashing.hash_element(root)
    if hash_element is not None and not (hash_element.text or "").strip():
        raise ValueError("carimbe o hash antes de assinar: a assinatura cobre o hash")
    chain = [x509.load_pem_x509_certificate(pem) for pem in chain_pem]
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not chain or chain[0].public_key() != key.public_key():
        raise ValueError("a chave privada não corresponde ao primeiro certificado da cadeia")
    if not isinstance(key, rsa.RSAPrivateKey):  # signxml would fail on it too (TypeError), later
        raise TypeError(f"a assinatura é RSA-SHA256: chave privada {type(key).__name__} não serve")
    signer = _Signer(method=_ENVELOPED, signature_algorithm=SignatureMethod.RSA_SHA256,
                     digest_algorithm=DigestAlgorithm.SHA256, c14n_algorithm=_EXC_C14N)
    signed = signer.sign(_standalone(root), key=key, cert=chain)
    signature = signed[-1]
    root.append(signature)  # lxml moves it into root's document, reconciling namespaces
    signature.tag = tag
    return root


def verify(root: etree._Element, ca_pem: bytes | list[bytes], *, now: datetime | None = None,
           revoked_serials: Collection[int] = ()) -> Signer:
    """Verify the enveloped signature of ``root`` (a ``*WS`` element, maybe inside an envelope,
    or ``mensagemTISS``) against the trusted ACs in ``ca_pem``; raise ``SignatureError``.

    ``now`` (default: the current time; naive means UTC) is when validity is judged.
    ``revoked_serials`` stands in for a CRL: serial numbers of revoked certificates.
    """
    moment = _utc(now) if now is not None else datetime.now(UTC)
    signature = _the_signature(root)
    certificates = _certificates(signature)
    leaf = _signing_certificate(certificates)
    path = _chain_to_anchor(leaf, certificates, _anchors(ca_pem))
    _check_validity(path, moment)
    _check_revocation(path[:-1], revoked_serials)
    _check_signature(root, leaf, moment)
    return Signer(documento_do_certificado(leaf), leaf.subject.rfc4514_string(), leaf.not_valid_after_utc)


# ------------------------------------------------------------------- signxml plumbing

_local = threading.local()


def _parser() -> etree.XMLParser:
    """signxml re-parses what it signs/verifies: with the reader's safety settings (huge_tree for
    15 MiB envioDocumento bodies), one parser per thread as lxml requires."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                                 huge_tree=True, collect_ids=False)
        _local.parser = parser
    return parser


class _Signer(XMLSigner):
    @property
    def parser(self) -> etree.XMLParser:
        return _parser()


def _standalone(root: etree._Element) -> etree._Element:
    """``root`` as its own document. deepcopy carries only the ancestors' namespace declarations
    the element uses (etree.tostring would copy them all, e.g. the SOAP one)."""
    element = copy.deepcopy(root)
    element.tail = None
    return element


# ------------------------------------------------------------------- checks


def _the_signature(root: etree._Element) -> etree._Element:
    """The one signature, as the last child of ``root`` under its schema name."""
    expected = signature_tag(root)
    found = list(root.iter(*_SIGNATURE_TAGS))
    name = etree.QName(root).localname
    if not found:
        raise SignatureError(ASSINATURA_NAO_CONFERE, f"Mensagem {name} sem assinatura digital.")
    if len(found) > 1:
        raise SignatureError(ASSINATURA_NAO_CONFERE,
                             f"Mensagem {name} com {len(found)} assinaturas digitais: esperada uma.")
    signature = found[0]
    last = _last_element(root)
    if expected is None or signature.tag != expected or signature is not last:
        where = _prefixed(expected) if expected else "nenhuma"
        raise SignatureError(ASSINATURA_NAO_CONFERE,
                             f"Assinatura fora do lugar: esperado {where} como último elemento de {name}.")
    return signature


def _certificates(signature: etree._Element) -> list[x509.Certificate]:
    texts = signature.xpath("ds:KeyInfo/ds:X509Data/ds:X509Certificate/text()", namespaces=_DS)
    if not texts:
        raise SignatureError(CERTIFICADO_INVALIDO,
                             "Assinatura sem certificado digital (KeyInfo/X509Data/X509Certificate).")
    try:
        return [x509.load_der_x509_certificate(_b64(text)) for text in texts]
    except ValueError as exc:
        raise SignatureError(CERTIFICADO_INVALIDO, f"Certificado digital ilegível: {exc}") from None


def _signing_certificate(certificates: list[x509.Certificate]) -> x509.Certificate:
    """The end-entity certificate (signers list it first; the ACs may follow in any order)."""
    leaf = next((c for c in certificates if not _is_ca(c)), None)
    if leaf is None:
        raise SignatureError(CERTIFICADO_INVALIDO,
                             "Assinatura sem certificado de usuário final: só certificados de AC.")
    usage = _extension(leaf, x509.KeyUsage)
    if usage is not None and not (usage.digital_signature or usage.content_commitment):
        raise SignatureError(CERTIFICADO_INVALIDO,
                             f"Certificado {_subject(leaf)} não é de assinatura digital (keyUsage).")
    return leaf


def _anchors(ca_pem: bytes | list[bytes]) -> list[x509.Certificate]:
    pems = [ca_pem] if isinstance(ca_pem, bytes) else ca_pem
    anchors = [cert for pem in pems for cert in x509.load_pem_x509_certificates(pem)]
    if not anchors:
        raise ValueError("nenhum certificado de AC confiável informado")
    return anchors


def _chain_to_anchor(leaf: x509.Certificate, pool: list[x509.Certificate],
                     anchors: list[x509.Certificate]) -> list[x509.Certificate]:
    """leaf, intermediates from KeyInfo, then the trusted AC that issued the last one."""
    trusted = [c for c in anchors if _is_ca(c)]
    intermediates = [c for c in pool if _is_ca(c)]
    path = [leaf]
    for _ in range(_MAX_CHAIN):
        anchor = _issuer_among(path[-1], trusted)
        if anchor is not None:
            return [*path, anchor]
        issuer = _issuer_among(path[-1], intermediates)
        if issuer is None or issuer in path:
            break
        path.append(issuer)
    raise SignatureError(CADEIA_INVALIDA,
                         f"Certificado {_subject(leaf)} não foi emitido por uma AC confiável "
                         f"(emissor: {path[-1].issuer.rfc4514_string()}).")


def _issuer_among(cert: x509.Certificate, candidates: list[x509.Certificate]) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return candidate
    return None


def _check_validity(path: list[x509.Certificate], now: datetime) -> None:
    for cert in path:
        if now > cert.not_valid_after_utc:
            raise SignatureError(CERTIFICADO_VENCIDO,
                                 f"Certificado {_subject(cert)} vencido em "
                                 f"{cert.not_valid_after_utc:%d/%m/%Y %H:%M} UTC.")
        if now < cert.not_valid_before_utc:
            raise SignatureError(CERTIFICADO_INVALIDO,
                                 f"Certificado {_subject(cert)} válido só a partir de "
                                 f"{cert.not_valid_before_utc:%d/%m/%Y %H:%M} UTC.")


def _check_revocation(path: list[x509.Certificate], revoked_serials: Collection[int]) -> None:
    for cert in path:
        if cert.serial_number in revoked_serials:
            raise SignatureError(CERTIFICADO_REVOGADO, f"Certificado {_subject(cert)} revogado.")


def _check_signature(root: etree._Element, leaf: x509.Certificate, now: datetime) -> None:
    """The cryptographic check, by signxml, of ``root`` as its own document."""
    document = _standalone(root)
    signature = _last_element(document)
    if signature is None:  # not so: verify() found the signature as root's last element
        raise SignatureError(ASSINATURA_NAO_CONFERE,
                             f"Mensagem {etree.QName(root).localname} sem assinatura digital.")
    signature.tag = DS_SIGNATURE
    config = SignatureConfiguration(location="./", expect_references=1, verification_time=now)
    try:
        XMLVerifier().verify(document, x509_cert=leaf, parser=_parser(), expect_config=config)
    except InvalidDigest:
        raise SignatureError(ASSINATURA_NAO_CONFERE,
                             "Assinatura digital não confere: o conteúdo foi alterado depois de "
                             "assinado.") from None
    except InvalidCertificate as exc:  # validity was checked before: kept for safety
        raise SignatureError(CERTIFICADO_INVALIDO, f"Certificado digital inválido: {exc}") from None
    except InvalidSignature:
        raise SignatureError(ASSINATURA_NAO_CONFERE,
                             "Assinatura digital não confere com o certificado informado.") from None
    except (InvalidInput, SignXMLException, etree.DocumentInvalid, ValueError, NotImplementedError) as exc:
        raise SignatureError(ASSINATURA_NAO_CONFERE, f"Assinatura digital malformada: {exc}") from None
    _check_whole_element(document)


def _check_whole_element(document: etree._Element) -> None:
    """Only URI="" covers the whole element: "#id" would sign a part of it (signature wrapping)."""
    uris = document.xpath("ds:Signature/ds:SignedInfo/ds:Reference/@URI", namespaces=_DS)
    if uris != [""]:
        raise SignatureError(ASSINATURA_NAO_CONFERE,
                             "Assinatura digital não cobre a mensagem inteira (Reference URI deve ser \"\").")


# ------------------------------------------------------------------- helpers


def _last_element(parent: etree._Element) -> etree._Element | None:
    children = list(parent.iterchildren(etree.Element))
    return children[-1] if children else None


def _is_ca(cert: x509.Certificate) -> bool:
    constraints = _extension(cert, x509.BasicConstraints)
    return constraints is not None and constraints.ca


def _extension(cert: x509.Certificate, kind: type[_T]) -> _T | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _prefixed(tag: str) -> str:
    qname = etree.QName(tag)
    return f"{'ds' if qname.namespace == DSIG_NS else 'ans'}:{qname.localname}"


def _b64(text: str) -> bytes:
    return base64.b64decode("".join(text.split()), validate=True)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
