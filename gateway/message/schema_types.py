"""libxml2's table of XML Schema built-in types, filled once before any thread compiles a schema.

libxml2 fills that table (xs:string, xs:date...) when the process compiles its first schema, and
without a lock. Threads that compile their first schemas at the same moment, such as the
delivery worker's threads or signxml's xmldsig schema beside ours, leave it broken for the life
of the process: every later compile fails ("Internal error: xmlSchemaPValAttrNodeValue, the given
type is not a built-in type", "Document is not valid XML Schema"), or the process dies (double
free, segfault). Seen in CI as a worker that stopped delivering. With lxml 6.1.3 and libxml2
2.14.6, 8 threads that each compiled a small schema at once failed in 22 of 60 fresh
processes, and in none of 200 after :func:`prepare`.

Call :func:`prepare` at import of every module that compiles schemas, before threads start.
"""

from __future__ import annotations

import threading

from lxml import etree

_EMPTY_SCHEMA = b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>'
_lock = threading.Lock()
_prepared = False


def prepare() -> None:
    """Compile an empty schema once per process, under a lock: libxml2 builds its table there."""
    global _prepared
    with _lock:
        if not _prepared:
            etree.XMLSchema(etree.XML(_EMPTY_SCHEMA))
            _prepared = True
