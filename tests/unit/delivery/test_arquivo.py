"""The drop folder: a file is only ever seen whole under its final name; one that cannot be
written leaves the file downloadable, its row saying it is not in the folder."""

import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from gateway.delivery import arquivo
from gateway.delivery.arquivo import escrever_na_pasta
from gateway.storage.db import session_factory
from gateway.storage.models import Arquivo, Entrega, Mensagem, Prestador

NOME = "00000000000000018636_0123456789ABCDEF0123456789ABCDEF.xml"


def test_leitor_da_pasta_nunca_ve_arquivo_pela_metade(tmp_path: Path) -> None:
    corpos = [bytes([65 + n]) * (3 * 1024 * 1024) for n in range(6)]  # 3 MiB each: many write() calls
    vistos: list[bytes] = []
    parar = threading.Event()

    def ler() -> None:  # what a portal robot polling the folder does
        while not parar.is_set():
            for entrada in os.scandir(tmp_path):
                if entrada.name.endswith(".xml") and not entrada.name.startswith("."):
                    vistos.append(Path(entrada.path).read_bytes())

    leitor = threading.Thread(target=ler)
    leitor.start()
    try:
        for corpo in corpos:
            escrever_na_pasta(tmp_path, NOME, corpo)
    finally:
        parar.set()
        leitor.join()
    assert vistos, "o leitor não viu nenhum arquivo"
    assert all(v in corpos for v in vistos)  # whole files only: one of those written, never a prefix
    assert [p.name for p in tmp_path.iterdir()] == [NOME]  # no temporary left
    assert (tmp_path / NOME).read_bytes() == corpos[-1]


def test_falha_nao_deixa_temporario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def falha(*_args: object) -> None:
        raise OSError("disco cheio")

    monkeypatch.setattr(os, "replace", falha)
    with pytest.raises(OSError):
        escrever_na_pasta(tmp_path, NOME, b"<x/>")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("nome", ["../fora.xml", ".oculto.xml"])
def test_nome_que_sairia_da_pasta(tmp_path: Path, nome: str) -> None:
    with pytest.raises(ValueError):
        escrever_na_pasta(tmp_path, nome, b"<x/>")


def _arquivo(engine: Engine) -> int:
    """An Arquivo row with its delivery and message, as the worker leaves them."""
    with session_factory(engine).begin() as session:
        prestador = Prestador(documento="11222333000181", tipo_documento="CNPJ", nome="Clínica", login="demo")
        session.add(prestador)
        session.flush()
        mensagem = Mensagem(direcao="saida", servico="tissLoteGuias", versao="4.03.00", tamanho=4,
                            corpo=b"<x/>", prestador_id=prestador.id, resultado="aceita")
        session.add(mensagem)
        session.flush()
        entrega = Entrega(registro_ans="413534", servico="tissLoteGuias", prestador_id=prestador.id,
                          mensagem_id=mensagem.id, estado="entregue", corpo=b"<x/>")
        session.add(entrega)
        session.flush()
        row = Arquivo(entrega_id=entrega.id, mensagem_id=mensagem.id, nome=NOME)
        session.add(row)
        session.flush()
        return row.id


def _na_pasta_em(engine: Engine, arquivo_id: int) -> datetime | None:
    with engine.connect() as connection:
        return connection.execute(select(Arquivo.na_pasta_em).where(Arquivo.id == arquivo_id)).scalar_one()


def test_pasta_gravada_fica_registrada(db_engine: Engine, tmp_path: Path) -> None:
    arquivo_id, now = _arquivo(db_engine), datetime(2026, 12, 7, 12, tzinfo=UTC)
    arquivo._na_pasta(session_factory(db_engine), arquivo_id, tmp_path, NOME, b"<x/>", now)
    assert (tmp_path / NOME).read_bytes() == b"<x/>" and _na_pasta_em(db_engine, arquivo_id) == now


def test_pasta_que_falha_e_registrada_no_log_sem_derrubar_a_entrega(
        db_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    arquivo_id, sumida = _arquivo(db_engine), tmp_path / "sumida"  # removed after the config was read
    with caplog.at_level(logging.ERROR, logger="tiss_gateway.delivery"):
        arquivo._na_pasta(session_factory(db_engine), arquivo_id, sumida, NOME, b"<x/>", datetime.now(UTC))
    assert _na_pasta_em(db_engine, arquivo_id) is None  # the console's "Na pasta" stays empty
    assert any(NOME in r.getMessage() and str(sumida) in r.getMessage() for r in caplog.records)
