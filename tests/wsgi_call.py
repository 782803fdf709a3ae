"""A POST to a WSGI app in process, as gunicorn would hand it over (no HTTP, no threads)."""

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from wsgiref.util import setup_testing_defaults

WsgiApp = Callable[[dict, Callable[..., object]], Iterable[bytes]]


@dataclass(frozen=True)
class Posted:
    status: str  # e.g. "200 OK"
    body: bytes
    environ: dict  # as the app left it (the pipeline writes its outcome there)


def post(app: WsgiApp, path: str, data: bytes, *, remote_addr: str = "127.0.0.1") -> Posted:
    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update({"REQUEST_METHOD": "POST", "PATH_INFO": path,
                    "CONTENT_TYPE": "text/xml; charset=utf-8", "CONTENT_LENGTH": str(len(data)),
                    "wsgi.input": io.BytesIO(data), "REMOTE_ADDR": remote_addr})
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        seen["status"] = status

    body = b"".join(app(environ, start_response))
    return Posted(seen["status"], body, environ)
