"""The upload-file form: file names by the TISS rule and the *WS <-> mensagemTISS wrapping."""

import pytest
from lxml import etree

from gateway.message import arquivo, hashing, reader
from gateway.message.services import ANS_NS
from tests.factory import build_lote

NS = {"ans": ANS_NS}


def test_nome_pela_regra_dos_arquivos_reais() -> None:
    assert arquivo.nome_arquivo("18636", "0123456789abcdef0123456789ABCDEF") == \
        "00000000000000018636_0123456789ABCDEF0123456789ABCDEF.xml"
    assert arquivo.ler_nome("00000000000000018636_0123456789ABCDEF0123456789ABCDEF.xml") == \
        ("18636", "0123456789abcdef0123456789abcdef")


@pytest.mark.parametrize("sequencial, hash_", [("12a", "0" * 32), ("1" * 21, "0" * 32), ("1", "xyz")])
def test_nome_recusa_o_que_nao_cabe(sequencial: str, hash_: str) -> None:
    with pytest.raises(ValueError):
        arquivo.nome_arquivo(sequencial, hash_)


@pytest.mark.parametrize("nome", ["18636_" + "0" * 32 + ".xml", "0" * 20 + "_" + "0" * 31 + ".xml",
                                  "../" + "0" * 20 + "_" + "0" * 32 + ".xml"])
def test_ler_nome_fora_da_regra(nome: str) -> None:
    assert arquivo.ler_nome(nome) is None


def test_lote_vira_mensagem_tiss_sem_login_e_volta() -> None:
    ws = reader.read(build_lote("odonto", 3, numero_lote="77", sequencial="77")).root
    mensagem = arquivo.para_arquivo(ws)
    corpo = arquivo.escrever(mensagem, hashing.DECLARED, "ISO-8859-1")
    lido = reader.read(corpo)
    assert lido.kind == "mensagemTISS" and arquivo.transacao(lido.root) == "loteGuias"
    assert lido.root.find(".//ans:loginSenhaPrestador", NS) is None
    assert hashing.check(lido.root, lido.encoding, data=corpo).accepted
    volta = arquivo.para_ws(lido.root)
    assert etree.QName(volta).localname == "loteGuiasWS"
    guias = ".//ans:guiasTISS/ans:guiaOdonto"
    assert len(ws.findall(guias, NS)) == 3
    assert [g.findtext("ans:numeroGuiaPrestador", namespaces=NS) for g in volta.findall(guias, NS)] == \
        [g.findtext("ans:numeroGuiaPrestador", namespaces=NS) for g in ws.findall(guias, NS)]
    assert volta.find("ans:cabecalho/ans:loginSenhaPrestador", NS) is None


def test_transacao_sem_forma_de_arquivo() -> None:
    root = etree.Element(f"{{{ANS_NS}}}cancelaGuiaWS")
    with pytest.raises(arquivo.FormaDesconhecida):
        arquivo.para_arquivo(root)
