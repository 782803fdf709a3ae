"""Every refused request stored with its bytes and its críticas, for audit, at a bounded cost.

Storing a refusal never turns the client's error into a server error: a failure to store is
logged and the refusal still answers.

Before login nobody answers for a message, so what its refusal may cost is capped:

- its críticas: the first ``MAX_FINDINGS`` and one counting the rest (gateway.message.findings);
- its body: kept up to ``[gateway] refused_body_bytes`` (default 64 KiB); the rest only as its
  length (``tamanho``) and SHA-256, written in a crítica;
- how many are stored: ``[gateway] refusals_per_minute`` per client address (an IPv6 address counts
  by its /64) and ten times that in all, per minute, in each gunicorn worker (in memory: N workers
  store up to N times that). Past it a refusal is still answered and counted in the metrics, and
  logged, but not stored.

A refusal of an authenticated provider's message is stored whole: the provider answers for it.
"""

import hashlib
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from gateway.delivery.checked import mensagem_row
from gateway.message import credencial
from gateway.message.checks import Call
from gateway.message.faults import TissFault
from gateway.message.findings import Finding, describe, first_of
from gateway.message.findings import error as critica
from gateway.observability.logs import REQUEST_ID_KEY
from gateway.soap.service import SERVICE_KEY
from gateway.storage import rows

log = logging.getLogger("tiss_gateway.inbound")
_MAX_ADDRESSES = 10_000  # addresses counted per minute (a spray beyond them shares the total)

REFUSED_BODY_BYTES = 64 * 1024
REFUSALS_PER_MINUTE = 60


class AddressBudget:
    """How many refusals this process stores per client address per minute (a fixed window: the
    clock's minute; a clock that jumps only starts a window early)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.time):
        self.per_minute = per_minute
        self.total = per_minute * 10  # in all: addresses sprayed from a network
        self.clock = clock
        self._window = -1
        self._counts: dict[str, int] = {}
        self._stored = 0
        self._total_logged = False
        self._lock = threading.Lock()

    def take(self, address: str | None) -> bool:
        """Whether a refusal from ``address`` may be stored now; logs when a limit is first hit."""
        key = _address_key(address)
        with self._lock:
            minute = int(self.clock() // 60)
            if minute != self._window:  # a new minute: every address starts again
                self._window, self._counts, self._stored, self._total_logged = minute, {}, 0, False
            seen = self._counts.get(key, 0)
            allowed = seen < self.per_minute and self._stored < self.total
            if key in self._counts or len(self._counts) < _MAX_ADDRESSES:
                self._counts[key] = seen + 1
            self._stored += allowed
            over_total = not allowed and not self._total_logged and self._stored >= self.total
            self._total_logged |= over_total
        if seen == self.per_minute or over_total:
            log.warning("recusas acima do limite (%d por minuto de %s, %d no total): as próximas deste "
                        "minuto são respondidas sem ser gravadas", self.per_minute, key, self.total)
        return allowed


def _address_key(address: str | None) -> str:
    """The budget's key: the address, or the /64 network of an IPv6 one (one host has them all)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "?"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class Refusals:
    def __init__(self, sessions: sessionmaker[Session], *, body_bytes: int = REFUSED_BODY_BYTES,
                 per_minute: int = REFUSALS_PER_MINUTE, clock: Callable[[], float] = time.time):
        self.sessions = sessions
        self.body_bytes = body_bytes
        self.budget = AddressBudget(per_minute, clock)

    def store(self, call: Call, fault: TissFault, *, prestador_id: int | None,
              request_id: str | None) -> None:
        """A request the pipeline read and refused; ``prestador_id`` once the sender was known."""
        log.info("recusada: %s %s %s", call.service.name, fault.tiss_fault, str(fault.faultstring)[:500])
        if prestador_id is None and not self.budget.take(call.endereco):
            return
        data = call.message.data
        body, note, original = (data, None, {}) if prestador_id is not None else self._kept(data)
        findings = fault.findings or [critica(fault.code, str(fault.faultstring))]
        try:
            with self.sessions.begin() as session:
                row = mensagem_row(call, "entrada", data, "recusada" if fault.client else "erro",
                                   None, prestador_id=prestador_id, request_id=request_id)
                row.update(original, corpo=body, codigo_erro=fault.code or fault.tiss_fault)
                mensagem_id = rows.add_mensagem(session, row)
                rows.add_criticas(session, mensagem_id, _criticas(findings, note))
        except Exception:  # never let audit storage turn a client's error into a server error
            log.exception("falha ao gravar mensagem recusada")

    def oversize(self, environ: dict[str, Any], length: int) -> None:
        """A request over the size limit, refused before it was read (its body is not kept)."""
        log.warning("mensagem de %s bytes recusada (limite)", length)
        if not self.budget.take(environ.get("REMOTE_ADDR")):
            return
        try:
            with self.sessions.begin() as session:
                rows.add_mensagem(session, dict(
                    direcao="entrada", servico=environ.get(SERVICE_KEY), tamanho=length, corpo=b"",
                    resultado="recusada", codigo_erro="5002", endereco=environ.get("REMOTE_ADDR"),
                    request_id=environ.get(REQUEST_ID_KEY)))
        except Exception:  # never let audit storage turn a client's error into a server error
            log.exception("falha ao gravar mensagem recusada")

    def unread(self, environ: dict[str, Any], data: bytes, code: str, *, client: bool,
               findings: Sequence[Finding]) -> None:
        """A request the SOAP layer refused before the pipeline could read it, with its críticas."""
        first = findings[0].message if findings else code
        log.info("recusada antes da leitura: %s %s %s", environ.get(SERVICE_KEY), code, first[:500])
        if not self.budget.take(environ.get("REMOTE_ADDR")):
            return
        body, note, original = self._kept(data)
        try:
            with self.sessions.begin() as session:
                mensagem_id = rows.add_mensagem(session, dict(
                    direcao="entrada", servico=environ.get(SERVICE_KEY), tamanho=len(data), corpo=body,
                    resultado="recusada" if client else "erro", codigo_erro=code,
                    endereco=environ.get("REMOTE_ADDR"), request_id=environ.get(REQUEST_ID_KEY), **original))
                rows.add_criticas(session, mensagem_id, _criticas(findings or [_finding_of_code(code)], note))
        except Exception:  # never let audit storage turn a client's error into a server error
            log.exception("falha ao gravar mensagem recusada")

    def _kept(self, data: bytes) -> tuple[bytes, Finding | None, dict[str, Any]]:
        """The part of a refused unauthenticated body that is stored, the crítica saying what
        was left out (None: all of it is kept), and the whole body's SHA-256 and length when its
        senhaPrestador was masked (before cutting: the limit could fall inside the value)."""
        if len(data) <= self.body_bytes:
            return data, None, {}
        digest = hashlib.sha256(data).hexdigest()
        redaction = credencial.redact(data)
        original = {"sha256_original": digest, "tamanho_original": len(data)} if redaction.removida else {}
        return redaction.corpo[:self.body_bytes], critica(None, (
            f"Mensagem recusada antes da identificação do prestador: guardados os primeiros "
            f"{self.body_bytes} de {len(data)} bytes; SHA-256 da mensagem inteira: {digest}.")), original


def _criticas(findings: Sequence[Finding], note: Finding | None) -> list[Finding]:
    capped = first_of(findings)  # the pipeline's are capped already; the SOAP layer's too
    return [*capped, note] if note is not None else capped


def _finding_of_code(code: str) -> Finding:
    """A crítica for a refusal known only by its code (Table 38 or tissFault name)."""
    description = describe(code) if code.isdigit() else None
    return critica(code if code.isdigit() else None, description or code)
