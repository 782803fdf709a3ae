"""The upload-file channel (``canal = "arquivo"``): an operator reached through its portal.

Everything before delivery is the web service's (checks, the adapter's split, version, hash variant,
signature); then, instead of a post:

* :func:`entregar` (the worker): each prepared part becomes the ``mensagemTISS`` file the portal
  takes (``Adapter.arquivo``), named by the TISS rule, kept as the part's sent message with an
  ``arquivo`` row, and written whole to the operator's drop folder when it has one
  (:func:`escrever_na_pasta`). The part is then ``entregue`` with no operator protocol yet: it
  waits for a person to upload it, and nothing polls it (there is no web service to ask).
* :func:`registrar_protocolo` (the console): the protocol the portal gave for a part.
* :func:`registrar_retorno` (the console): what the portal gave back (a receipt with the protocol
  or its crítica, a situação do protocolo, a demonstrativo de análise de conta), validated (safe
  reader, schema, hash), refused with the reason unless it is about this lote, this provider and
  this operator, and written through the same rows the worker and the tracker write
  (``Entrega.numero_protocolo``/``status``/``situacao_id``, gateway.delivery.outcome,
  ``demonstrativo``): the status service, the console and the capa read it as for a web service.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from lxml import etree
from sqlalchemy import select, update
from sqlalchemy.orm import Session, defer, sessionmaker

from adapters.base import Adapter
from gateway.config import Operadora
from gateway.delivery import outcome, state
from gateway.delivery.client import padrao
from gateway.delivery.reading import Reading
from gateway.message import arquivo as forma
from gateway.message import hashing, reader, responses
from gateway.message.findings import error
from gateway.message.reader import MessageError, TissMessage
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, MENSAGEM_TISS
from gateway.message.situacao import read_situacao
from gateway.message.tables import RECEBIDO
from gateway.message.validation import validate_message
from gateway.storage import rows
from gateway.storage.models import Arquivo, Demonstrativo, Entrega, Lote, Mensagem, Protocolo

log = logging.getLogger("tiss_gateway.delivery")
_A = f"{{{ANS_NS}}}"
LOTE_GUIAS = "tissLoteGuias"
NUMERO_PROTOCOLO = re.compile(r"[0-9A-Za-z./-]{1,12}")  # st_texto12, as portals print them (PEG 48759)
# The web-service response each file form stands for, and the service it answers.
_SERVICO = {"protocoloRecebimentoWS": LOTE_GUIAS, "situacaoProtocoloWS": "tissSolicitacaoStatusProtocolo",
            "demonstrativoRetornoWS": "tissSolicitacaoDemonstrativoRetorno"}


class Recusa(ValueError):
    """What the clerk sent is not taken; the text says why (shown as is)."""


@dataclass(frozen=True)
class Parte:
    """A part of a lote that went as a file: its delivery and its file, as the console lists them."""

    arquivo_id: int
    entrega_id: int
    parte: int
    partes: int | None
    numero_lote: str | None
    nome: str
    tamanho: int
    estado: str
    numero_protocolo: str | None
    status: int | None
    criado_em: datetime
    na_pasta_em: datetime | None
    protocolo_em: datetime | None
    protocolo_por: str | None
    mensagem_id: int


# --- the worker ------------------------------------------------------------------------------------


def vai_por_arquivo(operadora: Operadora, servico: str) -> bool:
    """A lote to a file operator goes as a file; its other messages go by web service when it has one
    (a file-only operator cannot take them: :func:`entregar` says so)."""
    return operadora.por_arquivo and (servico == LOTE_GUIAS or not operadora.web_service)


def entregar(sessions: sessionmaker[Session], entrega_id: int, corpo_ws: bytes, adapter: Adapter,
             operadora: Operadora, worker: str, now: datetime) -> str:
    """The prepared part ``corpo_ws`` as its file; returns the outcome for the metrics."""
    try:
        if not corpo_ws.strip():
            raise ValueError("parte sem bytes preparados")
        corpo = adapter.arquivo(corpo_ws) if _servico(sessions, entrega_id) == LOTE_GUIAS else None
    except Exception as exc:  # a part the adapter made but cannot write as a file: a defect, shown
        log.exception("entrega %s: arquivo não gerado", entrega_id, extra={"entrega_id": entrega_id})
        return _recusar(sessions, entrega_id, worker, f"arquivo não gerado: {exc}")
    if corpo is None:
        return _recusar(sessions, entrega_id, worker, f"a operadora {operadora.nome} recebe por arquivo só "
                        "lotes de guias e não tem web service configurado para esta mensagem")
    message = reader.read(corpo)
    elemento = hashing.hash_element(message.root)
    hash_ = (elemento.text or "").strip() if elemento is not None else ""
    with sessions.begin() as session:
        entrega = session.get_one(Entrega, entrega_id, options=(defer(Entrega.corpo),))
        if not state.held_by(entrega, worker):
            return "perdida"
        nome = forma.nome_arquivo(entrega.sequencial or str(entrega.id), hash_)
        entrega.envio_id = rows.add_mensagem(session, dict(
            direcao="saida", servico=entrega.servico, tamanho=len(corpo), corpo=corpo, versao=message.version,
            hash=hash_.lower(), prestador_id=entrega.prestador_id, destinatario=entrega.registro_ans,
            sequencial_transacao=entrega.sequencial, resultado="aceita", request_id=entrega.request_id))
        state.delivered(entrega, now, None)  # to the clerk: no operator protocol until recorded
        entrega.senha_cifrada = None  # nothing will be posted
        row = Arquivo(entrega_id=entrega.id, lote_id=entrega.lote_id, mensagem_id=entrega.envio_id, nome=nome,
                      criado_em=now)
        session.add(row)
        session.flush()
        arquivo_id = row.id
    log.info("entrega %s gerada como arquivo %s: aguarda o envio pelo portal", entrega_id, nome,
             extra={"entrega_id": entrega_id, "operadora": operadora.registro_ans})
    if operadora.pasta_arquivos is not None:
        _na_pasta(sessions, arquivo_id, operadora.pasta_arquivos, nome, corpo, now)
    return "arquivo"


def _servico(sessions: sessionmaker[Session], entrega_id: int) -> str:
    with sessions() as session:
        return session.scalars(select(Entrega.servico).where(Entrega.id == entrega_id)).one()


def _recusar(sessions: sessionmaker[Session], entrega_id: int, worker: str, motivo: str) -> str:
    with sessions.begin() as session:
        entrega = session.get_one(Entrega, entrega_id, options=(defer(Entrega.corpo),))
        if not state.held_by(entrega, worker):
            return "perdida"
        state.refused(entrega, motivo, attempted=False)
    return "recusada"


def _na_pasta(sessions: sessionmaker[Session], arquivo_id: int, pasta: Path, nome: str, corpo: bytes,
              now: datetime) -> None:
    """The file in the drop folder; a failure is logged (the file stays downloadable in the console)."""
    try:
        escrever_na_pasta(pasta, nome, corpo)
    except OSError as exc:
        log.error("arquivo %s não gravado na pasta %s: %s", nome, pasta, exc)
        return
    with sessions.begin() as session:
        session.execute(update(Arquivo).where(Arquivo.id == arquivo_id).values(na_pasta_em=now))


def escrever_na_pasta(pasta: Path, nome: str, corpo: bytes) -> Path:
    """``corpo`` as ``pasta/nome``, atomically: written to a hidden temporary name in the same folder,
    flushed to disk, then renamed over the final name (one ``rename``: a reader of the folder sees no
    file or the whole file, never part of one; the folder's entry is flushed too)."""
    if "/" in nome or nome.startswith("."):
        raise ValueError(f"nome de arquivo inválido: {nome!r}")
    final = pasta / nome
    fd, temporario = tempfile.mkstemp(prefix=f".{nome}.", suffix=".parcial", dir=pasta)
    try:
        with os.fdopen(fd, "wb") as saida:
            saida.write(corpo)
            saida.flush()
            os.fsync(saida.fileno())
        os.chmod(temporario, 0o640)
        os.replace(temporario, final)
    except BaseException:
        Path(temporario).unlink(missing_ok=True)
        raise
    pasta_fd = os.open(pasta, os.O_RDONLY)
    try:
        os.fsync(pasta_fd)
    finally:
        os.close(pasta_fd)
    return final


# --- the console: what the lote's files are --------------------------------------------------------


def partes(session: Session, lote_id: int) -> list[Parte]:
    """The lote's parts that went as files, in order."""
    found = session.execute(  # the file's size from its message row: its bytes are not read here
        select(Arquivo, Entrega.parte, Entrega.partes, Entrega.numero_lote, Entrega.estado,
               Entrega.numero_protocolo, Entrega.status, Mensagem.tamanho)
        .join(Entrega, Entrega.id == Arquivo.entrega_id).join(Mensagem, Mensagem.id == Arquivo.mensagem_id)
        .where(Arquivo.lote_id == lote_id).order_by(Entrega.parte)).all()
    return [Parte(a.id, a.entrega_id, parte, total, numero_lote, a.nome, tamanho, estado, numero, status,
                  a.criado_em, a.na_pasta_em, a.protocolo_em, a.protocolo_por, a.mensagem_id)
            for a, parte, total, numero_lote, estado, numero, status, tamanho in found]


# --- the console: what the clerk records -----------------------------------------------------------


def registrar_protocolo(session: Session, lote_id: int, arquivo_id: int, numero: str, quem: str,
                        now: datetime) -> None:
    """The protocol the portal gave for one part of the lote."""
    found = session.get(Arquivo, arquivo_id)
    if found is None or found.lote_id != lote_id:
        raise Recusa("Arquivo não encontrado neste lote.")
    numero = numero.strip()
    if not NUMERO_PROTOCOLO.fullmatch(numero):
        raise Recusa("Protocolo inválido: de 1 a 12 letras ou dígitos (pode ter . / -), como o portal o "
                     "mostra.")
    entrega = session.get_one(Entrega, found.entrega_id)
    if entrega.estado != state.State.ENTREGUE:
        raise Recusa(f"Esta parte está {entrega.estado}: não recebe protocolo.")
    if entrega.situacao_id is not None and entrega.numero_protocolo not in (None, numero):
        raise Recusa(f"Esta parte já tem o protocolo {entrega.numero_protocolo} com situação informada.")
    _protocolo(session, entrega, numero, now)
    found.protocolo_em, found.protocolo_por = now, quem[:100]


def _protocolo(session: Session, entrega: Entrega, numero: str, now: datetime) -> None:
    """What a receipt from the web service writes (gateway.delivery.worker), without the polling."""
    entrega.numero_protocolo = numero
    if entrega.status is None:
        entrega.status, entrega.status_em = RECEBIDO, now
    if entrega.protocolo_id is not None:
        if (entrega.partes or 1) == 1:
            session.get_one(Protocolo, entrega.protocolo_id).numero_operadora = numero
        outcome.atualizar_protocolo(session, entrega.protocolo_id, entrega.registro_ans, now)


def registrar_retorno(session: Session, lote: Lote, documento: str, codigo: str | None, dados: bytes,
                      registry: SchemaRegistry, now: datetime,
                      max_bytes: int = reader.DEFAULT_MAX_BYTES) -> str:
    """What the portal gave back for ``lote`` (of the provider with ``documento``, ``codigo`` at the
    operator); returns what was recorded, in Portuguese. Raises :class:`Recusa` with the reason for a
    file that is unreadable, invalid or about another lote, provider or operator: then nothing is
    written."""
    try:
        message = reader.read(dados, max_bytes)
    except MessageError as exc:
        raise Recusa(f"Arquivo ilegível: {exc.finding.message}") from None
    report = validate_message(message, registry=registry, policy=hashing.LENIENT)
    if not report.valid:
        first = report.findings[0]
        raise Recusa(f"Arquivo inválido: [{first.code}] {first.message}")
    ws = _ws(message)
    _pertence(ws, lote, documento, codigo)
    kind = etree.QName(ws).localname
    lidas = _partes_do_lote(session, lote.id)
    elemento = hashing.hash_element(message.root)
    upload_id = rows.add_mensagem(session, dict(
        direcao="entrada", servico=_SERVICO[kind], tamanho=len(dados), corpo=dados, versao=message.version,
        prestador_id=lote.prestador_id, remetente=lote.registro_ans, resultado="aceita",
        hash=((elemento.text if elemento is not None else None) or "").strip().lower()[:32] or None,
        sequencial_transacao=(ws.findtext(f"{_A}cabecalho/{_A}identificacaoTransacao/{_A}sequencialTransacao")
                              or "").strip()[:20] or None))
    ws_message = replace(message, root=ws, kind=kind)
    if kind == "protocoloRecebimentoWS":
        return _recibo(session, ws_message, lidas, upload_id, lote, now)
    if kind == "situacaoProtocoloWS":
        return _situacao(session, ws_message, lidas, upload_id, now)
    return _demonstrativo(session, ws_message, lidas, upload_id, lote, now)


def _ws(message: TissMessage) -> etree._Element:
    """The web-service form of a return (a portal's mensagemTISS, or the *WS itself)."""
    if message.kind == MENSAGEM_TISS:
        if message.root.find(f"{_A}{forma.OPERADORA}") is None:
            raise Recusa("O arquivo é do prestador para a operadora, não um retorno da operadora.")
        try:
            return forma.para_ws(message.root)
        except forma.FormaDesconhecida as exc:
            raise Recusa(f"Retorno não lido pelo gateway: {exc}.") from None
    if message.kind in _SERVICO:
        return message.root
    raise Recusa(f"{message.kind} não é um retorno da operadora que o gateway leia (recibo do lote, situação "
                 "do protocolo ou demonstrativo).")


def _pertence(ws: etree._Element, lote: Lote, documento: str, codigo: str | None) -> None:
    """The file comes from the lote's operator and is addressed to the lote's provider."""
    cab = f"{_A}cabecalho/"
    origem = (ws.findtext(f"{cab}{_A}origem/{_A}registroANS") or "").strip()
    if origem != lote.registro_ans:
        raise Recusa(f"O arquivo é da operadora {origem or '(não identificada)'}; este lote foi para a "
                     f"operadora {lote.registro_ans}.")
    destino = ws.find(f"{cab}{_A}destino/{_A}identificacaoPrestador")
    valores = {etree.QName(c).localname: (c.text or "").strip() for c in destino} \
        if destino is not None else {}
    nome = next((n for n in ("CNPJ", "CPF", "codigoPrestadorNaOperadora") if valores.get(n)), None)
    esperado = codigo if nome == "codigoPrestadorNaOperadora" else documento
    if nome is None or valores[nome] != esperado:
        para = valores.get(nome or "", "(não identificado)")
        raise Recusa(f"O arquivo é para o prestador {para}, não para o prestador deste lote.")


def _partes_do_lote(session: Session, lote_id: int) -> list[Entrega]:
    return list(session.scalars(select(Entrega).join(Arquivo, Arquivo.entrega_id == Entrega.id)
                                .where(Arquivo.lote_id == lote_id).order_by(Entrega.parte)))


def _parte(lidas: Sequence[Entrega], numero_protocolo: str | None, numero_lote: str | None) -> Entrega:
    for entrega in lidas:
        if numero_protocolo and entrega.numero_protocolo == numero_protocolo:
            return entrega
    for entrega in lidas:
        if numero_lote and entrega.numero_lote == numero_lote:
            return entrega
    nomes = ", ".join(e.numero_lote or "?" for e in lidas) or "nenhuma"
    raise Recusa(f"O arquivo é do protocolo {numero_protocolo or '-'} / lote {numero_lote or '-'}, que não é "
                 f"nenhuma parte deste lote (partes: {nomes}).")


def _recibo(session: Session, message: TissMessage, lidas: Sequence[Entrega], upload_id: int, lote: Lote,
            now: datetime) -> str:
    """The portal's receipt: the part's protocol (and the guides it left out), or its crítica."""
    recebimento = message.root.find(f"{_A}recebimentoLote")
    erro = recebimento.find(f"{_A}mensagemErro") if recebimento is not None else None
    if erro is not None:
        aguardando = [e for e in lidas if e.estado == state.State.ENTREGUE and e.numero_protocolo is None]
        if len(aguardando) != 1:
            raise Recusa("A recusa do portal não diz de que parte é, e este lote não tem exatamente uma "
                         "parte aguardando protocolo.")
        entrega = aguardando[0]
        critica = error((erro.findtext(f"{_A}codigoGlosa") or "").strip() or None,
                        (erro.findtext(f"{_A}descricaoGlosa") or "").strip() or "recusada pela operadora")
        entrega.resposta_id = upload_id
        state.refused(entrega, f"[{critica.code}] {critica.message}")
        rows.add_criticas(session, upload_id, [critica], lote_id=lote.id)
        reading = Reading("recusada", critica.message, message, criticas=[critica])
        outcome.registrar(session, entrega, reading, now)
        return f"Recusa da parte {entrega.numero_lote} registrada: [{critica.code}] {critica.message}"
    numero = (message.root.findtext(f".//{_A}numeroProtocolo") or "").strip()
    numero_lote = (message.root.findtext(f".//{_A}numeroLote") or "").strip()
    entrega = _parte(lidas, None, numero_lote)
    if entrega.estado != state.State.ENTREGUE:
        raise Recusa(f"A parte {entrega.numero_lote} está {entrega.estado}: o recibo não se aplica.")
    entrega.resposta_id = upload_id
    _protocolo(session, entrega, numero, now)
    outcome.registrar(session, entrega, Reading("entregue", "", message, numero_protocolo=numero), now)
    return f"Recibo da parte {entrega.numero_lote} registrado: protocolo {numero}."


def _situacao(session: Session, message: TissMessage, lidas: Sequence[Entrega], upload_id: int,
              now: datetime) -> str:
    lida = read_situacao(message.root)
    detalhe = message.root.find(f".//{_A}detalheLote")
    if lida is None or detalhe is None:
        raise Recusa("A situação do protocolo não traz o lote (detalheLote).")
    entrega = _parte(lidas, lida.numero_protocolo, (detalhe.findtext(f"{_A}numeroLote") or "").strip())
    stored = responses.envelope(message.root, message.encoding)
    _com_situacao(session, entrega, lida.numero_protocolo, lida.status, stored, upload_id, now)
    return f"Situação da parte {entrega.numero_lote} registrada (protocolo {lida.numero_protocolo})."


def _com_situacao(session: Session, entrega: Entrega, numero: str, status: int | None, corpo: bytes | None,
                  upload_id: int, now: datetime) -> None:
    """A part's situação, written as the tracker writes an answer (its web-service form, when there
    is one to keep: the status service reads the guides' values from it)."""
    if entrega.estado != state.State.ENTREGUE:
        raise Recusa(f"A parte {entrega.numero_lote} está {entrega.estado}: a situação não se aplica.")
    if entrega.numero_protocolo != numero:
        _protocolo(session, entrega, numero, now)
    if corpo is not None:
        entrega.situacao_id = rows.add_mensagem(session, dict(
            direcao="entrada", servico="tissSolicitacaoStatusProtocolo", tamanho=len(corpo), corpo=corpo,
            versao=padrao(corpo), prestador_id=entrega.prestador_id, remetente=entrega.registro_ans,
            resultado="aceita", resposta_de_id=upload_id))
        rows.bump_versao(session, entrega.protocolo_id)
    if status is not None:
        entrega.status, entrega.status_em = status, now
    if entrega.protocolo_id is not None:
        outcome.atualizar_protocolo(session, entrega.protocolo_id, entrega.registro_ans, now)


def _demonstrativo(session: Session, message: TissMessage, lidas: Sequence[Entrega], upload_id: int,
                   lote: Lote, now: datetime) -> str:
    """A demonstrativo de análise de conta: kept as a demonstrativo of the lote's protocol, and each
    protocol of this lote it covers gives its part's situação (status, each guide's values and glosas)."""
    retorno = message.root.find(f"{_A}demonstrativoRetorno")
    erro = retorno.find(f"{_A}mensagemErro") if retorno is not None else None
    if erro is not None:
        raise Recusa(f"O demonstrativo traz só a recusa da operadora: [{erro.findtext(f'{_A}codigoGlosa')}] "
                     f"{erro.findtext(f'{_A}descricaoGlosa')}")
    entradas = message.root.findall(f"{_A}demonstrativoRetorno/{_A}demonstrativoAnaliseConta/{_A}dadosConta/"
                                    f"{_A}dadosProtocolo")
    if not entradas:
        raise Recusa("Só o demonstrativo de análise de conta é lido por arquivo (pagamento: ainda não).")
    casadas = [(e, _parte(lidas, _texto(e, "numeroProtocolo"), _texto(e, "numeroLotePrestador")))
               for e in entradas]
    ws = responses.envelope(message.root, message.encoding)  # the form the console's pages read
    ws_id = rows.add_mensagem(session, dict(
        direcao="entrada", servico=_SERVICO["demonstrativoRetornoWS"], tamanho=len(ws), corpo=ws,
        versao=message.version, prestador_id=lote.prestador_id, remetente=lote.registro_ans,
        resultado="aceita", resposta_de_id=upload_id))
    for entrada, entrega in casadas:
        numero = _texto(entrada, "numeroProtocolo") or ""
        session.add(Demonstrativo(prestador_id=lote.prestador_id, registro_ans=lote.registro_ans, tipo="2",
                                  protocolo_id=lote.protocolo_id, numero_protocolo=numero, mensagem_id=ws_id,
                                  obtido_em=now))
        status = _inteiro(_texto(entrada, "situacaoProtocolo"))
        corpo = _situacao_do_demonstrativo(session, entrega, entrada, lote, status, now) \
            if entrada.find(f"{_A}relacaoGuias") is not None else None
        _com_situacao(session, entrega, numero, status, corpo, upload_id, now)
    return f"Demonstrativo de análise registrado: {len(casadas)} protocolo(s) deste lote."


def _situacao_do_demonstrativo(session: Session, entrega: Entrega, entrada: etree._Element, lote: Lote,
                               status: int | None, now: datetime) -> bytes:
    """The situacaoProtocoloWS the operator's web service would answer for what the demonstrativo
    says of one protocol (its status, each guide's values and glosa motives), in the part's version
    and encoding, from the part's own cabeçalho."""
    [(corpo,)] = session.execute(select(Entrega.corpo).where(Entrega.id == entrega.id)).all()
    if not corpo:  # emptied by `prune` once its status was final (gateway.storage.retention)
        raise Recusa(f"A parte {entrega.numero_lote} já tem situação final e seu conteúdo foi removido pela "
                     "retenção: o demonstrativo não pode mais ser lido para ela.")
    parte = reader.read(corpo)
    ctx = responses.reply_context(parte.root, registro_ans=lote.registro_ans,
                                  sequencial=str(entrega.id)[-12:], now=now)
    guias = [_guia(g, lote.tipo_guia == "odonto") for g in entrada.iterfind(f"{_A}relacaoGuias")]
    total = responses.ValorTotal(*(_decimal(entrada, f"valor{n}Protocolo") for n in ("Processado", "Glosa",
                                                                                      "Liberado")))
    root = responses.situacao_protocolo(
        ctx, numero_protocolo=_texto(entrada, "numeroProtocolo") or "", numero_lote=entrega.numero_lote or "",
        status=status or RECEBIDO, data_envio_lote=_data(_texto(entrada, "dataProtocolo")) or now.date(),
        valor_total=total, guias=guias)
    return responses.envelope(root, parte.encoding)


def _guia(relacao: etree._Element, odonto: bool) -> responses.GuiaRecebida:
    glosas = tuple(((m.findtext(f"{_A}codigoGlosa") or "").strip(), m.findtext(f"{_A}descricaoGlosa"))
                   for m in relacao.iterfind(f"{_A}motivoGlosaGuia"))
    return responses.GuiaRecebida(
        numero_guia_prestador=_texto(relacao, "numeroGuiaPrestador") or "",
        numero_guia_operadora=_texto(relacao, "numeroGuiaOperadora"),
        numero_carteira=_texto(relacao, "numeroCarteira") or "",
        valor_informado=_decimal(relacao, "valorInformadoGuia"), odonto=odonto,
        valores=responses.ValorTotal(*(_decimal(relacao, f"valor{n}Guia") for n in ("Processado", "Glosa",
                                                                                    "Liberado"))),
        glosas=glosas)


def _texto(parent: etree._Element, name: str) -> str | None:
    return (parent.findtext(f"{_A}{name}") or "").strip() or None


def _decimal(parent: etree._Element, name: str) -> Decimal:
    try:
        return Decimal(_texto(parent, name) or "0")
    except InvalidOperation:
        raise Recusa(f"{name} não é um número no demonstrativo.") from None


def _inteiro(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _data(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


__all__ = ["Parte", "Recusa", "entregar", "escrever_na_pasta", "partes", "registrar_protocolo",
           "registrar_retorno", "vai_por_arquivo"]
