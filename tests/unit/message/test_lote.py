"""What the gateway keeps of a lote (gateway.message.lote): each guide's number, operator number,
card and value, for every guide type."""

import pytest
from lxml import etree

from gateway.message import lote, reader
from tests.factory import GUIDE_TYPES, build_lote


def _field_by_field(root: etree._Element) -> list[tuple]:
    guias = lote._GUIAS(root)
    kind = etree.QName(guias[0]).localname
    return [(lote._NUMERO_GUIA(g).strip(), lote._NUMERO_OPERADORA(g).strip() or None,
             lote._CARTEIRA(g).strip(), lote._VALOR[kind](g).strip()) for g in guias]


@pytest.mark.parametrize("guide_type", GUIDE_TYPES)
def test_guides_read_in_one_evaluation_match_the_fields_read_one_by_one(guide_type):
    message = reader.read(build_lote(guide_type, 12))
    lido = lote.read_lote(message.root)
    assert lido.tipo_guia == guide_type and len(lido.guias) == 12
    assert [(g.numero_guia_prestador, g.numero_guia_operadora, g.numero_carteira, str(g.valor_informado))
            for g in lido.guias] == _field_by_field(message.root)


def test_a_value_holding_the_separator_is_read_field_by_field():
    data = build_lote("sp-sadt", 2).replace(b"<ans:numeroCarteira>", b"<ans:numeroCarteira>&#57344;", 1)
    message = reader.read(data)
    guia = lote.read_lote(message.root).guias[0]
    assert guia.numero_carteira.startswith("\ue000") and len(guia.numero_carteira) > 1
    assert guia.valor_informado > 0
