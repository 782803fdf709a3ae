"""senhaPrestador out of stored bytes (gateway.message.credencial): found in raw bytes whatever
the prefix, spacing or encoding; put back exactly; hostile input never raises nor hangs."""

import hashlib

import pytest

from gateway.message import credencial

SENHA = "fe01ce2a7fbac8fafaed7c982a04e229"  # MD5 of "demo"


def cabecalho(prefix: str = "ans:", senha: str = SENHA, encoding: str = "ISO-8859-1",
              extra: str = "") -> bytes:
    p = prefix
    text = (f'<?xml version="1.0" encoding="{encoding}"?>\n'
            f'<{p}loteGuiasWS xmlns{":" + p[:-1] if p else ""}="http://www.ans.gov.br/padroes/tiss/schemas">'
            f"<{p}cabecalho><{p}loginSenhaPrestador><{p}loginPrestador>demo</{p}loginPrestador>"
            f"<{p}senhaPrestador{extra}>{senha}</{p}senhaPrestador></{p}loginSenhaPrestador></{p}cabecalho>"
            f"<{p}observacao>Sérgio João</{p}observacao></{p}loteGuiasWS>")
    return text.encode(encoding)


@pytest.mark.parametrize("prefix", ["ans:", "", "tiss-4.03:", "a.b_c:"])
@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-8"])
def test_masked_same_length_and_restored_exactly(prefix: str, encoding: str) -> None:
    data = cabecalho(prefix, encoding=encoding)
    redaction = credencial.redact(data)
    assert SENHA.encode() not in redaction.corpo
    assert b"*" * 32 in redaction.corpo
    assert len(redaction.corpo) == len(data)
    assert redaction.sha256_original == hashlib.sha256(data).hexdigest()
    assert [s.original for s in redaction.spans] == [SENHA.encode()]
    assert credencial.restore(redaction.corpo, redaction.spans) == data
    assert credencial.unpack(credencial.pack(redaction.spans)) == redaction.spans
    assert "Sérgio João".encode(encoding) in redaction.corpo  # nothing else touched


def test_whitespace_attributes_entities_and_cdata_are_all_masked() -> None:
    for value, extra in (("  \n" + SENHA + "\t", ""), (SENHA, ' xml:lang="pt"'),
                         ("&#102;e01ce2a7fbac8fafaed7c982a04e229", ""), (f"<![CDATA[{SENHA}]]>", "")):
        data = cabecalho(senha=value, extra=extra)
        redaction = credencial.redact(data)
        assert SENHA.encode()[5:] not in redaction.corpo, value
        assert credencial.restore(redaction.corpo, redaction.spans) == data


def test_without_senha_the_bytes_are_the_same_object() -> None:
    data = b"<ans:situacaoProtocoloWS><ans:cabecalho/></ans:situacaoProtocoloWS>"
    redaction = credencial.redact(data)
    assert redaction.corpo is data and not redaction.removida and redaction.sha256_original is None
    for empty in (b"", b"<senhaPrestador/>", b"<senhaPrestador></senhaPrestador>",
                  b"<x:senhaPrestador a='1'/>"):
        assert not credencial.redact(empty).removida


def test_masked_again_changes_nothing() -> None:
    masked = credencial.redact(cabecalho()).corpo
    assert credencial.redact(masked).corpo is masked
    assert not credencial.find(masked)


def test_every_occurrence_comments_included() -> None:
    data = cabecalho().replace(b"<ans:cabecalho>", b"<!-- <ans:senhaPrestador>" + SENHA.encode()
                               + b"</ans:senhaPrestador> --><ans:cabecalho>")
    redaction = credencial.redact(data)
    assert SENHA.encode() not in redaction.corpo and len(redaction.spans) == 2
    assert credencial.restore(redaction.corpo, redaction.spans) == data


def test_without_an_end_tag_masked_up_to_the_next_tag() -> None:
    """A malformed or truncated body (refused, stored too) still loses its senha."""
    whole = cabecalho()
    cut = whole[:whole.index(SENHA.encode()) + len(SENHA)]  # cut right after the value
    mismatched = whole.replace(b"</ans:senhaPrestador>", b"</ans:senha>")
    for data in (cut, mismatched, mismatched + mismatched):
        redaction = credencial.redact(data)
        assert SENHA.encode() not in redaction.corpo and b"*" * 32 in redaction.corpo, data
        assert b"</ans:senha>" in redaction.corpo or data is cut
        assert credencial.restore(redaction.corpo, redaction.spans) == data


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-16", "utf-32-le", "utf-32-be"])
def test_wide_encodings_refused_at_the_door_are_masked_too(codec: str) -> None:
    data = cabecalho(encoding="UTF-8").decode("utf-8").encode(codec)
    redaction = credencial.redact(data)
    assert SENHA.encode(codec.replace("utf-16", "utf-16-le") if codec == "utf-16" else codec)[4:] \
        not in redaction.corpo
    assert "*" * 32 in redaction.corpo.decode(codec)
    assert redaction.corpo.decode(codec).replace("*" * 32, SENHA) == data.decode(codec)
    assert credencial.restore(redaction.corpo, redaction.spans) == data


def test_restore_refuses_spans_of_another_message() -> None:
    redaction = credencial.redact(cabecalho())
    with pytest.raises(ValueError):
        credencial.restore(cabecalho(), redaction.spans)  # not masked there
    with pytest.raises(ValueError):
        credencial.restore(b"<short/>", redaction.spans)
    with pytest.raises(ValueError):
        credencial.unpack(credencial.pack(redaction.spans)[:-3])


@pytest.mark.parametrize("hostile", [
    b"<senhaPrestador>" * 20_000,  # unclosed, many
    b"<senhaPrestador>x" + b"</senhaPrestadorX>" * 20_000,
    b"<senhaPrestador " + b"a" * 500_000,  # a start tag that never ends
    b"<senhaPrestador><senhaPrestador>abc</senhaPrestador></senhaPrestador>",
    b"</senhaPrestador>abc<senhaPrestador>",
    bytes(range(256)) * 200 + b"<senhaPrestador>\xff\xfe\x00</senhaPrestador>",
    b"\x00s\x00e\x00n\x00h\x00a\x00P\x00r\x00e\x00s\x00t\x00a\x00d\x00o\x00r",
])
def test_hostile_input_never_raises(hostile: bytes) -> None:
    redaction = credencial.redact(hostile)
    assert len(redaction.corpo) == len(hostile)
    assert credencial.restore(redaction.corpo, redaction.spans) == hostile


def test_a_large_message_with_many_elements() -> None:
    """Its senha masked, nothing else (the cost: a plain search for the name, not a regex at each
    "<"; measured in the report of issue 16 #3, not asserted here)."""
    filler = b"<ans:x>a</ans:x>" * 200_000 + b"<ans:x>" + b"a" * 5_000_000 + b"</ans:x></ans:loteGuiasWS>"
    data = cabecalho().replace(b"</ans:loteGuiasWS>", filler)
    redaction = credencial.redact(data)
    assert [s.original for s in redaction.spans] == [SENHA.encode()]
    assert redaction.corpo == data.replace(SENHA.encode(), b"*" * 32)


@pytest.mark.parametrize("prefix", ["não:", "x" * 300 + ":", "_:"])
def test_unusual_prefixes_and_the_name_outside_a_tag(prefix: str) -> None:
    data = cabecalho(prefix, encoding="UTF-8")
    assert SENHA.encode() not in credencial.redact(data).corpo
    for text in (b"senhaPrestador>" + SENHA.encode(), b"<:senhaPrestador>" + SENHA.encode() + b"</x>",
                 b"<a:senhaPrestador/>" + SENHA.encode(), b"</senhaPrestador>" + SENHA.encode()):
        assert not credencial.redact(text).removida, text
