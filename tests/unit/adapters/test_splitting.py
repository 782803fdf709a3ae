"""Lotes split into the parts each operator takes (adapters.splitting)."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from lxml import etree

from adapters import AdapterError, Destino
from adapters.pasa import Pasa
from adapters.splitting import numero_lote_parte
from gateway.message import hashing
from gateway.message.lote import read_lote
from gateway.message.schema_registry import SchemaRegistry
from tests.factory import (
    build_lote,
    numero_guia_prestador,
)
from tests.unit.adapters.support import (
    NS,
    VERSOES,
    adapter,
    check_part,
    codes,
    numeros,
    party,
    preparar,
    read,
)

# ------------------------------------------------------------------------------- splitting


@pytest.mark.parametrize("version", VERSOES)
def test_pasa_splits_250_guides_into_100_100_50(registry: SchemaRegistry, version: str) -> None:
    a = adapter(registry, "pasa", hash_variante="utf-8")
    data = build_lote("sp-sadt", 250, version=version, numero_lote="1002270", party=party("pasa"))
    message = read(data)
    assert a.criticas(message) == []
    envios = preparar(a, message)

    assert [len(e.guias) for e in envios] == [100, 100, 50]
    assert [e.numero_lote for e in envios] == ["1002270-1", "1002270-2", "1002270-3"]
    assert [e.sequencial for e in envios] == ["90001", "90002", "90003"]
    assert {e.servico for e in envios} == {"tissLoteGuias"} and {e.versao for e in envios} == {version}
    original = numeros(message)
    assert len(original) == 250
    assert list(itertools.chain.from_iterable(e.guias for e in envios)) == original
    total = Decimal("0.00")
    for envio in envios:
        part = check_part(envio, registry, "utf-8")
        lote = read_lote(part.root)
        assert lote.numero_lote == envio.numero_lote and lote.tipo_guia == "sp-sadt"
        assert [g.numero_guia_prestador for g in lote.guias] == list(envio.guias)
        total += lote.valor_informado
        # the hash really is the operator's variant: the strict (declared) rule refuses it
        assert not hashing.check(part.root, part.encoding, hashing.STRICT).accepted
        ident = part.root.find("ans:cabecalho/ans:identificacaoTransacao", NS)
        assert ident.findtext("ans:sequencialTransacao", namespaces=NS) == envio.sequencial
        assert ident.findtext("ans:dataRegistroTransacao", namespaces=NS) == "2026-01-20"
        assert ident.findtext("ans:horaRegistroTransacao", namespaces=NS) == "09:30:05"
        assert part.encoding.upper() == "ISO-8859-1"
    assert total == read_lote(message.root).valor_informado


def test_splitting_is_deterministic_and_leaves_the_message_alone(registry: SchemaRegistry) -> None:
    a = adapter(registry, "pasa")
    data = build_lote("consulta", 130, numero_lote="77", party=party("pasa"))
    message = read(data)
    before = etree.tostring(message.tree)
    first, second = preparar(a, message), preparar(a, read(data))
    assert first == second
    assert [e.numero_lote for e in first] == ["77-1", "77-2"]
    assert etree.tostring(message.tree) == before


def test_cassems_splits_120_into_50_50_20(registry: SchemaRegistry) -> None:
    a = adapter(registry, "cassems")
    message = read(build_lote("odonto", 120, numero_lote="5632", party=party("cassems")))
    assert a.criticas(message) == []
    envios = preparar(a, message)
    assert [len(e.guias) for e in envios] == [50, 50, 20]
    assert [e.numero_lote for e in envios] == ["5632-1", "5632-2", "5632-3"]
    assert list(itertools.chain.from_iterable(e.guias for e in envios)) == numeros(message)
    values = [read_lote(check_part(e, registry, hashing.DECLARED).root).valor_informado for e in envios]
    assert sum(values) == read_lote(message.root).valor_informado


@pytest.mark.parametrize(("name", "n"), [("pasa", 100), ("cassems", 50), ("unimed", 1), ("capitalprev", 7)])
def test_a_lote_within_the_limit_keeps_its_number(registry: SchemaRegistry, name: str, n: int) -> None:
    tipo = "odonto" if name == "cassems" else "consulta"
    message = read(build_lote(tipo, n, numero_lote="781500101296", party=party(name)))
    (envio,) = preparar(adapter(registry, name), message)
    assert envio.numero_lote == "781500101296" and len(envio.guias) == n
    check_part(envio, registry, hashing.DECLARED)


def test_operators_without_a_limit_still_cut_at_the_padrao_100(registry: SchemaRegistry) -> None:
    message = read(build_lote("consulta", 101, party=party("capitalprev")))
    envios = preparar(adapter(registry, "capitalprev"), message)
    assert [len(e.guias) for e in envios] == [100, 1]


def test_numero_lote_parte_scheme() -> None:
    assert numero_lote_parte("1002270", 1, 1) == "1002270"
    assert numero_lote_parte("1002270", 2, 3) == "1002270-2"
    assert numero_lote_parte("781500101296", 2, 2) == "1500101296-2"
    assert numero_lote_parte("781500101296", 1, 1) == "781500101296"
    parts = [numero_lote_parte("999999999999", i, 150) for i in range(1, 151)]
    assert len(set(parts)) == 150 and all(len(p) <= 12 for p in parts)


class PasaPequena(Pasa):
    max_bytes = 120_000


def test_pasa_splits_by_file_size_too(registry: SchemaRegistry) -> None:
    a = PasaPequena(Destino("331988", VERSOES), registry)
    message = read(build_lote("sp-sadt", 90, party=party("pasa")))
    assert len(message.data) > PasaPequena.max_bytes
    envios = preparar(a, message)
    assert len(envios) > 1
    assert all(len(e.corpo) <= PasaPequena.max_bytes for e in envios)
    assert list(itertools.chain.from_iterable(e.guias for e in envios)) == numeros(message)
    for envio in envios:
        check_part(envio, registry, hashing.DECLARED)


class PasaMinuscula(Pasa):
    max_bytes = 10_000


def test_a_guide_larger_than_the_file_limit_is_a_critica(registry: SchemaRegistry) -> None:
    a = PasaMinuscula(Destino("331988", VERSOES), registry)
    message = read(build_lote("resumo-internacao", 2, party=party("pasa")))
    found = a.criticas(message)
    assert codes(found) == ["3166"]
    assert numero_guia_prestador("1", 1) in found[0].message
    with pytest.raises(AdapterError):
        preparar(a, message)
