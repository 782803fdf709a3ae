"""Every refused request stored with its bytes and its críticas, for audit.

Storing a refusal never turns the client's error into a server error: a failure to store is
logged and the refusal still answers.
"""

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from gateway.delivery.checked import mensagem_row
from gateway.message.checks import Call
from gateway.message.faults import TissFault
from gateway.message.findings import Finding, describe
from gateway.message.findings import error as critica
from gateway.observability.logs import REQUEST_ID_KEY
from gateway.soap.service import SERVICE_KEY
from gateway.storage import rows

log = logging.getLogger("tiss_gateway.inbound")


class Refusals:
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def store(self, call: Call, fault: TissFault, *, prestador_id: int | None,
              request_id: str | None) -> None:
        """A request the pipeline read and refused; ``prestador_id`` once the sender was known."""
        try:
            with self.sessions.begin() as session:
                row = mensagem_row(call, "entrada", call.message.data, "recusada" if fault.client else "erro",
                                   None, prestador_id=prestador_id, request_id=request_id)
                row["codigo_erro"] = fault.code or fault.tiss_fault
                mensagem_id = rows.add_mensagem(session, row)
                rows.add_criticas(session, mensagem_id, fault.findings or [
                    critica(fault.code, str(fault.faultstring))])
        except Exception:  # never let audit storage turn a client's error into a server error
            log.exception("falha ao gravar mensagem recusada")
        log.info("recusada: %s %s %s", call.service.name, fault.tiss_fault, fault.faultstring)

    def oversize(self, environ: dict[str, Any], length: int) -> None:
        """A request over the size limit, refused before it was read (its body is not kept)."""
        with self.sessions.begin() as session:
            rows.add_mensagem(session, dict(
                direcao="entrada", servico=environ.get(SERVICE_KEY), tamanho=length, corpo=b"",
                resultado="recusada", codigo_erro="5002", endereco=environ.get("REMOTE_ADDR"),
                request_id=environ.get(REQUEST_ID_KEY)))
        log.warning("mensagem de %s bytes recusada (limite)", length)

    def unread(self, environ: dict[str, Any], data: bytes, code: str, *, client: bool,
               findings: Sequence[Finding]) -> None:
        """A request the SOAP layer refused before the pipeline could read it, with its críticas."""
        try:
            with self.sessions.begin() as session:
                mensagem_id = rows.add_mensagem(session, dict(
                    direcao="entrada", servico=environ.get(SERVICE_KEY), tamanho=len(data), corpo=data,
                    resultado="recusada" if client else "erro", codigo_erro=code,
                    endereco=environ.get("REMOTE_ADDR"), request_id=environ.get(REQUEST_ID_KEY)))
                rows.add_criticas(session, mensagem_id, findings or [_finding_of_code(code)])
        except Exception:  # never let audit storage turn a client's error into a server error
            log.exception("falha ao gravar mensagem recusada")


def _finding_of_code(code: str) -> Finding:
    """A crítica for a refusal known only by its code (Table 38 or tissFault name)."""
    description = describe(code) if code.isdigit() else None
    return critica(code if code.isdigit() else None, description or code)
