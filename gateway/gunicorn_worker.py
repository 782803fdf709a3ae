"""gunicorn's threaded worker with bounded read time: no client can hold a thread, or the worker,
by sending slowly or not at all.

gunicorn's gthread worker (the base class) accepts connections in a main loop and serves each
request in a thread of a pool (``threads``); kept-alive connections wait in the main loop's poller.
It reads a request with blocking ``recv`` and no time limit: a client sending a byte a second
(slow loris) keeps a thread for as long as it likes, one sending nothing keeps one for 5 s, and
closing a connection lingers up to 2 s *in the main loop* for a client that does not close. Here:

- **The head in the poller.** A new connection, and a kept-alive one that turns readable, waits
  in the main loop until its whole head (request line and headers) has arrived, read without
  blocking: it costs a file descriptor and a buffer, never a thread. A head not complete within
  ``ReadLimits.header_s`` gets 408 (nothing, if nothing came) and the connection is closed. Under
  TLS the handshake is done there too, without blocking, within the same deadline (HTTP/1.1 only:
  gunicorn's ``http_protocols`` stays ``h1``).
- **The body against a deadline.** A body of known length (up to :data:`BUFFER_MAX`) is read whole
  before the application runs, each ``recv`` waiting at most what is left of ``body_s`` + length /
  ``body_rate`` (at most ``body_max_s``): a late body gets 408, the application never sees half a
  message. Chunked bodies are read by the application under the same kind of deadline.
- **Closing in the poller.** A connection that ends after an answer is half-closed and drained from
  the poller (up to :data:`LINGER_S`), so the main loop never waits for a client.

Used by ``gateway.deploy_settings`` (``worker_class``) for ``tiss-gateway serve`` and
``gunicorn.conf.py`` alike. Built on gunicorn 27's gthread (``TConn``, ``enqueue_req``,
``finish_request``, ``keepalived_conns``).
"""

from __future__ import annotations

import contextlib
import errno
import io
import selectors
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import gunicorn
from gunicorn import http
from gunicorn import sock as gunicorn_sock
from gunicorn.http.body import LengthReader
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import TConn, ThreadWorker

from gateway import deploy_settings
from gateway.delivery import bulkhead
from gateway.storage import db

HEAD_CHUNK = 16 * 1024  # one non-blocking recv of a head in the main loop
HEAD_MAX = 64 * 1024  # a head this long goes to a thread as it is (gunicorn's header limits apply)
BUFFER_MAX = 16 * 1024 * 1024  # a 15 MiB lote and its envelope, as nginx's client_max_body_size
LINGER_S = 2.0  # as gunicorn's close_graceful
LINGER_MAX = 64 * 1024
TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
             b"Content-Length: 42\r\n\r\nrequisicao incompleta no prazo de leitura\n")
_WAITING = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class ReadTimeout(Exception):
    """The head or body did not arrive in time. Not an OSError: gthread hands it to
    :meth:`DeadlineWorker.handle_error`, which answers 408."""


class DeadlineReader:
    """The socket as gunicorn's request parser reads it: each ``recv`` waits at most until the
    connection's deadline (or less, if gunicorn set a shorter timeout itself)."""

    def __init__(self, sock: socket.socket, conn: DeadlineConn):
        self._sock = sock
        self._conn = conn

    def recv(self, size: int) -> bytes:
        deadline = self._conn.deadline
        if deadline is None:
            return self._sock.recv(size)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ReadTimeout(self._conn.reading)
        previous = self._sock.gettimeout()
        self._sock.settimeout(remaining if not previous else min(remaining, previous))
        try:
            return self._sock.recv(size)
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise ReadTimeout(self._conn.reading) from None
            raise  # gunicorn's own, shorter timeout (draining a body it did not need)
        finally:
            self._sock.settimeout(previous)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class DeadlineConn(TConn):
    """A connection with the head read so far in the main loop and the deadline of what is being
    read (None: nothing is; the application runs or the connection waits in the poller)."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any,
                 linger: Callable[[socket.socket], None]):
        super().__init__(cfg, sock, client, server)
        self.head = bytearray()
        self.handshaken = not cfg.is_ssl
        self.deadline: float | None = None
        self.reading = "cabeçalho"
        self._linger = linger

    def init(self) -> None:
        if self.initialized:  # type: ignore[has-type]  # gunicorn's, untyped
            return
        if isinstance(self.sock, ssl.SSLSocket):  # the handshake was done in the poller
            self.initialized = True
            self.sock.setblocking(True)
            self.parser = http.get_parser(self.cfg, self.sock, self.client)
        else:
            super().init()
        unreader = getattr(self.parser, "unreader", None)
        if isinstance(unreader, SocketUnreader):
            unreader.sock = DeadlineReader(unreader.sock, self)
        self.feed_head()

    def feed_head(self) -> None:
        """Hand the bytes read in the main loop to the parser (once it exists)."""
        if self.head and self.parser is not None:
            self.parser.unreader.unread(bytes(self.head))
            self.head.clear()

    def close(self, graceful: bool = False) -> None:
        if graceful:
            self._linger(self.sock)
        else:
            super().close()


class DeadlineWorker(ThreadWorker):
    """gthread with the head read in the poller, bodies read against a deadline, lingering closes in
    the poller; :class:`gateway.deploy_settings.ReadLimits` from the environment."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.limits = deploy_settings.ReadLimits.from_env()
        self.heads: deque[DeadlineConn] = deque()  # waiting for a head, by deadline
        self.lingering: deque[tuple[float, socket.socket]] = deque()
        self._tls: ssl.SSLContext | None = None

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        """In the arbiter, before any fork: this class hooks into gthread's internals of gunicorn 27."""
        if gunicorn.version_info[0] != 27:
            raise RuntimeError(f"{cls.__qualname__} é feito para o gthread do gunicorn 27, "
                               f"não {gunicorn.__version__}")
        super().check_config(cfg, log)

    def init_process(self) -> None:
        db.expect_threads(self.cfg.threads)  # before the application makes its engine
        bulkhead.expect_threads(self.cfg.threads)  # relays may hold at most half of them
        super().init_process()

    def run(self) -> None:
        try:
            super().run()
        finally:
            for conn in self.heads:
                conn.close()
            for _deadline, sock in self.lingering:
                sock.close()

    # -- main loop: heads ---------------------------------------------------------------------------
    def accept(self, listener: socket.socket) -> None:
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._await_head(DeadlineConn(self.cfg, sock, client, listener.getsockname(), self._linger))

    def on_client_socket_readable(self, conn: DeadlineConn, client: socket.socket) -> None:
        """A kept-alive connection's next request is coming: its head is read here too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_head(conn)

    def _await_head(self, conn: DeadlineConn) -> None:
        conn.deadline = time.monotonic() + self.limits.header_s
        conn.reading = "cabeçalho"
        self.heads.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, conn))

    def _on_head_readable(self, conn: DeadlineConn, _sock: socket.socket) -> None:
        if not conn.handshaken and not self._shake_hands(conn):
            return
        while True:
            try:
                data = conn.sock.recv(HEAD_CHUNK)
            except _WAITING:
                return
            except OSError:
                data = b""
            if not data:  # the client went away
                self._close_head(conn)
                return
            conn.head += data
            if b"\r\n\r\n" in conn.head or b"\n\n" in conn.head or len(conn.head) >= HEAD_MAX:
                self._dispatch(conn)  # bare LF: gunicorn refuses it (400) at once
                return
            if not (isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending()):
                return  # else TLS holds decrypted bytes the poller cannot see

    def _shake_hands(self, conn: DeadlineConn) -> bool:
        """One step of the TLS handshake, without blocking; True once it is done."""
        try:
            if not isinstance(conn.sock, ssl.SSLSocket):
                self.poller.unregister(conn.sock)
                if self._tls is None:  # once per worker (gunicorn builds one per connection)
                    self._tls = gunicorn_sock.ssl_context(self.cfg)
                conn.sock = self._tls.wrap_socket(conn.sock, server_side=True, do_handshake_on_connect=False,
                                                  suppress_ragged_eofs=self.cfg.suppress_ragged_eofs)
                self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, conn))
            conn.sock.do_handshake()
        except _WAITING:
            return False
        except OSError as e:  # no certificate where one is required, not TLS at all, gone...
            self.log.debug("handshake TLS recusado de %s: %s", _peer(conn.client), e)
            self._close_head(conn)
            return False
        conn.handshaken = True
        return True

    def _dispatch(self, conn: DeadlineConn) -> None:
        self._drop_head(conn)
        conn.data_ready = True  # gthread's handle() must not wait for data again
        self.enqueue_req(conn)

    def _drop_head(self, conn: DeadlineConn) -> None:
        self.heads.remove(conn)
        with contextlib.suppress(KeyError, ValueError):  # a failed TLS wrap left it unregistered
            self.poller.unregister(conn.sock)

    def murder_pending(self) -> None:
        """Called by gthread's loop about once a second: heads and lingering closes past their time."""
        super().murder_pending()
        now = time.monotonic()
        while self.heads and self.heads[0].deadline <= now:  # type: ignore[operator]
            self._close_head(self.heads[0], timed_out=True)
        if not self.alive:  # stopping: connections that sent nothing will not be served
            for conn in [c for c in self.heads if not c.head]:
                self._close_head(conn)
        while self.lingering and self.lingering[0][0] <= now:
            self._stop_lingering(self.lingering[0][1])

    def _close_head(self, conn: DeadlineConn, *, timed_out: bool = False) -> None:
        """Close a connection waiting for its head; 408 if it timed out after sending something."""
        self._drop_head(conn)
        self.nr_conns -= 1
        if not (timed_out and conn.head):
            conn.close()
            return
        self.log.warning("cabeçalho incompleto em %.0f s de %s: 408", self.limits.header_s,
                         _peer(conn.client))
        _discard_input(conn.sock)  # unread input would turn the close into a reset
        with contextlib.suppress(OSError):
            conn.sock.send(TIMED_OUT)
        self._linger(conn.sock)

    # -- main loop: lingering closes ------------------------------------------------------------------
    def _linger(self, sock: socket.socket) -> None:
        """Close after the client has read the answer: half-close now, drain from the poller until
        the client closes or :data:`LINGER_S` (gunicorn's close_graceful, without waiting)."""
        try:
            sock.setblocking(False)
            sock.shutdown(socket.SHUT_WR)
            self.poller.register(sock, selectors.EVENT_READ, self._on_linger_readable)
        except (OSError, ValueError, KeyError):
            sock.close()
            return
        self.lingering.append((time.monotonic() + LINGER_S, sock))

    def _on_linger_readable(self, sock: socket.socket) -> None:
        if not _discard_input(sock):
            self._stop_lingering(sock)

    def _stop_lingering(self, sock: socket.socket) -> None:
        self.lingering = deque(item for item in self.lingering if item[1] is not sock)
        with contextlib.suppress(KeyError, ValueError):
            self.poller.unregister(sock)
        sock.close()

    # -- threads: the request -----------------------------------------------------------------------
    def handle(self, conn: DeadlineConn) -> Any:
        if conn.deadline is None:  # a pipelined request: its head is already buffered, or comes now
            conn.deadline = time.monotonic() + self.limits.header_s
        conn.feed_head()
        try:
            return super().handle(conn)
        finally:
            conn.deadline = None

    def handle_request(self, req: Any, conn: DeadlineConn) -> bool:
        reader = getattr(req.body, "reader", None)
        length = reader.length if isinstance(reader, LengthReader) else None
        conn.deadline = time.monotonic() + self.limits.body_deadline_s(length)
        conn.reading = "corpo"
        buffered = bool(length and length <= BUFFER_MAX)
        if buffered and length is not None:
            _read_body(req, conn.sock, length)
            conn.deadline = None  # nothing more to read: the application runs without a deadline
        try:
            return super().handle_request(req, conn)
        finally:
            conn.deadline = None
            if buffered:  # what the application left unread is in memory, not on the socket:
                req.body = io.BytesIO()  # gunicorn's drain would count it and close past 64 KiB

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        if not isinstance(exc, ReadTimeout):
            super().handle_error(req, client, addr, exc)
            return
        self.log.warning("%s incompleto no prazo de leitura de %s: 408", exc, _peer(addr))
        with contextlib.suppress(OSError):
            client.sendall(TIMED_OUT)


def _read_body(req: Any, sock: socket.socket, length: int) -> None:
    """The whole body, before the application: a late body is a 408, not half a message."""
    if getattr(req, "_expected_100_continue", False):  # gunicorn sends it in wsgi.create otherwise
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        req._expected_100_continue = False
    data = req.body.read(length)
    # BytesIO shares the bytes: a read of the whole body returns them without a copy.
    req.body = io.BytesIO(data)


def _discard_input(sock: socket.socket) -> bool:
    """Read and drop what the client sent (non-blocking); False once it closed or failed."""
    for _ in range(LINGER_MAX // HEAD_CHUNK):
        try:
            if not sock.recv(HEAD_CHUNK):
                return False
        except _WAITING:
            return True
        except OSError:
            return False
    return False  # it keeps sending: enough


def _peer(addr: Any) -> str:
    return addr[0] if isinstance(addr, tuple) and addr else str(addr or "-")
