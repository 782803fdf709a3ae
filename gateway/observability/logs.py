"""Structured logs: one JSON object per line, a request id that follows a message, secrets masked.

Every line has ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``request_id`` (None
outside a request), ``pid`` and the record's extra fields (``log.info(..., extra={...})``); a
traceback goes in ``exc``. The request id is a context variable: the WSGI middleware sets it for
a SOAP call, the worker and the tracker for the delivery or the status poll of a message, so every
line logged meanwhile carries it without passing it around.

Masking (:func:`mask`) runs in the formatters, on the message, the extra fields and tracebacks:
passwords (``senhaPrestador`` and every ``senha*`` element, ``senha=``/``password=`` pairs, URL
credentials), certificates and keys (PEM blocks, ``X509Certificate`` elements) and card numbers
(``numeroCarteira``: only the last 4 characters stay).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_KEY = "tiss.request_id"  # WSGI environ key
MASK = "***"

request_id_var: ContextVar[str | None] = ContextVar("tiss_request_id", default=None)

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


def sane_request_id(value: str | None) -> str | None:
    """A client's X-Request-Id if it is safe to log and store (at most 32 of [A-Za-z0-9_-])."""
    return value if value and _SANE_REQUEST_ID.fullmatch(value) else None


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return request_id_var.get()


@contextlib.contextmanager
def request_context(request_id: str | None) -> Iterator[None]:
    """Log (and send to the operator) under ``request_id`` inside the block."""
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)


# -- masking ---------------------------------------------------------------------------------------

# Cheap pre-check: most lines contain none of these and skip the regexes.
_MAYBE_SECRET = re.compile(r"senha|carteira|password|passwd|secret|token|BEGIN|X509|://", re.IGNORECASE)
_SECRET_ELEMENT = re.compile(  # the value as text or as CDATA (both are the element's value in XML)
    r"(<(?:[\w.-]+:)?(senha\w*|X509Certificate)\b[^>]*>)(?:<!\[CDATA\[.*?\]\]>|[^<])*"
    r"(</(?:[\w.-]+:)?\2\s*>)", re.IGNORECASE | re.DOTALL)
_CARTEIRA_ELEMENT = re.compile(
    r"(<(?:[\w.-]+:)?numeroCarteira\b[^>]*>)\s*[^<]*?([^<\s]{1,4})\s*(</(?:[\w.-]+:)?numeroCarteira\s*>)",
    re.IGNORECASE)
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(?:.*?-----END \1-----|.*\Z)", re.DOTALL)
_SECRET_PAIR = re.compile(
    r"""((?:senha|password|passwd|pwd|secret|token)\w*["']?\s*[=:]\s*["']?)[^\s"'&,;<>]+""", re.IGNORECASE)
_CARTEIRA_PAIR = re.compile(r"""((?:numero_?)?carteira\w*["']?\s*[=:]\s*["']?)\w*?(\w{1,4})\b""",
                            re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(@)", re.IGNORECASE)
_SECRET_KEY = re.compile(r"senha|password|passwd|secret|token|chave|private|key_pem", re.IGNORECASE)
_CARTEIRA_KEY = re.compile(r"carteira", re.IGNORECASE)


def mask(text: str) -> str:
    """``text`` with passwords, certificates, keys and all but the last 4 of card numbers hidden."""
    if not text or not _MAYBE_SECRET.search(text):
        return text
    text = _PEM.sub(lambda m: f"-----BEGIN {m.group(1)}-----{MASK}-----END {m.group(1)}-----", text)
    text = _SECRET_ELEMENT.sub(rf"\1{MASK}\3", text)
    text = _CARTEIRA_ELEMENT.sub(rf"\1{MASK}\2\3", text)
    text = _SECRET_PAIR.sub(rf"\1{MASK}", text)
    text = _CARTEIRA_PAIR.sub(rf"\1{MASK}\2", text)
    return _URL_PASSWORD.sub(rf"\1{MASK}\2", text)


def mask_field(key: str, value: Any) -> Any:
    """An extra field's value, masked by its name (``senha``, ``carteira``...) and by its content."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if _SECRET_KEY.search(key):
        return MASK
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): mask_field(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [mask_field(key, v) for v in value]
    text = mask(str(value))
    if _CARTEIRA_KEY.search(key) and len(text) > 4:
        return MASK + text[-4:]
    return text


# -- formatters ------------------------------------------------------------------------------------

# Attributes every LogRecord has: anything else on a record is an extra field.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "request_id", "taskName"}


def _request_id(record: logging.LogRecord) -> str | None:
    return getattr(record, "request_id", None) or request_id_var.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
            "request_id": _request_id(record),
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = mask_field(key, value)
        if record.exc_info:
            entry["exc"] = mask(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc"] = mask(record.exc_text)
        if record.stack_info:
            entry["stack"] = mask(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Plain lines (``--log-format texto``), masked like the JSON ones, with the request id."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = _request_id(record) or "-"
        return mask(super().format(record))


def formatter(json_lines: bool) -> logging.Formatter:
    return JsonFormatter() if json_lines else TextFormatter()


# Loggers kept quieter than the root: SQLAlchemy logs every statement with its parameters once its
# logger is enabled for INFO; zeep's transport at DEBUG decodes every message as UTF-8 to log it and
# fails the call on ISO-8859-1 (gateway.delivery.client logs the messages itself at DEBUG).
_QUIET = {"sqlalchemy": logging.WARNING, "spyne.application.client": logging.CRITICAL,
          "zeep.transports": logging.INFO}


def configure_logging(json_lines: bool = True, level: str | int = "INFO") -> None:
    """The root logger of a long-running process (``serve``, ``worker``): one handler on stderr,
    JSON or masked text. Python warnings become log records too. Safe to call again."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_tiss", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(json_lines))
    handler._tiss = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(quiet)
    logging.captureWarnings(True)
