"""Version conversion and the *WS form a message is sent in (adapters.conversion)."""

from __future__ import annotations

import pytest

from adapters import AdapterError
from gateway.message import hashing
from gateway.message.responses import codigos_glosa
from gateway.message.schema_registry import SchemaRegistry
from tests.factory import (
    build_lote,
    build_mensagem_tiss,
    numero_guia_prestador,
)
from tests.unit.adapters.support import (
    NS,
    adapter,
    check_part,
    codes,
    numeros,
    party,
    preparar,
    read,
)


def test_mensagem_tiss_lote_is_sent_as_lote_guias_ws(registry: SchemaRegistry) -> None:
    message = read(build_mensagem_tiss("consulta", 60, numero_lote="42", party=party("cassems")))
    a = adapter(registry, "pasa")
    assert a.criticas(message) == []
    (envio,) = preparar(a, message)
    part = check_part(envio, registry, hashing.DECLARED)
    assert envio.servico == "tissLoteGuias" and envio.numero_lote == "42"
    assert numeros(part) == [numero_guia_prestador("42", i) for i in range(1, 61)]


def test_a_message_in_a_soap_envelope_is_sent_bare(registry: SchemaRegistry) -> None:
    message = read(build_lote("consulta", 3, envelope=True, party=party("pasa")))
    assert message.in_envelope
    (envio,) = preparar(adapter(registry, "pasa"), message)
    assert b"Envelope" not in envio.corpo
    check_part(envio, registry, hashing.DECLARED)


# ------------------------------------------------------------------------------- versions


def test_versao_destino(registry: SchemaRegistry) -> None:
    a = adapter(registry, "pasa", ("4.01.00", "4.02.00"))
    assert a.versao_destino("4.01.00") == "4.01.00"
    assert a.versao_destino("4.02.00") == "4.02.00"
    assert a.versao_destino("4.03.00") == "4.02.00"
    assert adapter(registry, "unimed", ("4.03.00",)).versao_destino("4.01.00") == "4.03.00"


@pytest.mark.parametrize("tipo", ["consulta", "sp-sadt", "odonto", "resumo-internacao"])
@pytest.mark.parametrize("origem", ["4.01.00", "4.02.00"])
def test_restamped_to_403_where_the_structures_are_equal(registry: SchemaRegistry, tipo: str,
                                                         origem: str) -> None:
    a = adapter(registry, "unimed", ("4.03.00",))
    message = read(build_lote(tipo, 4, version=origem, party=party("unimed")))
    assert a.criticas(message) == []
    (envio,) = preparar(a, message)
    assert envio.versao == "4.03.00"
    part = check_part(envio, registry, hashing.DECLARED)
    assert part.root.findtext("ans:cabecalho/ans:Padrao", namespaces=NS) == "4.03.00"
    assert numeros(part) == numeros(message)


def test_honorarios_402_to_403_lack_carater_atendimento(registry: SchemaRegistry) -> None:
    a = adapter(registry, "unimed", ("4.03.00",))
    message = read(build_lote("honorarios", 3, version="4.02.00", party=party("unimed")))
    found = a.criticas(message)
    assert codes(found) == ["5001"]  # one crítica for the element, naming every guide
    text = found[0].message
    assert "caraterAtendimento" in text and "dadosInternacao" in text
    assert "4.02.00" in text and "4.03.00" in text
    for i in (1, 2, 3):
        assert numero_guia_prestador("1", i) in text
    assert "dadosInternacao" in (found[0].location or "")
    assert set(codes(found)) <= codigos_glosa("4.02.00")
    with pytest.raises(AdapterError):
        preparar(a, message)


def test_honorarios_403_as_402_lose_nothing_required(registry: SchemaRegistry) -> None:
    a = adapter(registry, "ipasgo", ("4.02.00",))
    message = read(build_lote("honorarios", 2, version="4.03.00", party=party("ipasgo")))
    found = a.criticas(message)
    # caraterAtendimento does not exist in 4.02.00: downwards it is the element that is refused
    assert codes(found) == ["5001"] and "caraterAtendimento" in found[0].message
    assert "não existe na versão 4.02.00" in found[0].message


def test_optional_403_elements_are_refused_downwards(registry: SchemaRegistry) -> None:
    a = adapter(registry, "capitalprev", ("4.02.00",))
    message = read(build_lote("resumo-internacao", 2, version="4.03.00", party=party("capitalprev")))
    found = a.criticas(message)
    assert found and set(codes(found)) == {"5001"}
    assert all("centroConsumo" in x.message for x in found)


def test_a_target_version_not_installed_is_5028(registry: SchemaRegistry) -> None:
    a = adapter(registry, "pasa", ("4.04.00",))
    found = a.criticas(read(build_lote("consulta", 1, party=party("pasa"))))
    assert codes(found) == ["5028"] and "4.04.00" in found[0].message
