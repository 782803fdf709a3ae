"""``tiss-gateway entregas list|retry``, ``protocolo show NUMERO``, ``lote list``: the deliveries
and protocols as the people running the gateway see them. A lote's status, its guides accepted and
refused and its resubmissions are read as the console reads them (gateway.console.desfecho).
Only ``entregas retry`` writes (and migrates first); the others only read (gateway.cli.database)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.cli.database import FAILED, OK, database_options, with_session
from gateway.delivery.state import State  # no database import: cheap while the command line starts

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gateway.console.desfecho import Cadeia, Desfecho, Elo
    from gateway.delivery.status_names import StatusNames
    from gateway.storage.models import Entrega, Lote

NOT_FOUND = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    options = database_options()
    entregas = subparsers.add_parser("entregas", help="entregas às operadoras (fila, mortas, reenvio)")
    commands = entregas.add_subparsers(dest="entregas_command", required=True)
    listing = commands.add_parser("list", parents=[options], help="lista as entregas")
    listing.add_argument("--estado", choices=[s.value for s in State])
    listing.add_argument("--operadora", metavar="REGISTRO_ANS")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run_list)
    retry = commands.add_parser("retry", parents=[options],
                                help="devolve à fila entregas mortas (todas ou as indicadas)")
    retry.add_argument("ids", nargs="*", type=int, metavar="ID")
    retry.add_argument("--all", action="store_true", help="todas as mortas")
    retry.set_defaults(run=run_retry)

    protocolo = subparsers.add_parser("protocolo", help="protocolos do gateway")
    protocolo_commands = protocolo.add_subparsers(dest="protocolo_command", required=True)
    show = protocolo_commands.add_parser("show", parents=[options], help="um protocolo, suas partes e status")
    show.add_argument("numero")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=run_show)

    lote = subparsers.add_parser("lote", help="lotes recebidos")
    lote_commands = lote.add_subparsers(dest="lote_command", required=True)
    lotes = lote_commands.add_parser("list", parents=[options], help="lista os lotes")
    lotes.add_argument("--operadora", metavar="REGISTRO_ANS")
    lotes.add_argument("--limit", type=int, default=50)
    lotes.add_argument("--json", action="store_true")
    lotes.set_defaults(run=run_lotes)


def _with_session(args: argparse.Namespace, action: Callable[[Session], tuple[int, Any]], *,
                  write: bool) -> int:
    """Run ``action`` in a transaction (read-only unless ``write``); it returns the exit status and
    a text, or rows shown as a table (JSON with ``--json``)."""
    def show(result: tuple[int, Any]) -> int:
        code, output = result
        if getattr(args, "json", False) and not isinstance(output, str):
            print(json.dumps(output, ensure_ascii=False, indent=2, default=str))
        else:
            print(output if isinstance(output, str) else _table(output))
        return code

    return with_session(args, action, show, write=write)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "nada encontrado"
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k] if r[k] is not None else "-")) for r in rows)) for k in keys}
    lines = ["  ".join(k.ljust(widths[k]) for k in keys)]
    lines += ["  ".join(str(r[k] if r[k] is not None else "-").ljust(widths[k]) for k in keys) for r in rows]
    return "\n".join(lines)


def _entrega(e: Entrega) -> dict[str, Any]:
    return {"id": e.id, "operadora": e.registro_ans, "servico": e.servico, "estado": e.estado,
            "parte": f"{e.parte}/{e.partes or '?'}", "lote": e.numero_lote, "tentativas": e.tentativas,
            "protocolo_operadora": e.numero_protocolo, "status": e.status,
            "proxima": e.proxima_em.isoformat(timespec="seconds") if e.estado == State.PENDENTE else None,
            "erro": (e.ultimo_erro or "")[:80] or None,
            "incerto": (e.incerto or "")[:80] or None}  # an earlier send's outcome is unknown (leases)


def _status_names(args: argparse.Namespace) -> StatusNames:
    """The operators' own status names (from the configured adapters), shown beside the TISS ones.
    Read before the database is opened (adapters load slowly). None at all when the
    configuration is invalid (the command then reports it) or an adapter does not load."""
    from adapters.base import AdapterError
    from gateway.config import ConfigError, load_config
    from gateway.delivery.status_names import StatusNames
    from gateway.message.schema_registry import SchemaRegistry

    try:
        return StatusNames.from_config(load_config(args.config), SchemaRegistry())
    except ConfigError:
        return StatusNames({})
    except AdapterError as exc:
        print(f"aviso: nomes de status das operadoras indisponíveis: {exc}", file=sys.stderr)
        return StatusNames({})


def run_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from gateway.storage.models import Entrega

    def action(session: Session) -> tuple[int, Any]:
        query = select(Entrega).order_by(Entrega.id.desc()).limit(args.limit)
        if args.estado:
            query = query.where(Entrega.estado == args.estado)
        if args.operadora:
            query = query.where(Entrega.registro_ans == args.operadora)
        return OK, [_entrega(e) for e in session.scalars(query)]

    return _with_session(args, action, write=False)


def run_retry(args: argparse.Namespace) -> int:
    from gateway.delivery.outbox import retry_dead

    if not args.ids and not args.all:
        print("indique os IDs das entregas ou --all", file=sys.stderr)
        return FAILED

    def action(session: Session) -> tuple[int, Any]:
        count = retry_dead(session, None if args.all else args.ids)
        return (OK if count else NOT_FOUND), f"{count} entrega(s) de volta à fila"

    return _with_session(args, action, write=True)


def _status(names: StatusNames, registro: str, codigo: int) -> str:
    """"3 Liberado para pagamento (PASA: Faturado)"; "99 Recusado pela operadora"."""
    from gateway.message.tables import SITUACOES_PROTOCOLO

    return f"{codigo} {SITUACOES_PROTOCOLO.get(codigo, '')}{names.suffix(registro, codigo)}"


def _elo(elo: Elo | None) -> dict[str, Any] | None:
    if elo is None:
        return None
    return {"protocolo": elo.protocolo, "lote": elo.numero_lote,
            "recebido": elo.criado_em.isoformat(timespec="seconds"),
            "recusado_em": elo.recusado_em.isoformat(timespec="seconds") if elo.recusado_em else None}


def _desfecho(desfecho: Desfecho, cadeia: Cadeia) -> dict[str, Any]:
    """The lote's outcome: its crítica, guides accepted and refused (with theirs), resubmissions."""
    conta = desfecho.contagem
    return {"critica": str(desfecho.critica_do_lote) if desfecho.critica_do_lote else None,
            "guias_aceitas": conta.aceitas, "guias_recusadas": conta.recusadas,
            "guias_canceladas": conta.canceladas, "valor_aceito": str(conta.valor_aceito),
            "recusadas": [{"guia": g.numero_guia_prestador, "valor": str(g.valor_informado),
                           "critica": str(g.critica) if g.critica else None, "por": g.recusada_por}
                          for g in desfecho.recusadas],
            "reenvio_de": _elo(cadeia.anterior), "reenviado_como": _elo(cadeia.seguinte)}


def _guia_recusada(guia: dict[str, Any]) -> str:
    """"A3 (500.00) recusada pela operadora: 1311 ..."."""
    from gateway.console.desfecho import RECUSADA_POR

    por = f" {RECUSADA_POR[guia['por']]}" if guia["por"] else ""
    return f"{guia['guia']} ({guia['valor']}) recusada{por}: {guia['critica'] or '-'}"


def _texto_show(data: dict[str, Any]) -> str:
    listas = ("historico", "entregas", "recusadas", "reenvio_de", "reenviado_como")
    lines = [f"{k}: {v}" for k, v in data.items() if k not in listas and v is not None]
    for chave, rotulo in (("reenvio_de", "reenvio de"), ("reenviado_como", "reenviado como")):
        elo = data.get(chave)
        if elo:
            recusado = f", recusado pela operadora em {elo['recusado_em']}" if elo["recusado_em"] else ""
            lines.append(f"{rotulo}: protocolo {elo['protocolo']} (lote {elo['lote']}, recebido em "
                         f"{elo['recebido']}{recusado})")
    lines += ["histórico:"] + [f"  {h}" for h in data["historico"]]
    if data.get("recusadas"):
        lines += ["guias recusadas:"] + [f"  {_guia_recusada(g)}" for g in data["recusadas"]]
    lines += ["entregas:", _table(data["entregas"])]
    return "\n".join(lines)


def _outcome(session: Session, lote: Lote | None, status: int, partes: list[Entrega]) -> dict[str, Any]:
    if lote is None:
        return {}
    from gateway.console import queries

    return _desfecho(queries.desfecho(session, lote, status, partes), queries.cadeia(session, lote))


def run_show(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from gateway.storage.models import Entrega, Lote, Protocolo

    names = _status_names(args)

    def action(session: Session) -> tuple[int, Any]:
        protocolo = session.scalars(select(Protocolo).where(Protocolo.numero == args.numero)).one_or_none()
        if protocolo is None:
            return NOT_FOUND, f"protocolo {args.numero} não encontrado"
        lote = session.scalars(select(Lote).where(Lote.protocolo_id == protocolo.id)).one_or_none()
        partes = list(session.scalars(select(Entrega).where(Entrega.protocolo_id == protocolo.id)
                                      .order_by(Entrega.parte)))
        registro = protocolo.registro_ans
        outcome = _outcome(session, lote, protocolo.status, partes)
        data: dict[str, Any] = {
            "numero": protocolo.numero, "tipo": protocolo.tipo, "operadora": registro,
            "status": _status(names, registro, protocolo.status), "critica": outcome.pop("critica", None),
            "protocolo_operadora": protocolo.numero_operadora,
            "lote": lote.numero_lote if lote else None, "guias": lote.quantidade_guias if lote else None,
            "valor_informado": str(lote.valor_informado) if lote else None,
            **outcome,
            "historico": [f"{h.em.isoformat(timespec='seconds')} {_status(names, registro, h.status)} "
                          f"({h.origem})" for h in protocolo.historico],
            "entregas": [_entrega(e) for e in partes]}
        return OK, data if args.json else _texto_show(data)

    return _with_session(args, action, write=False)


def run_lotes(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from gateway.console import desfecho, queries
    from gateway.storage.models import Lote, Prestador, Protocolo

    names = _status_names(args)

    def action(session: Session) -> tuple[int, Any]:
        query = (select(Lote, Protocolo, Prestador).join(Protocolo, Lote.protocolo_id == Protocolo.id)
                 .join(Prestador, Lote.prestador_id == Prestador.id)
                 .order_by(Lote.id.desc()).limit(args.limit))
        if args.operadora:
            query = query.where(Lote.registro_ans == args.operadora)
        found = session.execute(query).all()
        contagens = queries.contagens_das_guias(session, [lote.id for lote, _p, _pr in found])
        rows = []
        for lote, p, pr in found:
            conta = desfecho.contagem(contagens.get(lote.id, {}), status=p.status)
            rows.append({
                "protocolo": p.numero, "lote": lote.numero_lote, "prestador": pr.login,
                "operadora": lote.registro_ans, "tipo": lote.tipo_guia, "guias": lote.quantidade_guias,
                "aceitas": conta.aceitas, "recusadas": conta.recusadas, "valor": str(lote.valor_informado),
                "valor_aceito": str(conta.valor_aceito),
                "status": _status(names, lote.registro_ans, p.status),
                "recebido": lote.criado_em.isoformat(timespec="seconds")})
        return OK, rows

    return _with_session(args, action, write=False)
