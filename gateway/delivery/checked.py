"""A provider's call the gateway checked, as gateway.inbound hands it to delivery (the outbox, the
real-time relay), and what storing one takes on either path: its Mensagem rows, and the one write
transaction that answers a sequencialTransacao once (a repeat gets the same bytes back).
"""

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError

from gateway.config import Operadora
from gateway.message.checks import Call
from gateway.message.faults import Reply, TissFault
from gateway.storage import rows
from gateway.storage.prepared import Db

# The request path's logger, whichever package the step lives in.
log = logging.getLogger("tiss_gateway.inbound")

D = TypeVar("D", bound=Db)


@dataclass(frozen=True, slots=True)
class CheckedCall:
    """A call that passed every check of the gateway (gateway.inbound.checks)."""

    call: Call
    operadora: Operadora  # the destination, known and taking the message's version
    prestador_id: int  # the authenticated sender, the one the origem names
    hash_found: str  # as written in the message
    request_id: str | None  # the request's id (logs, the outbox)

    @property
    def hash_lower(self) -> str:
        """The hash as Mensagem and Transacao keep it and a repeat is compared by."""
        return self.hash_found.lower()

    def mensagem(self, direcao: str, data: bytes, resultado: str, hash_: str | None) -> dict[str, Any]:
        return mensagem_row(self.call, direcao, data, resultado, hash_, prestador_id=self.prestador_id,
                            request_id=self.request_id)


@dataclass(frozen=True, slots=True)
class Answered:
    """The reply to a call and what the call came to (metrics and access log: gateway.observability)."""

    reply: Reply
    outcome: str = "accepted"  # accepted, replayed, or refused (the reply is the service's refusal)
    code: str | None = None  # the refusal's Table 38 code


class StoredFault(Exception):
    """``fault`` answers the call and is stored already (with what was exchanged): raise it, don't
    store it again."""

    def __init__(self, fault: TissFault):
        super().__init__(fault.faultstring)
        self.fault = fault


def mensagem_row(call: Call, direcao: str, data: bytes, resultado: str, hash_: str | None, *,
                 prestador_id: int | None, request_id: str | None) -> dict[str, Any]:
    """The mensagem row (gateway.storage.models.Mensagem) of a request or its answer."""
    cabecalho = call.cabecalho
    return dict(direcao=direcao, servico=call.service.name, versao=call.message.version,
                tipo_transacao=cabecalho.tipo or None, sequencial_transacao=cabecalho.sequencial[:20] or None,
                hash=hash_, tamanho=len(data), corpo=data, remetente=cabecalho.remetente[:20] or None,
                destinatario=cabecalho.destino[:20] or None, prestador_id=prestador_id,
                resultado=resultado, endereco=call.endereco, request_id=request_id)


def store_once(begin: Callable[[], AbstractContextManager[D]], checked: CheckedCall,
               store: Callable[[D], Answered]) -> Answered:
    """``store`` in a write transaction from ``begin``, unless the sequencialTransacao was answered
    already: then as it was (:func:`replay`). The Transacao's unique key decides which of two
    concurrent copies stores; the other one retries and replays."""
    cabecalho = checked.call.cabecalho
    for _ in range(3):
        try:
            with begin() as db:
                earlier = rows.transacao_anterior(db, checked.prestador_id, cabecalho.tipo,
                                                     cabecalho.sequencial)
                if earlier is not None:
                    return replay(checked, earlier)
                return store(db)
        except IntegrityError:
            continue  # a concurrent copy of this transaction won; answer as it did
    raise TissFault("ErroInesperadoServidor", "Conflito de gravação persistente.", client=False)


def replay(checked: CheckedCall, earlier: rows.TransacaoAnterior) -> Answered:
    """A sequencialTransacao used before: the same message gets the same answer; another message
    is refused."""
    sequencial = checked.call.cabecalho.sequencial
    if (earlier.hash or "").lower() == checked.hash_lower and earlier.resposta is not None:
        if not earlier.resposta:  # emptied by `prune` (gateway.storage.retention)
            raise TissFault("SchemaInvalido", f"sequencialTransacao {sequencial} já respondido; a resposta "
                            "não é mais guardada (retenção): use um novo sequencialTransacao.", code="5001")
        log.info("transação repetida, mesma resposta: %s", sequencial)
        return Answered(Reply(earlier.resposta, checked.call.message.encoding), "replayed")
    raise TissFault("SchemaInvalido", reused_sequencial(sequencial, checked.call.cabecalho.tipo), code="5001")


def reused_sequencial(sequencial: str, tipo: str) -> str:
    """The refusal of a sequencialTransacao already used for a message with other content (another
    hash): a new message needs a new number; the same message again gets its answer again."""
    return (f"O sequencialTransacao {sequencial} ({tipo}) já foi usado por este prestador em outra "
            "mensagem, de conteúdo diferente (outro hash): cada mensagem nova precisa de um "
            "sequencialTransacao novo. Reenvie com um número ainda não usado; o reenvio da mesma "
            "mensagem (mesmo hash) recebe a mesma resposta.")
