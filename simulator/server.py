"""The simulator process: one admin listener plus one HTTP listener per simulated operator.

Each operator gets a listener of its own (consecutive ports after the admin port) so that the
``down`` fault is a real *connection refused*: the listening socket is closed, and reopened on the
same port (SO_REUSEADDR) when the fault is cleared or expires. A port 0 in ``--bind`` gives every
listener an ephemeral port instead (tests: no port races); the URLs are printed and in
``GET /admin/state``.

Pure stdlib HTTP (wsgiref + ThreadingMixIn, daemon threads): a sandbox for ERP developers and
tests, not a production server. Beyond wsgiref it decodes chunked request bodies (some SOAP
stacks send them) and logs one line per request.

Admin API (JSON, unauthenticated: keep ``--bind`` on 127.0.0.1):
  GET    /admin/state                    operators, URLs, clock, faults, the process id
  POST   /admin/clock/advance            {"seconds": N} and/or {"days": N}
  POST   /admin/clock/time-scale         {"time_scale": X}
  POST   /admin/<operadora>/faults       {"mode": ..., "rate", "latency_ms", "kind", "count", "duration_s",
                                          "code", "text"}
  DELETE /admin/<operadora>/faults
  POST   /admin/<operadora>/deduplicacao {"sequencial": bool, "lote": bool}: what it recognises as
                                         sent before (both true at start; false: taken again)
  GET    /admin/<operadora>/certificate  PEM: the operator's leaf certificate, then the CA
"""

from __future__ import annotations

import io
import json
import logging
import os
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, cast
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from gateway.soap import wsdl
from simulator.clock import horario_local
from simulator.faults import FAULT_KEY, Fault, FaultInjector, FaultState, Responder

log = logging.getLogger("tiss_simulator")
StartResponse = Callable[..., object]
DEFAULT_BIND = "127.0.0.1:9000"
_MAX_LINE = 65536


class StartupError(RuntimeError):
    """The simulator cannot start (port in use, unknown operator, ...): a message for the user."""


# --------------------------------------------------------------------------- HTTP listeners


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False  # closing a listener ("down") must not wait for a slow request
    allow_reuse_address = True
    max_body: int = 64 * 1024 * 1024  # chunked bodies are read up to this + 1 (the app refuses more)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can take seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), port
        self.setup_environ()


class _ServerHandler(ServerHandler):
    # Set by the request handler, read by close() to log the request: wsgiref's own attribute,
    # which its stubs leave out.
    request_handler: WSGIRequestHandler


class _Handler(WSGIRequestHandler):
    server_version = "tiss-simulador/1"
    server: ThreadingWSGIServer  # the server it is created by (Listener.open)
    rfile: io.BufferedReader  # socket.makefile("rb") with the default buffering (rbufsize -1)

    def handle(self) -> None:
        """wsgiref's handle(), plus chunked request bodies decoded (wsgiref passes them raw)."""
        self.raw_requestline = self.rfile.readline(_MAX_LINE + 1)
        if len(self.raw_requestline) > _MAX_LINE:
            self.requestline, self.request_version, self.command = "", "", ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        environ = self.get_environ()
        stdin: IO[bytes] = self.rfile
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            try:
                data = _read_chunked(self.rfile, self.server.max_body + 1)
            except ValueError:
                self.send_error(400, "corpo chunked inválido")
                return
            stdin = io.BytesIO(data)
            environ["CONTENT_LENGTH"] = str(len(data))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        app = self.server.get_app()
        if app is None:  # Listener.open sets it before serving
            raise RuntimeError("servidor WSGI sem aplicação")
        # wfile is socketserver's _SocketWriter, a BufferedIOBase (the stubs want IO[bytes]; wsgiref's
        # own handle() passes it too, and only write() and flush() are used)
        handler = _ServerHandler(stdin, cast(IO[bytes], self.wfile), self.get_stderr(), environ,
                                 multithread=True)
        handler.request_handler = self
        handler.run(app)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # access_log() writes one line per request, with the fault applied


def _read_chunked(stream: io.BufferedIOBase, limit: int) -> bytes:
    """A chunked body, at most ``limit`` bytes of it (TissWsgi refuses a body over its limit)."""
    parts: list[bytes] = []
    total = 0
    while total < limit:
        line = stream.readline(_MAX_LINE)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ValueError("tamanho de chunk inválido") from None
        if size == 0:
            while stream.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):  # trailers
                pass
            break
        chunk = stream.read(min(size, limit - total))
        parts.append(chunk)
        total += len(chunk)
        if len(chunk) < size:
            break  # over the limit: the rest stays unread, the answer is a 413
        stream.readline(_MAX_LINE)  # the CRLF after the chunk
    return b"".join(parts)


class Listener:
    """One HTTP listener that can be closed and reopened on the same port (the down fault)."""

    def __init__(self, name: str, app: Callable, host: str, port: int, *, max_body: int | None = None):
        self.name = name
        self.app = app
        self.host = host
        self.port = port
        self.max_body = max_body
        self._lock = threading.Lock()
        self._server: ThreadingWSGIServer | None = None

    @property
    def is_open(self) -> bool:
        return self._server is not None

    def open(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            try:
                server = ThreadingWSGIServer((self.host, self.port), _Handler)
            except OSError as exc:
                raise StartupError(f"{self.name}: não foi possível ouvir em {self.host}:{self.port}: "
                                   f"{exc.strerror or exc}") from exc
            server.set_app(self.app)
            if self.max_body is not None:
                server.max_body = self.max_body
            self.port = server.server_port  # port 0: keep the one given, to reopen on it
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                             name=f"listener-{self.name}", daemon=True).start()
            self._server = server

    def close(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            if server is not None:
                server.shutdown()  # stops accepting (waits for the accept loop, not for requests)
                server.server_close()


# --------------------------------------------------------------------------- WSGI wrappers


def access_log(app: Callable, name: str) -> Callable:
    """One log line per request: operator, client, method, path, status, size, time, fault."""

    def logged(environ: dict, start_response: StartResponse) -> Iterator[bytes]:
        started = time.monotonic()
        seen: dict[str, str] = {}

        def recording_start_response(status: str, headers: list, exc_info=None):
            seen["status"] = status.split(" ", 1)[0]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        size = 0
        result = app(environ, recording_start_response)
        try:
            for chunk in result:
                size += len(chunk)
                yield chunk
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            query = environ.get("QUERY_STRING")
            fault = environ.get(FAULT_KEY)
            request_id = environ.get("HTTP_X_REQUEST_ID")  # the gateway's, as a real operator would log it
            log.info("%s %s %s %s%s %s %dB %.0fms%s%s", name, environ.get("REMOTE_ADDR", "-"),
                     environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), f"?{query}" if query else "",
                     seen.get("status", "-"), size, (time.monotonic() - started) * 1000,
                     f" falha={fault}" if fault else "",
                     f" request_id={request_id[:64]!r}" if request_id else "")

    return logged


def accepted_versions(app: Callable, versions: Sequence[str]) -> Callable:
    """Serve WSDLs and XSDs only for the versions the operator accepts.

    A versioned GET of another version is a 404 (a real operator has no endpoint for it); the
    unversioned ``/tiss/<service>?wsdl`` describes the newest accepted version. POSTs go through:
    the operator answers a version it does not accept with VersaoInvalida, which tells the
    developer more than a 404.
    """
    newest = wsdl.version_path(max(versions))

    def scoped(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        parts = [p for p in (environ.get("PATH_INFO") or "/").split("/") if p]
        if environ.get("REQUEST_METHOD") == "GET" and len(parts) >= 2 and parts[0] == "tiss":
            version = wsdl.version_from_path(parts[1])
            if version is None and len(parts) == 2:
                environ["PATH_INFO"] = f"/tiss/{newest}/{parts[1]}"
            elif version is not None and version not in versions:
                return _text(start_response, "404 Not Found", f"versão {version} não aceita por esta "
                             f"operadora (aceita: {', '.join(versions)})")
        return app(environ, start_response)

    return scoped


# --------------------------------------------------------------------------- the simulator


@dataclass
class SimulatedOperator:
    """One operator as the server sees it: an app behind a fault injector on its own listener."""

    key: str
    nome: str
    registro_ans: str
    versoes: tuple[str, ...]
    app: Callable  # the operator's WSGI app (TissWsgi around OperadoraSimulada)
    max_bytes: int
    state: FaultState = field(default_factory=FaultState)
    certificate_pem: bytes | None = None  # leaf then CA
    listener: Listener | None = None
    responder: Responder | None = None  # how it words the answers of the refuse fault
    deduplicacao: Any = None  # the operator's simulator.operadora.Deduplicacao (switched by admin)


class Simulator:
    def __init__(self, operators: Sequence[SimulatedOperator], clock: Any, *, host: str = "127.0.0.1",
                 port: int = 9000, on_stop: Callable[[], None] | None = None):
        if not operators:
            raise StartupError("nenhuma operadora a simular")
        self.operators = {op.key: op for op in operators}
        self.clock = clock
        self.host = host
        self.on_stop = on_stop
        self.admin = Listener("admin", access_log(AdminApp(self), "admin"), host, port)
        for index, op in enumerate(operators, start=1):
            app = access_log(FaultInjector(accepted_versions(op.app, op.versoes), op.state,
                                           max_drain=op.max_bytes, responder=op.responder), op.key)
            op.listener = Listener(op.key, app, host, port + index if port else 0, max_body=op.max_bytes)
            op.state.on_change = self._fault_changed(op)

    @staticmethod
    def _listener(op: SimulatedOperator) -> Listener:
        """The operator's listener: __init__ gives every operator one."""
        if op.listener is None:
            raise RuntimeError(f"{op.key}: operadora sem listener")
        return op.listener

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self.admin.open()
            for op in self.operators.values():
                self._listener(op).open()
        except StartupError:
            self.stop()
            raise

    def stop(self) -> None:
        for op in self.operators.values():
            op.state.on_change = None  # a fault expiring now must not reopen a listener
            self._listener(op).close()
        self.admin.close()
        if self.on_stop is not None:
            self.on_stop()

    # -- URLs ------------------------------------------------------------------------------------
    @property
    def display_host(self) -> str:
        """The host in printed URLs: a wildcard bind is reached through localhost."""
        return "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host

    def admin_url(self) -> str:
        return f"http://{self.display_host}:{self.admin.port}"

    def operator_url(self, key: str) -> str:
        return f"http://{self.display_host}:{self._listener(self.operators[key]).port}"

    def banner(self) -> str:
        """What is printed at start: the URLs an ERP developer copies."""
        lines = [f"simulador TISS — admin: {self.admin_url()}/admin/state"]
        for op in self.operators.values():
            base = self.operator_url(op.key)
            lines.append(f"  {op.key:<11} {op.registro_ans} {op.nome}: {base}/tiss/<serviço> "
                         f"(WSDL: {base}/tiss/{wsdl.version_path(max(op.versoes))}/tissLoteGuias?wsdl; "
                         f"versões {', '.join(op.versoes)})")
        return "\n".join(lines)

    # -- state and faults -------------------------------------------------------------------------
    def operator(self, key: str) -> SimulatedOperator:
        try:
            return self.operators[key]
        except KeyError:
            raise LookupError(f"operadora desconhecida: {key!r} (simuladas: {', '.join(self.operators)})") \
                from None

    def set_fault(self, key: str, fault: Fault) -> dict[str, Any]:
        op = self.operator(key)
        op.state.set(fault)
        return self.operator_state(op)

    def set_deduplicacao(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        op = self.operator(key)
        if op.deduplicacao is None:
            raise LookupError(f"{key}: operadora sem deduplicação configurável")
        unknown = set(body) - {"sequencial", "lote"}
        if unknown or not all(isinstance(v, bool) for v in body.values()):
            raise ValueError("informe sequencial e/ou lote, true ou false")
        for name, value in body.items():
            setattr(op.deduplicacao, name, value)
        return self.operator_state(op)

    def clear_fault(self, key: str) -> dict[str, Any]:
        op = self.operator(key)
        op.state.clear()
        return self.operator_state(op)

    def advance(self, delta: timedelta) -> dict[str, Any]:
        self.clock.advance(delta)
        return self.clock_state()

    def clock_state(self) -> dict[str, Any]:
        now = self.clock.now()
        return {"now": now.isoformat(), "local": horario_local(now).isoformat(),
                "time_scale": self.clock.time_scale, "advanced_s": self.clock.advanced.total_seconds()}

    def operator_state(self, op: SimulatedOperator) -> dict[str, Any]:
        faults = op.state.snapshot()  # first: an expiry it notices reopens the listener
        listener = self._listener(op)
        base = self.operator_url(op.key)
        return {"key": op.key, "registro_ans": op.registro_ans, "nome": op.nome, "url": base,
                "port": listener.port, "versoes": list(op.versoes), "up": listener.is_open,
                "wsdl": {v: f"{base}/tiss/{wsdl.version_path(v)}/<serviço>?wsdl" for v in op.versoes},
                **({"deduplicacao": asdict(op.deduplicacao)} if op.deduplicacao is not None else {}),
                **faults}

    def state(self) -> dict[str, Any]:
        # pid: whoever started this simulator knows the admin answering is its own, not another
        # instance's on the same port (serve --demo).
        return {"admin": self.admin_url(), "pid": os.getpid(), "clock": self.clock_state(),
                "operators": {key: self.operator_state(op) for key, op in self.operators.items()}}

    def _fault_changed(self, op: SimulatedOperator) -> Callable[[Fault | None], None]:
        """The listener follows the operator's *current* fault, not the notified one: two changes
        notified from different threads may arrive out of order."""
        lock = threading.RLock()  # reentrant: current() may itself notify an expiry

        def changed(fault: Fault | None) -> None:
            if fault is not None:
                log.warning("%s: falha %s", op.key, json.dumps(fault.to_dict()))
            with lock:
                listener = self._listener(op)
                current = op.state.current()
                if current is not None and current.mode == "down":
                    if listener.is_open:
                        listener.close()
                        log.warning("%s: fora do ar (porta %s fechada)", op.key, listener.port)
                elif not listener.is_open:
                    listener.open()
                    log.warning("%s: de volta (porta %s)", op.key, listener.port)

        return changed


# --------------------------------------------------------------------------- admin API


class AdminApp:
    def __init__(self, simulator: Simulator):
        self.simulator = simulator

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        parts = [p for p in (environ.get("PATH_INFO") or "/").split("/") if p]
        try:
            status, payload = self._route(method, parts, environ)
        except LookupError as exc:
            status, payload = "404 Not Found", {"erro": str(exc.args[0])}
        except (ValueError, TypeError) as exc:
            status, payload = "400 Bad Request", {"erro": str(exc)}
        except StartupError as exc:  # reopening a listener failed (port taken meanwhile)
            status, payload = "500 Internal Server Error", {"erro": str(exc)}
        if isinstance(payload, bytes):
            return _reply(start_response, status, payload, "application/x-pem-file")
        if isinstance(payload, str):
            return _text(start_response, status, payload)
        return _reply(start_response, status, json.dumps(payload, ensure_ascii=False, indent=1).encode(),
                      "application/json; charset=utf-8")

    def _route(self, method: str, parts: list[str], environ: dict) -> tuple[str, Any]:
        sim = self.simulator
        if parts in ([], ["healthz"]) and method == "GET":
            return "200 OK", "ok" if parts else sim.banner() + "\n"
        if not parts or parts[0] != "admin":
            raise LookupError("não encontrado")
        route = (method, *parts[1:])
        if route == ("GET", "state"):
            return "200 OK", sim.state()
        if route == ("POST", "clock", "advance"):
            return "200 OK", sim.advance(_delta(_json(environ)))
        if route == ("POST", "clock", "time-scale"):
            scale = _json(environ).get("time_scale")
            if isinstance(scale, bool) or not isinstance(scale, int | float):
                raise ValueError("informe time_scale (número >= 0)")
            sim.clock.set_time_scale(scale)
            return "200 OK", sim.clock_state()
        if len(route) == 3 and route[2] == "faults" and method in ("POST", "DELETE"):
            if method == "DELETE":
                return "200 OK", sim.clear_fault(route[1])
            sim.operator(route[1])  # 404 before validating the body
            return "200 OK", sim.set_fault(route[1], Fault.from_dict(_json(environ)))
        if route[2:] == ("deduplicacao",) and method == "POST":
            return "200 OK", sim.set_deduplicacao(route[1], _json(environ))
        if route[2:] == ("certificate",) and method == "GET":
            pem = sim.operator(route[1]).certificate_pem
            if pem is None:
                raise LookupError("esta operadora não tem certificado")
            return "200 OK", pem
        raise LookupError(f"rota desconhecida: {method} /{'/'.join(parts)}")


def _json(environ: dict) -> dict[str, Any]:
    length = environ.get("CONTENT_LENGTH") or "0"
    data = environ["wsgi.input"].read(int(length)) if length.isdigit() and int(length) else b""
    if not data.strip():
        return {}
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"JSON inválido: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("esperado um objeto JSON")
    return value


def _delta(body: dict[str, Any]) -> timedelta:
    unknown = set(body) - {"seconds", "days", "hours"}
    if unknown or not body:
        raise ValueError("informe seconds, hours e/ou days (números >= 0)")
    for name, value in body.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{name} deve ser um número >= 0")
    return timedelta(seconds=body.get("seconds", 0), hours=body.get("hours", 0), days=body.get("days", 0))


def _reply(start_response: StartResponse, status: str, body: bytes, content_type: str) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def _text(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    return _reply(start_response, status, text.encode("utf-8"), "text/plain; charset=utf-8")


# --------------------------------------------------------------------------- assembly


def parse_bind(bind: str) -> tuple[str, int]:
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise StartupError(f"--bind deve ser HOST:PORTA, não {bind!r}")
    return host or "127.0.0.1", int(port)


def simulator_home(home: Path | None = None) -> Path:
    """``--home``, else ``$TISS_GATEWAY_HOME/simulator`` (or the per-user data dir's)."""
    from gateway.home import gateway_home

    return Path(home) if home is not None else gateway_home() / "simulator"


def build(keys: Sequence[str], *, host: str, port: int, database_url: str, home: Path,
          time_scale: float = 1.0, seed: int = 0, start: datetime | None = None) -> Simulator:
    """The simulator for the operators ``keys``, with its storage, clock and certificates."""
    # The operator machinery loads only here: listeners and admin API (and their tests) work without it.
    from gateway.message.schema_registry import SchemaRegistry
    from gateway.soap.app import TissWsgi
    from gateway.storage import db
    from simulator.clock import SimClock
    from simulator.models import create_schema
    from simulator.operadora import OperadoraSimulada
    from simulator.portal import PortalApp
    from simulator.profile import load_profile

    profiles = [load_profile(key) for key in keys]
    registry = SchemaRegistry()
    installed = set(registry.sets())
    for profile in profiles:
        missing = [v for v in profile.versoes if v not in installed]
        if missing:
            raise StartupError(f"{profile.key}: versões {', '.join(missing)} não instaladas "
                               "(tiss-gateway schemas import <pasta>)")
        for version in profile.versoes:  # compile now: the first request must not pay for it
            registry.schema(version, "loteGuiasWS")
    engine = db.make_engine(database_url)
    create_schema(engine)
    sessions = db.session_factory(engine)
    clock = SimClock(time_scale, start)
    credentials = runtime_credentials(home / "runtime", profiles)
    operators = []
    for profile in profiles:
        leaf = credentials.get(profile.key)
        pipeline = OperadoraSimulada(profile, registry, sessions, clock, seed=seed, credentials=leaf)
        # SOAP 1.1 wants faults on HTTP 500: what operators' Java/.NET stacks send.
        soap = TissWsgi(pipeline, registry, max_bytes=profile.max_bytes, fault_http_status=500)
        app = PortalApp(soap, profile, clock)  # and /portal/...: the file upload a clerk does by hand
        responder = Responder(profile.registro_ans, pipeline.envelope, lambda: horario_local(clock.now()))
        operators.append(SimulatedOperator(
            profile.key, profile.nome, profile.registro_ans, tuple(profile.versoes), app, profile.max_bytes,
            FaultState(profile.key, seed), certificate_pem=_chain_pem(leaf), responder=responder,
            deduplicacao=pipeline.deduplicacao))
    return Simulator(operators, clock, host=host, port=port, on_stop=engine.dispose)


def runtime_credentials(directory: Path, profiles: Sequence[Any]) -> dict[str, Any]:
    """A CA and one e-CNPJ-like leaf per operator (``gateway.security.pki``), made on first start
    into ``directory`` (mode 0700, under the simulator home: never in the repository) and reused on
    restart, so that a client can keep trusting the same CA. A leaf about to expire, or issued by
    another CA, is issued again."""
    from gateway.security import pki

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    authority = pki.load_or_create_authority(directory)
    soon = datetime.now(UTC) + timedelta(days=1)
    leaves = {}
    for profile in profiles:
        stem = f"operadora-{profile.key}"
        try:
            leaf = pki.load_leaf(directory, stem)
        except (OSError, ValueError):
            leaf = None
        if leaf is None or leaf.not_after < soon or leaf.chain_pem[1:] != authority.chain_pem:
            cnpj = operator_cnpj(profile)
            leaf = authority.issue(profile.nome, cnpj=cnpj)
            leaf.save(directory, stem)
        leaves[profile.key] = leaf
    return leaves


def operator_cnpj(profile: Any) -> str:
    """The profile's CNPJ, else a valid one derived from its registro ANS (a sandbox identity)."""
    cnpj = getattr(profile, "cnpj", None)
    if cnpj:
        return cnpj
    base = f"{int(profile.registro_ans):08d}0001"  # root from the registro, branch 0001
    for weights in ((5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2), (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)):
        rest = sum(int(d) * w for d, w in zip(base, weights, strict=True)) % 11
        base += "0" if rest < 2 else str(11 - rest)
    return base


def _chain_pem(leaf: Any) -> bytes | None:
    return b"".join(leaf.chain_pem) if leaf is not None else None


def run(simulator: Simulator, stop: threading.Event) -> None:
    """Start, print the URLs, serve until ``stop`` is set (SIGTERM/SIGINT), then stop cleanly."""
    simulator.start()
    print(simulator.banner(), flush=True)
    print(f"pronto: {simulator.admin_url()}", flush=True)  # tests/simulator_process.py waits for this
    try:
        while not stop.wait(0.5):
            pass
    finally:
        simulator.stop()
        log.info("simulador encerrado")

