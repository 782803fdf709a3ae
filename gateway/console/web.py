"""Plain WSGI for the console: the request as the pages read it, responses with the security
headers every page carries, cookies, forms, static files.

No framework: the console is a handful of GET pages and four POST forms, and the SOAP front that
shares the process must not pay for more imports than it needs.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email import policy as email_policy
from email.parser import BytesParser
from functools import cached_property
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, quote

StartResponse = Callable[..., object]
MAX_FORM_BYTES = 64 * 1024
MAX_UPLOAD_BYTES = 16 * 1024 * 1024  # a multipart form with a file (a portal's return: 15 MiB at most)
PREFIX = "/console"

# No inline script or style anywhere (the SVG charts use presentation attributes): CSP can forbid both.
SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
                                "base-uri 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


class FormTooLarge(Exception):
    pass


@dataclass
class Request:
    environ: dict

    @property
    def method(self) -> str:
        return self.environ.get("REQUEST_METHOD", "GET").upper()

    @cached_property
    def path(self) -> str:
        """The path under ``/console`` (``/`` for the console's root); WSGI gives it as latin-1."""
        raw = self.environ.get("PATH_INFO", "") or "/"
        try:
            raw = raw.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            raw = "/\x00"  # matches no route: 404
        rest = raw[len(PREFIX):] if raw.startswith(PREFIX) else raw
        return rest or "/"

    @cached_property
    def full_path(self) -> str:
        query = self.environ.get("QUERY_STRING", "")
        return PREFIX + self.path + (f"?{query}" if query else "")

    @cached_property
    def query(self) -> dict[str, str]:
        return _first_values(self.environ.get("QUERY_STRING", ""))

    @cached_property
    def form(self) -> dict[str, str]:
        """A urlencoded POST body (FormTooLarge past MAX_FORM_BYTES), or the text fields of a
        multipart one (past MAX_UPLOAD_BYTES; its files in :attr:`arquivos`)."""
        try:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        content_type = self.environ.get("CONTENT_TYPE", "")
        kind = content_type.split(";")[0].strip().lower()
        if length > (MAX_UPLOAD_BYTES if kind == "multipart/form-data" else MAX_FORM_BYTES):
            raise FormTooLarge
        body = self.environ["wsgi.input"].read(length) if length > 0 else b""
        if kind == "multipart/form-data":
            fields, self.__dict__["arquivos"] = _multipart(content_type, body)
            return fields
        if kind not in ("application/x-www-form-urlencoded", ""):
            return {}
        return _first_values(body.decode("utf-8", "replace"))

    @cached_property
    def arquivos(self) -> dict[str, tuple[str, bytes]]:
        """The files of a multipart POST: field name -> (file name, bytes)."""
        self.form  # noqa: B018 - parsing the form fills this
        return self.__dict__.get("arquivos", {})

    @cached_property
    def cookies(self) -> dict[str, str]:
        jar = SimpleCookie()
        try:
            jar.load(self.environ.get("HTTP_COOKIE", ""))
        except CookieError:
            return {}
        return {name: morsel.value for name, morsel in jar.items()}

    @property
    def endereco(self) -> str | None:
        return (self.environ.get("REMOTE_ADDR") or "")[:45] or None

    @property
    def https(self) -> bool:
        forwarded = self.environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip().lower()
        return self.environ.get("wsgi.url_scheme") == "https" or forwarded == "https"


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """(text fields, files) of a multipart/form-data body; the first value of each name. Parsed by
    the standard library's MIME parser (no disk, no size beyond the body's)."""
    message = BytesParser(policy=email_policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace") + body)
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    if not message.is_multipart():
        return fields, files
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name in fields or name in files:
            continue
        data = part.get_payload(decode=True)
        payload = data if isinstance(data, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = (filename, payload)
        else:
            fields[name] = payload.decode("utf-8", "replace")
    return fields, files


def _first_values(text: str) -> dict[str, str]:
    try:
        parsed = parse_qs(text, keep_blank_values=True, max_num_fields=200)
    except ValueError:
        return {}
    return {key: values[0] for key, values in parsed.items() if values}


@dataclass
class Response:
    status: str = "200 OK"
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    cache: str = "no-store"  # authenticated pages are never cached

    def __call__(self, start_response: StartResponse) -> Iterable[bytes]:
        headers = [("Content-Type", self.content_type), ("Content-Length", str(len(self.body))),
                   ("Cache-Control", self.cache), *SECURITY_HEADERS, *self.headers]
        start_response(self.status, headers)
        return [self.body]

    def set_cookie(self, name: str, value: str, *, secure: bool, max_age: int | None = None,
                   path: str = PREFIX) -> Response:
        parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Strict"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if secure:
            parts.append("Secure")
        self.headers.append(("Set-Cookie", "; ".join(parts)))
        return self

    def delete_cookie(self, name: str, *, secure: bool) -> Response:
        return self.set_cookie(name, "", secure=secure, max_age=0)


def html(body: str, status: str = "200 OK") -> Response:
    return Response(status, body.encode("utf-8"))


def redirect(location: str, status: str = "303 See Other") -> Response:
    return Response(status, b"", "text/plain; charset=utf-8", [("Location", location)])


def text(status: str, message: str) -> Response:
    return Response(status, message.encode("utf-8"), "text/plain; charset=utf-8")


def attachment(body: bytes, filename: str, content_type: str) -> Response:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)[:100] or "mensagem.xml"
    disposition = f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(safe)}"
    return Response("200 OK", body, content_type, [("Content-Disposition", disposition)])


def safe_next(target: str | None) -> str:
    """Where to go after login: a console path only (no open redirect)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target \
            and all(c.isprintable() for c in target):
        return target
    return PREFIX + "/lotes"


class StaticFiles:
    """The console's CSS and JS, read once per process."""

    def __init__(self, directory: Path):
        self.files: dict[str, tuple[bytes, str]] = {}
        for path in directory.iterdir():
            if path.is_file() and path.suffix in (".css", ".js", ".svg"):
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                charset = "; charset=utf-8" if kind.startswith("text/") or kind.endswith("javascript") else ""
                self.files[path.name] = (path.read_bytes(), kind + charset)

    def get(self, name: str) -> Response | None:
        found = self.files.get(name)
        if found is None:
            return None
        return Response("200 OK", found[0], found[1], cache="public, max-age=3600")
