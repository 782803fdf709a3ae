"""Fault injection for the simulated operators: what a flaky operator does to a TISS client.

One :class:`FaultState` per operator holds at most one active :class:`Fault`, switchable at run
time (admin API). Modes:

``down``        the operator's listener is closed (connection refused); :mod:`simulator.server`
                watches the state and closes/reopens the socket. Never seen by the middleware.
``slow``        the answer is held ``latency_ms`` before being sent (the request *is* processed
                first: a client that times out cannot know whether the operator stored it).
``error``       HTTP 500 before the operator sees the request (nothing processed or stored):
                ``kind`` ``http500`` (an HTML error page, as a crashed app server sends) or
                ``soap_fault`` (a tissFaultWS ``ErroInesperadoServidor``).
``malformed``   the real answer, ``truncated`` in the middle or replaced by a ``not_xml`` page,
                with status 200. The request was processed and stored.
``wrong_hash``  the real answer with its ``hash`` replaced by another well-formed MD5. The request
                was processed and stored. An operator that signs its answers signed the right
                hash, so its signature no longer checks either (as behind a mangling proxy).
``refuse``      the operator turns the request down: the service's own mensagemErro (HTTP 200,
                hashed and signed as the operator answers) with Table 38 ``code`` and ``text``
                (default: the code's term). Nothing processed nor stored: the same lote can be
                sent again and taken. A ``code`` the request's version lacks (3169-3312 before
                4.03.00) goes as 5002 with the code in the text; a request the injector cannot
                read goes on to the operator, which refuses it on its own.

For malformed and wrong_hash the request still reaches the operator and is stored: that is what
a real flaky operator (or a proxy mangling answers) looks like, and what makes a blind retry a
duplicate. ``rate`` (0..1, default 1) is the share of requests hit, decided by a
``random.Random`` seeded per operator and re-seeded whenever a fault is set, so a test sees the
same hits every run. ``count`` limits the fault to the next N requests (hit or not), after which
it clears itself ("fails twice, then works"); ``duration_s`` clears it after that many real
seconds. Only SOAP calls (POST) are affected: WSDLs, XSDs and ``/healthz`` keep working, so a
client can still be built while an operator misbehaves.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from gateway.message import reader, responses
from gateway.message.findings import XML_NAO_VALIDADO, tabela38
from gateway.message.services import ANS_NS, SERVICE_BY_REQUEST, Service
from simulator.clock import horario_local

StartResponse = Callable[..., object]

MODES = ("down", "slow", "error", "malformed", "wrong_hash", "refuse")
KINDS = {"error": ("http500", "soap_fault"), "malformed": ("truncated", "not_xml")}
FAULT_KEY = "simulator.fault"  # environ key: the mode applied to this request (for the access log)

_HTML_500 = (b"<html><head><title>500 Internal Server Error</title></head><body>"
             b"<h1>Internal Server Error</h1><p>The server encountered an internal error.</p>"
             b"<hr><address>Apache Tomcat</address></body></html>")
# Not well-formed on purpose (unclosed <p> and <br>): what a portal's error page looks like.
_NOT_XML = (b"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Portal TISS</title></head>"
            b"<body><p>Servi\xc3\xa7o temporariamente indispon\xc3\xadvel<br></body></html>")
_HASH = re.compile(rb"(<(?:[\w.-]+:)?hash>)\s*([0-9a-fA-F]{32})\s*(</(?:[\w.-]+:)?hash>)")
_DRAIN_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Fault:
    mode: str
    rate: float = 1.0
    latency_ms: int = 0
    kind: str | None = None
    count: int | None = None
    duration_s: float | None = None
    code: str | None = None  # refuse: the Table 38 code of the mensagemErro
    text: str | None = None  # refuse: its descricaoGlosa

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"modo de falha desconhecido: {self.mode!r} (modos: {', '.join(MODES)})")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate deve estar entre 0 e 1, não {self.rate}")
        if (self.mode == "slow") != (self.latency_ms > 0) or self.latency_ms < 0:
            raise ValueError("latency_ms (> 0) é obrigatório em slow e só se aplica a ele")
        if self.count is not None and (self.count < 1 or self.mode == "down"):
            raise ValueError("count deve ser >= 1 e não se aplica a down (use duration_s)")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError("duration_s deve ser > 0")
        kinds = KINDS.get(self.mode, ())
        if self.kind is not None and self.kind not in kinds:
            raise ValueError(f"kind {self.kind!r} inválido para {self.mode} (válidos: {kinds or 'nenhum'})")
        if self.kind is None and kinds:
            object.__setattr__(self, "kind", kinds[0])
        self._check_refusal()

    def _check_refusal(self) -> None:
        if self.mode != "refuse":
            if self.code is not None or self.text is not None:
                raise ValueError("code e text só se aplicam a refuse")
            return
        if self.code not in tabela38():
            raise ValueError(f"refuse exige code da tabela 38 (dm_tipoGlosa), não {self.code!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """From the admin API's JSON; unknown keys and wrong types are errors, not ignored."""
        unknown = set(data) - {"mode", "rate", "latency_ms", "kind", "count", "duration_s", "code", "text"}
        if unknown:
            raise ValueError(f"campos desconhecidos: {sorted(unknown)}")
        if not isinstance(data.get("mode"), str):
            raise ValueError("informe mode (texto)")
        numbers = {"rate": float, "latency_ms": int, "count": int, "duration_s": float}
        values: dict[str, Any] = {"mode": data["mode"]}
        for name in ("kind", "code", "text"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise ValueError(f"{name} deve ser texto")
            values[name] = data.get(name)
        for name, kind in numbers.items():
            value = data.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or \
                    (kind is int and value != int(value)):
                raise ValueError(f"{name} deve ser um número{' inteiro' if kind is int else ''}")
            values[name] = kind(value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and (k != "latency_ms" or v)}


class FaultState:
    """The active fault of one operator. Thread-safe: handler threads draw, the admin sets.

    ``on_change(fault_or_None)`` is called (outside the lock) whenever the fault changes, including
    when it expires by ``count`` or ``duration_s``: the server uses it to close/reopen the socket.
    """

    def __init__(self, name: str = "", seed: int = 0, *, monotonic: Callable[[], float] = time.monotonic,
                 timers: bool = True):
        self.name = name
        self.seed = seed
        self.on_change: Callable[[Fault | None], None] | None = None
        self._monotonic = monotonic
        self._timers = timers  # False in unit tests: expiry then happens lazily, on the next draw
        self._lock = threading.Lock()
        self._fault: Fault | None = None
        self._remaining: int | None = None
        self._expires: float | None = None
        self._generation = 0
        self._rng = random.Random()
        self._applied = 0  # requests hit by the current fault

    def set(self, fault: Fault) -> None:
        with self._lock:
            self._generation += 1
            self._fault, self._remaining, self._applied = fault, fault.count, 0
            self._expires = self._monotonic() + fault.duration_s if fault.duration_s else None
            self._rng = random.Random(f"{self.seed}:{self.name}")  # same hits every time it is set
            generation = self._generation
        if fault.duration_s and self._timers:
            timer = threading.Timer(fault.duration_s, self._expire, (generation,))
            timer.daemon = True
            timer.start()
        self._notify(fault)

    def clear(self) -> Fault | None:
        with self._lock:
            previous = self._clear_locked()
        if previous is not None:
            self._notify(None)
        return previous

    def current(self) -> Fault | None:
        with self._lock:
            fault, expired = self._live_locked()
        if expired:
            self._notify(None)
        return fault

    @property
    def down(self) -> bool:
        fault = self.current()
        return fault is not None and fault.mode == "down"

    def draw(self) -> Fault | None:
        """The fault to apply to this request, or None. Consumes one unit of ``count``."""
        with self._lock:
            fault, expired = self._live_locked()
            hit = None
            if fault is not None and fault.mode != "down":
                if self._rng.random() < fault.rate:
                    hit, self._applied = fault, self._applied + 1
                if self._remaining is not None:
                    self._remaining -= 1
                    if self._remaining <= 0:
                        self._clear_locked()
                        expired = True
        if expired:
            self._notify(None)
        return hit

    def snapshot(self) -> dict[str, Any]:
        """For the admin state: the fault, what is left of it, how many requests it hit."""
        with self._lock:
            fault, expired = self._live_locked()
            left = None if self._expires is None else round(max(0.0, self._expires - self._monotonic()), 3)
            state = {"fault": None} if fault is None else {
                "fault": fault.to_dict(), "remaining_count": self._remaining, "expires_in_s": left,
                "applied": self._applied}
        if expired:  # whoever notices the expiry first notifies (the timer then finds nothing to do)
            self._notify(None)
        return state

    def _live_locked(self) -> tuple[Fault | None, bool]:
        if self._fault is not None and self._expires is not None and self._monotonic() >= self._expires:
            self._clear_locked()
            return None, True
        return self._fault, False

    def _clear_locked(self) -> Fault | None:
        previous = self._fault
        self._generation += 1
        self._fault = self._remaining = self._expires = None
        return previous

    def _expire(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return  # set or cleared again since this timer started
            self._clear_locked()
        self._notify(None)

    def _notify(self, fault: Fault | None) -> None:
        if self.on_change is not None:
            self.on_change(fault)


def _agora() -> datetime:
    return horario_local(datetime.now(UTC))


@dataclass(frozen=True)
class Responder:
    """How an operator words the answers it makes up for ``refuse``: its registro ANS (the answer's
    origem), its envelope (hash in its variant, its signature: ``OperadoraSimulada.envelope``) and
    its clock (local time, for dataRegistroTransacao)."""

    registro_ans: str
    envelope: Callable[[etree._Element, str], bytes] = responses.envelope
    now: Callable[[], datetime] = _agora


class FaultInjector:
    """WSGI middleware applying an operator's :class:`FaultState` around the operator's app.

    ``responder``: the operator's, for ``refuse`` (without one the answer names the request's
    destino and is hashed by the declared encoding, unsigned).
    """

    def __init__(self, app: Callable, state: FaultState, *, max_drain: int = 64 * 1024 * 1024,
                 sleep: Callable[[float], None] = time.sleep, responder: Responder | None = None):
        self.app = app
        self.state = state
        self.max_drain = max_drain
        self.sleep = sleep
        self.responder = responder
        self._sequencial = itertools.count(1)

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        fault = self.state.draw()
        environ[FAULT_KEY] = fault.mode if fault else None
        if fault is None:
            return self.app(environ, start_response)
        if fault.mode == "error":
            _drain(environ, self.max_drain)  # a half-read request would reset the connection
            return _error(fault, start_response)
        if fault.mode == "refuse":
            return self._refuse(fault, environ, start_response)
        status, headers, body = _run(self.app, environ)
        if fault.mode == "slow":
            self.sleep(fault.latency_ms / 1000)
        elif fault.mode == "malformed":
            status, headers, body = _malformed(fault, status, headers, body)
        elif fault.mode == "wrong_hash":
            body = wrong_hash(body)
        return _send(start_response, status, headers, body)


    def _refuse(self, fault: Fault, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH") or "0"
        size = int(length) if length.isdigit() else 0
        if size > self.max_drain:  # too big to read here: the operator refuses it on its own
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(size) if size else b""
        found = self._refusal(fault, body)
        if found is None:  # not a request it can answer: the operator refuses it on its own
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
            return self.app(environ, start_response)
        answer, encoding = found
        return _send(start_response, "200 OK", [("Content-Type", f"text/xml; charset={encoding}")], answer)

    def _refusal(self, fault: Fault, body: bytes) -> tuple[bytes, str] | None:
        """The service's mensagemErro answering ``body`` and its encoding (the request's); None
        when ``body`` is not a TISS request."""
        try:
            message = reader.read(body, self.max_drain)
        except reader.MessageError:
            return None
        service = SERVICE_BY_REQUEST.get(message.kind)
        if service is None:
            return None
        responder = self.responder or Responder(_destino(message.root))
        try:
            ctx = responses.reply_context(message.root, registro_ans=responder.registro_ans,
                                          sequencial=str(next(self._sequencial)), now=responder.now())
        except ValueError:  # a version the answers cannot be built in, no origem...
            return None
        root = _mensagem_erro(ctx, service, fault.code or XML_NAO_VALIDADO, fault.text)
        return responder.envelope(root, message.encoding), message.encoding


def _mensagem_erro(ctx: responses.ReplyContext, service: Service, code: str,
                   text: str | None) -> etree._Element:
    """``code`` as the request's version spells it: 5002 with the code in the text when it lacks it."""
    if code not in responses.codigos_glosa(ctx.version):
        code, text = XML_NAO_VALIDADO, f"[{code}] {text or tabela38().get(code) or ''}".strip()
    if service.name not in responses.services_with_mensagem_erro(ctx.version):
        return responses.glosa_elegibilidade(ctx, code, text)
    return responses.mensagem_erro(ctx, service, code, text)


def _destino(root: etree._Element) -> str:
    return root.findtext(f"{{{ANS_NS}}}cabecalho/{{{ANS_NS}}}destino/{{{ANS_NS}}}registroANS", "").strip()


def wrong_hash(body: bytes) -> bytes:
    """``body`` with the last ``hash`` element's MD5 replaced by another (still 32 hex digits).

    The last one is the response's own ``*WS/hash``; a body without a hash (a SOAP fault) is left
    as it is.
    """
    matches = list(_HASH.finditer(body))
    if not matches:
        return body
    match = matches[-1]
    original = match.group(2).lower()
    altered = hashlib.md5(original + b":simulador", usedforsecurity=False).hexdigest().encode("ascii")
    return body[:match.start(2)] + altered + body[match.end(2):]


def _malformed(fault: Fault, status: str, headers: list[tuple[str, str]],
               body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    if fault.kind == "not_xml":
        return "200 OK", [("Content-Type", "text/html; charset=utf-8")], _NOT_XML
    return "200 OK", headers, body[:max(1, len(body) // 2)]


def _error(fault: Fault, start_response: StartResponse) -> list[bytes]:
    if fault.kind == "soap_fault":
        body = responses.fault_envelope("ErroInesperadoServidor",
                                        "Erro inesperado no servidor da operadora (falha simulada).",
                                        client=False)
        headers = [("Content-Type", "text/xml; charset=UTF-8")]
    else:
        body, headers = _HTML_500, [("Content-Type", "text/html; charset=iso-8859-1")]
    return _send(start_response, "500 Internal Server Error", headers, body)


def _run(app: Callable, environ: dict) -> tuple[str, list[tuple[str, str]], bytes]:
    """Call ``app`` and collect its whole answer, so that it can be altered or delayed."""
    captured: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return chunks.append

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return captured["status"], captured["headers"], b"".join(chunks)


def _send(start_response: StartResponse, status: str, headers: list[tuple[str, str]],
          body: bytes) -> list[bytes]:
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-length", "transfer-encoding")]
    start_response(status, [*kept, ("Content-Length", str(len(body)))])
    return [body]


def _drain(environ: dict, limit: int) -> None:
    length = environ.get("CONTENT_LENGTH") or "0"
    left = min(int(length), limit) if length.isdigit() else 0
    stream = environ.get("wsgi.input")
    while left > 0 and stream is not None:
        chunk = stream.read(min(left, _DRAIN_CHUNK))
        if not chunk:
            break
        left -= len(chunk)
