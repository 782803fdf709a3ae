"""The ceiling for bench/front.py: a WSGI app that reads the request and answers constant bytes.

    gunicorn --workers 2 --worker-class sync bench.constant_app:app

Reads the whole body (as the gateway must), then answers ``<TISS_BENCH_ANSWERS>/<service>.xml``
when that file exists (bench/front.py stores there a real gateway answer of each service, so that
both servers send as many bytes back), else a small fixed SOAP answer. Any path and method.
"""

import os
from pathlib import Path

_DEFAULT = (b'<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/'
            b'soap/envelope/"><soap:Body><ok/></soap:Body></soap:Envelope>')
_DIR = os.environ.get("TISS_BENCH_ANSWERS")
_ANSWERS = {p.stem: p.read_bytes() for p in Path(_DIR).glob("*.xml")} if _DIR else {}
_BLOCK = 64 * 1024


def app(environ, start_response):
    stream, remaining = environ["wsgi.input"], int(environ.get("CONTENT_LENGTH") or 0)
    while remaining > 0:
        chunk = stream.read(min(remaining, _BLOCK))
        if not chunk:
            break
        remaining -= len(chunk)
    body = _ANSWERS.get(environ.get("PATH_INFO", "").rsplit("/", 1)[-1], _DEFAULT)
    start_response("200 OK", [("Content-Type", "text/xml; charset=ISO-8859-1"),
                              ("Content-Length", str(len(body)))])
    return [body]
