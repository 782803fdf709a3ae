"""Sandbox ICP-Brasil-shaped certificates and the enveloped signature of TISS messages."""

import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree
from signxml import XMLSigner, XMLVerifier

from gateway.message import findings as f
from gateway.message import hashing, reader, responses
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, DSIG_NS
from gateway.message.validation import validate
from gateway.security import pki, xmldsig
from gateway.security.xmldsig import ANS_SIGNATURE, ANS_SIGNATURES, DS_SIGNATURE, SignatureError
from tests.factory import (
    ENCODINGS,
    REQUEST_KINDS,
    build_lote,
    build_mensagem_tiss,
    build_request,
    envelope,
)

NS = {"ans": ANS_NS, "ds": DSIG_NS}
CNPJ = "11222333000181"
CPF = "52998224725"
VERSIONS = ("4.02.00", "4.03.00")


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ca() -> pki.Authority:
    return pki.new_authority()


@pytest.fixture(scope="module")
def leaf(ca: pki.Authority) -> pki.Leaf:
    return ca.issue("CLINICA SAO LUCAS DIAGNOSTICOS LTDA", cnpj=CNPJ, cpf=CPF)


@pytest.fixture(scope="module")
def other_leaf(ca: pki.Authority) -> pki.Leaf:
    return ca.issue("HOSPITAL SANTA CECILIA", cnpj="60395835000168")


@pytest.fixture(scope="module")
def expired(ca: pki.Authority) -> pki.Leaf:
    return ca.issue("CLINICA VENCIDA", cnpj=CNPJ, not_before=datetime.now(UTC) - timedelta(days=400), days=30)


@pytest.fixture(scope="module")
def stranger() -> pki.Authority:
    """Another AC with the same name as ``ca``: trust must not rest on the name."""
    return pki.new_authority()


@pytest.fixture(scope="module")
def sub_ca(ca: pki.Authority) -> pki.Authority:
    return pki.new_authority("AC Final Simulada", issuer=ca)


# ------------------------------------------------------------------------------- helpers


def read(data: bytes) -> reader.TissMessage:
    return reader.read(data)


def serialise(message: reader.TissMessage) -> bytes:
    return etree.tostring(message.tree, encoding=message.encoding, xml_declaration=True)


def signed(data: bytes, leaf: pki.Leaf) -> bytes:
    message = read(data)
    xmldsig.sign(message.root, leaf.key_pem, leaf.chain_pem)
    return serialise(message)


def assert_valid(data: bytes, registry: SchemaRegistry) -> None:
    report = validate(data, registry=registry)
    details = "\n".join(f"  [{x.code}] {x.location}: {x.message}" for x in report.findings)
    assert report.valid and not report.findings, f"message not valid:\n{details}"
    assert report.hash is not None and report.hash.variant == hashing.DECLARED


def code_of(data: bytes, ca_pem: bytes | list[bytes], **kwargs) -> str:
    with pytest.raises(SignatureError) as caught:
        xmldsig.verify(read(data).root, ca_pem, **kwargs)
    return caught.value.codigo


def edit(data: bytes, change, *, restamp: bool = False) -> bytes:
    """Apply ``change(root)`` to a parsed copy; ``restamp`` re-computes the TISS hash as a forger would."""
    message = read(data)
    change(message.root)
    if restamp:
        return hashing.rewrite(message.tree, message.root)
    return serialise(message)


def first(root: etree._Element, path: str) -> etree._Element:
    return root.xpath(path, namespaces=NS)[0]


def signature_of(root: etree._Element) -> etree._Element:
    return next(c for c in root.iterchildren(etree.Element) if c.tag in xmldsig._SIGNATURE_TAGS)


def lote(**kwargs) -> bytes:
    return build_lote("sp-sadt", 2, **kwargs)


def custom_leaf(ca: pki.Authority, *, key_usage: x509.KeyUsage | None = None,
                san: x509.SubjectAlternativeName | None = None, cn: str = "SEM SAN:11222333000181"
                ) -> x509.Certificate:
    """A leaf built by hand (reusing the AC's key as its own: only the certificate matters)."""
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "BR"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(ca.certificate.subject)
               .public_key(ca.key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca.key, hashes.SHA256())


# ------------------------------------------------------------------------------- pki


def test_authority_is_a_self_signed_icp_brasil_shaped_ca(ca: pki.Authority) -> None:
    cert = ca.certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "BR"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "ICP-Brasil"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "AC Simulada TISS"
    assert ca.name == "AC Simulada TISS"
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert ca.key.key_size == 2048


def test_e_cnpj_leaf(ca: pki.Authority, leaf: pki.Leaf) -> None:
    cert = leaf.certificate
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == f"CLINICA SAO LUCAS DIAGNOSTICOS LTDA:{CNPJ}"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "ICP-Brasil"
    units = {a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)}
    assert {"RFB e-CNPJ A1", "AC Simulada TISS"} <= units
    cert.verify_directly_issued_by(ca.certificate)
    assert leaf.chain_pem == [leaf.cert_pem, ca.cert_pem]
    others = {o.type_id.dotted_string: o.value for o in
              cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
              .get_values_for_type(x509.OtherName)}
    assert others["2.16.76.1.3.3"] == b"\x04\x0e" + CNPJ.encode()  # DER OCTET STRING
    assert others["2.16.76.1.3.4"][2 + 8:2 + 19] == CPF.encode()  # responsible: nascimento(8) + CPF
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (leaf.cnpj, leaf.cpf, leaf.documento) == (CNPJ, CPF, CNPJ)


def test_e_cpf_leaf(ca: pki.Authority) -> None:
    person = ca.issue("ANTONIA ARAUJO LEAO", cpf=CPF)
    cert = person.certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"ANTONIA ARAUJO LEAO:{CPF}"
    others = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.OtherName)
    assert [o.type_id.dotted_string for o in others] == ["2.16.76.1.3.1"]
    assert (person.cnpj, person.cpf, person.documento) == (None, CPF, CPF)


def test_documento_falls_back_to_the_cn_suffix_and_reads_printable_strings(ca: pki.Authority) -> None:
    assert pki.documento_do_certificado(custom_leaf(ca)) == CNPJ
    assert pki.documento_do_certificado(custom_leaf(ca, cn="SEM DOCUMENTO")) is None
    printable_string = b"\x13\x0e" + b"60395835000168"
    printable = x509.SubjectAlternativeName([x509.OtherName(pki.OID_PJ_CNPJ, printable_string)])
    assert pki.documento_do_certificado(custom_leaf(ca, san=printable)) == "60395835000168"


def test_long_names_are_cut_to_keep_the_document(ca: pki.Authority) -> None:
    cn = ca.issue("CLINICA " * 12, cnpj=CNPJ, key_size=1024).certificate.subject.get_attributes_for_oid(
        NameOID.COMMON_NAME)[0].value
    assert len(cn) == 64 and cn.endswith(f":{CNPJ}")


@pytest.mark.parametrize("kwargs", [{}, {"cnpj": "11.222.333/0001-81"}, {"cpf": "1234"}])
def test_issue_refuses_a_missing_or_malformed_document(ca: pki.Authority, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ca.issue("X", **kwargs)


def test_an_expired_leaf_can_be_issued(expired: pki.Leaf) -> None:
    assert expired.not_after < datetime.now(UTC) - timedelta(days=300)


def test_authority_and_leaf_persist_with_private_keys_0600(tmp_path, ca: pki.Authority,
                                                           leaf: pki.Leaf) -> None:
    ca.save(tmp_path / "ac")
    leaf.save(tmp_path / "ac", "clinica")
    for key_file in (tmp_path / "ac" / pki.KEY_FILE, tmp_path / "ac" / "clinica-key.pem"):
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    loaded = pki.load_authority(tmp_path / "ac")
    assert loaded.cert_pem == ca.cert_pem and loaded.key_pem == ca.key_pem
    loaded.issue("NOVA", cnpj=CNPJ, key_size=1024).certificate.verify_directly_issued_by(ca.certificate)
    assert pki.load_leaf(tmp_path / "ac", "clinica") == leaf


def test_load_or_create_keeps_the_authority_across_restarts(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        pki.load_authority(tmp_path)
    first_run = pki.load_or_create_authority(tmp_path, "AC Reinicio", key_size=1024)
    again = pki.load_or_create_authority(tmp_path, "AC Reinicio", key_size=1024)
    assert again.cert_pem == first_run.cert_pem and again.name == "AC Reinicio"


def test_subordinate_authority_chain(ca: pki.Authority, sub_ca: pki.Authority) -> None:
    final = sub_ca.issue("CLINICA", cnpj=CNPJ, key_size=1024)
    assert final.chain_pem == [final.cert_pem, sub_ca.cert_pem, ca.cert_pem]
    sub_ca.certificate.verify_directly_issued_by(ca.certificate)
    assert sub_ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


# ------------------------------------------------------------------------------- sign


def _bare(version: str, encoding: str, leaf: pki.Leaf) -> bytes:
    return signed(lote(version=version, encoding=encoding), leaf)


def _inside_envelope(version: str, encoding: str, leaf: pki.Leaf) -> bytes:
    return signed(lote(version=version, encoding=encoding, envelope=True), leaf)


def _wrapped_after_signing(version: str, encoding: str, leaf: pki.Leaf) -> bytes:
    return envelope(_bare(version, encoding, leaf))


SHAPES = {"bare": _bare, "signed-in-envelope": _inside_envelope,
          "wrapped-after-signing": _wrapped_after_signing}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("version", VERSIONS)
def test_signed_lote_is_schema_valid_hash_checked_and_verifies(
        version: str, encoding: str, shape: str, leaf: pki.Leaf, ca: pki.Authority,
        registry: SchemaRegistry) -> None:
    data = SHAPES[shape](version, encoding, leaf)
    assert_valid(data, registry)
    message = read(data)
    assert message.in_envelope == (shape != "bare")
    assert message.encoding.upper() == encoding
    children = list(message.root.iterchildren(etree.Element))
    assert [c.tag for c in children[-2:]] == [f"{{{ANS_NS}}}hash", ANS_SIGNATURE]
    assert hashing.check(message.root, message.encoding, data=data).variant == hashing.DECLARED
    assert xmldsig.has_signature(message.root)
    signer = xmldsig.verify(message.root, ca.cert_pem)
    assert signer.documento == CNPJ
    assert signer.subject.startswith(f"CN=CLINICA SAO LUCAS DIAGNOSTICOS LTDA:{CNPJ}")
    assert signer.not_after == leaf.not_after


@pytest.mark.parametrize("kind", REQUEST_KINDS)
def test_every_request_kind_signs_schema_valid(kind: str, leaf: pki.Leaf, ca: pki.Authority,
                                               registry: SchemaRegistry) -> None:
    data = signed(build_request(kind), leaf)
    assert_valid(data, registry)
    assert xmldsig.verify(read(data).root, ca.cert_pem).documento == CNPJ


@pytest.mark.parametrize("version", VERSIONS)
def test_mensagem_tiss_takes_ds_signature_after_epilogo(version: str, leaf: pki.Leaf, ca: pki.Authority,
                                                        registry: SchemaRegistry) -> None:
    data = signed(build_mensagem_tiss("consulta", 2, version=version), leaf)
    assert_valid(data, registry)
    root = read(data).root
    assert [c.tag for c in root.iterchildren(etree.Element)][-2:] == [f"{{{ANS_NS}}}epilogo", DS_SIGNATURE]
    assert xmldsig.verify(root, ca.cert_pem).documento == CNPJ


def _signed_resposta_elegibilidade(leaf: pki.Leaf, encoding: str = "ISO-8859-1") -> bytes:
    request = read(build_request("pedidoElegibilidadeWS"))
    ctx = responses.reply_context(request.root, registro_ans="331988", sequencial="77",
                                  now=datetime(2026, 1, 19, 10, 20))
    root = responses.glosa_elegibilidade(ctx, "1002")
    hashing.hash_element(root).text = hashing.compute(root, encoding)
    xmldsig.sign(root, leaf.key_pem, leaf.chain_pem)
    return etree.tostring(root, encoding=encoding, xml_declaration=True)


def test_three_responses_take_ans_signatures(leaf: pki.Leaf, ca: pki.Authority,
                                             registry: SchemaRegistry) -> None:
    data = _signed_resposta_elegibilidade(leaf)
    report = validate(data, registry=registry)
    assert not [x for x in report.findings if x.code == f.MENSAGEM_FORA_DO_PADRAO]  # schema-valid
    root = read(data).root
    assert [c.tag for c in root.iterchildren(etree.Element)][-1] == ANS_SIGNATURES
    assert xmldsig.verify(root, ca.cert_pem).documento == CNPJ


def test_hash_of_a_response_signed_as_ans_signatures_still_checks(leaf: pki.Leaf) -> None:
    message = read(_signed_resposta_elegibilidade(leaf))
    assert hashing.check(message.root, message.encoding).accepted


def test_signature_tag_per_root() -> None:
    def tag(local: str) -> str | None:
        return xmldsig.signature_tag(etree.Element(f"{{{ANS_NS}}}{local}"))

    assert tag("loteGuiasWS") == ANS_SIGNATURE
    assert tag("reciboDocumentosWS") == ANS_SIGNATURES
    assert tag("mensagemTISS") == DS_SIGNATURE
    assert tag("tissFaultWS") is None
    assert xmldsig.signature_tag(etree.Element("loteGuiasWS")) is None


def test_sign_refuses_what_cannot_or_must_not_be_signed(leaf: pki.Leaf, other_leaf: pki.Leaf) -> None:
    fault = etree.fromstring(f'<ans:tissFaultWS xmlns:ans="{ANS_NS}"><ans:tissFault>X</ans:tissFault>'
                             "</ans:tissFaultWS>")
    with pytest.raises(ValueError, match="não tem assinatura"):
        xmldsig.sign(fault, leaf.key_pem, leaf.chain_pem)
    with pytest.raises(ValueError, match="já está assinada"):
        xmldsig.sign(read(signed(lote(), leaf)).root, leaf.key_pem, leaf.chain_pem)
    with pytest.raises(ValueError, match="não corresponde"):
        xmldsig.sign(read(lote()).root, leaf.key_pem, other_leaf.chain_pem)
    unstamped = read(lote()).root
    hashing.hash_element(unstamped).text = None
    with pytest.raises(ValueError, match="hash"):
        xmldsig.sign(unstamped, leaf.key_pem, leaf.chain_pem)


# ------------------------------------------------------------------------------- verify: failures


@pytest.fixture(scope="module")
def good(leaf: pki.Leaf) -> bytes:
    return _wrapped_after_signing("4.03.00", "ISO-8859-1", leaf)


def test_good_message_verifies(good: bytes, ca: pki.Authority) -> None:
    """The baseline the failure tests alter: without their change, it verifies."""
    assert xmldsig.verify(read(good).root, ca.cert_pem).documento == CNPJ


def _set_carteira(root: etree._Element) -> None:
    first(root, "(.//ans:numeroCarteira)[1]").text = "3319880000000001"


@pytest.mark.parametrize("restamp", [True, False], ids=["hash-restamped", "hash-left"])
def test_altered_value_does_not_verify(good: bytes, ca: pki.Authority, restamp: bool) -> None:
    data = edit(good, _set_carteira, restamp=restamp)
    message = read(data)
    assert hashing.check(message.root, message.encoding).accepted == restamp
    assert code_of(data, ca.cert_pem) == xmldsig.ASSINATURA_NAO_CONFERE


def _flip_first(element: etree._Element) -> None:
    text = element.text or ""
    element.text = ("B" if text.startswith("A") else "A") + text[1:]


@pytest.mark.parametrize("change", [
    pytest.param(lambda r: setattr(first(r, "ans:hash"), "text", "0" * 32), id="hash"),
    pytest.param(lambda r: etree.indent(r), id="re-indented"),
    pytest.param(lambda r: first(r, ".//ans:guiasTISS").append(
        etree.fromstring(etree.tostring(first(r, ".//ans:guiasTISS/*[1]")))), id="guide-added"),
    pytest.param(lambda r: _flip_first(first(r, ".//ds:SignatureValue")), id="signature-value"),
    pytest.param(lambda r: setattr(first(r, ".//ds:DigestValue"), "text", "A" * 43 + "="), id="digest-value"),
    pytest.param(lambda r: signature_of(r).remove(first(r, ".//ds:SignedInfo")), id="signed-info-removed"),
])
def test_tampering_does_not_verify(good: bytes, ca: pki.Authority, change) -> None:
    altered = edit(good, change)
    assert altered != good
    assert code_of(altered, ca.cert_pem) == xmldsig.ASSINATURA_NAO_CONFERE


def test_missing_signature(ca: pki.Authority) -> None:
    data = lote()
    assert not xmldsig.has_signature(read(data).root)
    assert code_of(data, ca.cert_pem) == xmldsig.ASSINATURA_NAO_CONFERE


def _move_into_cabecalho(root: etree._Element) -> None:
    first(root, "ans:cabecalho").append(signature_of(root))


def _move_before_hash(root: etree._Element) -> None:
    first(root, "ans:hash").addprevious(signature_of(root))


def _duplicate(root: etree._Element) -> None:
    root.append(etree.fromstring(etree.tostring(signature_of(root))))


def _duplicate_hidden(root: etree._Element) -> None:
    copy_ = etree.fromstring(etree.tostring(signature_of(root)))
    copy_.tag = DS_SIGNATURE
    first(root, ".//ans:guiasTISS/*[1]").append(copy_)


def _as_ds_signature(root: etree._Element) -> None:
    signature_of(root).tag = DS_SIGNATURE


@pytest.mark.parametrize(("change", "says"), [
    (_move_into_cabecalho, "fora do lugar"), (_move_before_hash, "fora do lugar"),
    (_as_ds_signature, "esperado ans:Signature"),
    (_duplicate, "2 assinaturas"), (_duplicate_hidden, "2 assinaturas"),
])
def test_misplaced_or_duplicated_signature(good: bytes, ca: pki.Authority, change, says: str) -> None:
    with pytest.raises(SignatureError) as caught:
        xmldsig.verify(read(edit(good, change)).root, ca.cert_pem)
    assert caught.value.codigo == xmldsig.ASSINATURA_NAO_CONFERE
    assert says in caught.value.mensagem


def test_certificate_from_another_authority_with_the_same_name(good: bytes, stranger: pki.Authority,
                                                               ca: pki.Authority) -> None:
    assert stranger.certificate.subject == ca.certificate.subject
    assert code_of(good, stranger.cert_pem) == xmldsig.CADEIA_INVALIDA


def test_signer_certificate_issued_by_an_untrusted_authority(ca: pki.Authority,
                                                             stranger: pki.Authority) -> None:
    intruder = stranger.issue("INTRUSO", cnpj=CNPJ, key_size=1024)
    assert code_of(signed(lote(), intruder), ca.cert_pem) == xmldsig.CADEIA_INVALIDA


def test_expired_certificate(expired: pki.Leaf, ca: pki.Authority) -> None:
    assert code_of(signed(lote(), expired), ca.cert_pem) == xmldsig.CERTIFICADO_VENCIDO


def test_validity_is_judged_at_now(good: bytes, ca: pki.Authority, leaf: pki.Leaf) -> None:
    root = read(good).root
    after = leaf.not_after + timedelta(seconds=1)
    assert xmldsig.verify(root, ca.cert_pem, now=leaf.not_after - timedelta(days=1)).documento == CNPJ
    assert code_of(good, ca.cert_pem, now=after) == xmldsig.CERTIFICADO_VENCIDO
    assert code_of(good, ca.cert_pem, now=after.replace(tzinfo=None)) == xmldsig.CERTIFICADO_VENCIDO
    before = leaf.certificate.not_valid_before_utc - timedelta(days=1)
    assert code_of(good, ca.cert_pem, now=before) == xmldsig.CERTIFICADO_INVALIDO


def test_revoked_certificate(good: bytes, ca: pki.Authority, leaf: pki.Leaf) -> None:
    serial = leaf.certificate.serial_number
    assert code_of(good, ca.cert_pem, revoked_serials={serial}) == xmldsig.CERTIFICADO_REVOGADO
    assert xmldsig.verify(read(good).root, ca.cert_pem, revoked_serials={serial + 1}).documento == CNPJ


def _x509_data(root: etree._Element) -> etree._Element:
    return first(root, ".//ds:X509Data")


def _drop_certificates(root: etree._Element) -> None:
    _x509_data(root).getparent().remove(_x509_data(root))


def _garble_certificate(root: etree._Element) -> None:
    first(root, ".//ds:X509Certificate").text = "TUlJQ0lqQU5CZ2txaGtpRzl3MEJBUUVGQUFPQ0FnOEFNSUlDQ2dLQ0FnRUE="


@pytest.mark.parametrize("change", [_drop_certificates, _garble_certificate])
def test_missing_or_unreadable_certificate(good: bytes, ca: pki.Authority, change) -> None:
    assert code_of(edit(good, change), ca.cert_pem) == xmldsig.CERTIFICADO_INVALIDO


def test_certificate_swapped_for_another_trusted_one(good: bytes, ca: pki.Authority,
                                                     other_leaf: pki.Leaf) -> None:
    body = b"".join(other_leaf.cert_pem.splitlines()[1:-1]).decode()

    def swap(root: etree._Element) -> None:
        first(root, ".//ds:X509Certificate").text = body

    assert code_of(edit(good, swap), ca.cert_pem) == xmldsig.ASSINATURA_NAO_CONFERE


def test_signed_with_the_authority_key_itself(ca: pki.Authority) -> None:
    data = signed(lote(), pki.Leaf(ca.key_pem, ca.cert_pem, [ca.cert_pem]))
    assert code_of(data, ca.cert_pem) == xmldsig.CERTIFICADO_INVALIDO


def test_certificate_not_meant_for_signing(ca: pki.Authority) -> None:
    encipher_only = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=True,
                                  data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                  crl_sign=False, encipher_only=False, decipher_only=False)
    cert = custom_leaf(ca, key_usage=encipher_only)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    data = signed(lote(), pki.Leaf(ca.key_pem, pem, [pem, ca.cert_pem]))
    assert code_of(data, ca.cert_pem) == xmldsig.CERTIFICADO_INVALIDO


# ------------------------------------------------------------------------------- chains and interop


def test_intermediate_authority_from_key_info_or_trusted(ca: pki.Authority, sub_ca: pki.Authority,
                                                         stranger: pki.Authority) -> None:
    final = sub_ca.issue("CLINICA FINAL", cnpj=CNPJ, key_size=1024)
    with_chain = signed(lote(), final)
    assert xmldsig.verify(read(with_chain).root, ca.cert_pem).documento == CNPJ  # sub AC from KeyInfo
    assert xmldsig.verify(read(with_chain).root, [stranger.cert_pem, sub_ca.cert_pem]).documento == CNPJ
    leaf_only = signed(lote(), pki.Leaf(final.key_pem, final.cert_pem, [final.cert_pem]))
    assert code_of(leaf_only, ca.cert_pem) == xmldsig.CADEIA_INVALIDA
    assert xmldsig.verify(read(leaf_only).root, ca.cert_pem + sub_ca.cert_pem).documento == CNPJ


def _sign_with_signxml(data: bytes, leaf: pki.Leaf, **kwargs) -> bytes:
    """Another sender's signature: signxml defaults (inclusive c14n 1.1), renamed to ans:Signature."""
    message = read(data)
    result = XMLSigner().sign(message.root, key=leaf.key_pem, cert=leaf.cert_pem.decode(), **kwargs)
    signature_of(result).tag = ANS_SIGNATURE
    return etree.tostring(result, encoding=message.encoding, xml_declaration=True)


def test_inclusive_c14n_signed_bare_verifies_inside_an_envelope(leaf: pki.Leaf, ca: pki.Authority) -> None:
    """The *WS is verified as its own document: the envelope's xmlns:soapenv must not enter the
    inclusive c14n (lxml's tostring of an element would copy it there)."""
    data = envelope(_sign_with_signxml(lote(), leaf))
    assert b"xml-c14n11" in data
    assert xmldsig.verify(read(data).root, ca.cert_pem).documento == CNPJ


def test_exclusive_c14n_lets_a_plain_verifier_check_it_in_the_envelope(good: bytes, leaf: pki.Leaf) -> None:
    """A third party that cuts the *WS out of the envelope keeps the inherited xmlns:soapenv; with
    exclusive c14n the digest does not see it."""
    plain = etree.fromstring(etree.tostring(read(good).root))
    assert "soapenv" in plain.nsmap
    signature_of(plain).tag = DS_SIGNATURE
    XMLVerifier().verify(plain, x509_cert=leaf.cert_pem.decode())


def test_signature_covering_only_part_of_the_message(leaf: pki.Leaf, ca: pki.Authority) -> None:
    def with_id(root: etree._Element) -> None:
        first(root, "ans:cabecalho").set("Id", "cab")

    data = _sign_with_signxml(edit(lote(), with_id), leaf, reference_uri="#cab")
    forged = edit(data, _set_carteira, restamp=True)  # outside the signed cabeçalho
    with pytest.raises(SignatureError) as caught:
        xmldsig.verify(read(forged).root, ca.cert_pem)
    assert caught.value.codigo == xmldsig.ASSINATURA_NAO_CONFERE
    assert "inteira" in caught.value.mensagem


# ------------------------------------------------------------------------------- codes


def test_codes_are_the_ans_table_38_signature_codes(registry: SchemaRegistry) -> None:
    wanted = {
        xmldsig.CERTIFICADO_INVALIDO: "CERTIFICADO DIGITAL INVÁLIDO",
        xmldsig.CERTIFICADO_VENCIDO: "CERTIFICADO DIGITAL VENCIDO",
        xmldsig.CERTIFICADO_REVOGADO: "CERTIFICADO DIGITAL REVOGADO",
        xmldsig.CADEIA_INVALIDA: "CADEIA DE CERTIFICAÇÃO INVÁLIDA",
        xmldsig.ASSINATURA_NAO_CONFERE: "ASSINATURA DIGITAL NÃO CONFERE",
    }
    assert {code: f.describe(code) for code in wanted} == wanted
    for version in VERSIONS:  # present in each version's own dm_tipoGlosa enumeration
        schema_set = registry.get(version)
        types = etree.parse(str(schema_set.directory / f"tissSimpleTypesV{schema_set.tag}.xsd"))
        codes = types.xpath("//xs:simpleType[@name='dm_tipoGlosa']//xs:enumeration/@value",
                            namespaces={"xs": "http://www.w3.org/2001/XMLSchema"})
        assert set(wanted) <= set(codes), version


def test_signature_error_as_finding(ca: pki.Authority) -> None:
    with pytest.raises(SignatureError) as caught:
        xmldsig.verify(read(lote()).root, ca.cert_pem)
    finding = caught.value.finding()
    assert (finding.code, finding.severity, finding.location) == ("5022", f.Severity.ERROR, "Signature")
    assert finding.message == caught.value.mensagem


def test_an_accented_name_longer_than_64_bytes_is_cut_by_bytes(ca: pki.Authority) -> None:
    """cryptography bounds a CN by UTF-8 bytes: a name of 64 characters with accents must still fit."""
    nome = "PASA - Plano de Assistência à Saúde do Aposentado da Vale Ltda"
    leaf = ca.issue(nome, cnpj="39419809000198")
    cn = leaf.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert len(cn.encode("utf-8")) <= 64 and cn.endswith(":39419809000198") and cn.startswith("PASA - Plano")
