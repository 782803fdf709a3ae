"""The console's side of the upload-file channel (gateway.delivery.arquivo): a lote's files to
download (one, or a zip of its parts), the protocol the portal gave for each part, and the upload of
what the portal gave back.

Every user who sees the lote may act on it (the provider's own clerk uploads in the portal); every
download and record is audited. A return that is not about the lote is refused with the reason and
nothing is written.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.console import auth, queries
from gateway.console.web import PREFIX, Request, Response, attachment, redirect
from gateway.delivery import arquivo
from gateway.message.schema_registry import SchemaRegistry
from gateway.storage import rows
from gateway.storage.auditoria import auditar
from gateway.storage.models import Lote, Prestador, PrestadorCodigo

Erro = Callable[[Request, auth.Escopo, str, str], Response]


def _lote(session: Session, escopo: auth.Escopo, lote_id: int) -> Lote | None:
    row = queries.lote(session, lote_id, escopo_prestador=escopo.prestador_id)
    return row[0] if row is not None else None


def _voltar(lote_id: int, **query: str) -> Response:
    return redirect(f"{PREFIX}/lotes/{lote_id}?{urlencode(query)}#arquivos")


def baixar(sessions: sessionmaker[Session], request: Request, escopo: auth.Escopo, lote_id: int,
           arquivo_id: int | None, now: datetime) -> Response | None:
    """One part's file (``arquivo_id``) or a zip of every part's; None: not found for this user."""
    with sessions.begin() as session:
        lote = _lote(session, escopo, lote_id)
        partes = arquivo.partes(session, lote_id) if lote is not None else []
        if arquivo_id is not None:
            partes = [p for p in partes if p.arquivo_id == arquivo_id]
        if lote is None or not partes:
            return None
        corpos = rows.corpos(session, [p.mensagem_id for p in partes])
        if any(not corpos.get(p.mensagem_id) for p in partes):
            return Response("410 Gone", "O arquivo não está mais armazenado.".encode(),
                            "text/plain; charset=utf-8")
        numero_lote = lote.numero_lote  # read now: the objects expire at the commit
        auditar(session, escopo.login, "console_arquivo",
                f"lote {lote.numero_lote} (operadora {lote.registro_ans}): "
                f"{', '.join(p.nome for p in partes)}",
                request.endereco, now)
    if arquivo_id is not None:
        return attachment(corpos[partes[0].mensagem_id], partes[0].nome, "application/xml")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for parte in partes:
            zipped.writestr(parte.nome, corpos[parte.mensagem_id])
    return attachment(buffer.getvalue(), f"lote-{numero_lote}-arquivos.zip", "application/zip")


def protocolo(sessions: sessionmaker[Session], request: Request, escopo: auth.Escopo, lote_id: int,
              arquivo_id: int, now: datetime) -> Response | None:
    """The portal's protocol for one part, as the clerk typed it."""
    numero = request.form.get("protocolo", "")
    with sessions.begin() as session:
        lote = _lote(session, escopo, lote_id)
        if lote is None:
            return None
        try:
            arquivo.registrar_protocolo(session, lote_id, arquivo_id, numero, escopo.login, now)
        except arquivo.Recusa as exc:
            session.rollback()
            return _voltar(lote_id, erro_arquivo=str(exc))
        auditar(session, escopo.login, "console_protocolo_portal",
                f"lote {lote.numero_lote} arquivo {arquivo_id}: protocolo {numero.strip()}",
                request.endereco, now)
    return _voltar(lote_id, registrado=f"Protocolo {numero.strip()} registrado.")


def retorno(sessions: sessionmaker[Session], registry: SchemaRegistry, request: Request, escopo: auth.Escopo,
            lote_id: int, now: datetime) -> Response | None:
    """What the portal gave back (a file field ``retorno``), validated and linked to the lote."""
    nome, dados = request.arquivos.get("retorno", ("", b""))
    with sessions.begin() as session:
        lote = _lote(session, escopo, lote_id)
        if lote is None:
            return None
        if not dados:
            return _voltar(lote_id, erro_arquivo="Escolha o arquivo XML que o portal devolveu.")
        documento, codigo = _prestador(session, lote)
        savepoint = session.begin_nested()
        try:
            feito = arquivo.registrar_retorno(session, lote, documento, codigo, dados, registry, now)
        except arquivo.Recusa as exc:
            savepoint.rollback()
            auditar(session, escopo.login, "console_retorno_recusado",
                    f"lote {lote.numero_lote}: {nome[:100]}: {exc}", request.endereco, now)
            return _voltar(lote_id, erro_arquivo=f"{nome[:100]}: {exc}")
        savepoint.commit()
        auditar(session, escopo.login, "console_retorno", f"lote {lote.numero_lote}: {nome[:100]}: {feito}",
                request.endereco, now)
    return _voltar(lote_id, registrado=feito)


def _prestador(session: Session, lote: Lote) -> tuple[str, str | None]:
    """The lote's provider: its CNPJ/CPF and its code at the lote's operator."""
    documento = session.get_one(Prestador, lote.prestador_id).documento
    codigo = session.scalars(select(PrestadorCodigo.codigo_na_operadora).where(
        PrestadorCodigo.prestador_id == lote.prestador_id,
        PrestadorCodigo.registro_ans == lote.registro_ans)).first()
    return documento, codigo


def contexto(session: Session, request: Request, lote_id: int) -> dict[str, Any]:
    """What the lote page shows of its files."""
    return dict(arquivos=arquivo.partes(session, lote_id),
                aviso_arquivo=request.query.get("registrado", "")[:500] or None,
                erro_arquivo=request.query.get("erro_arquivo", "")[:1000] or None)
