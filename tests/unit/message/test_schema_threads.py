"""Schemas compiled from several threads: libxml2's built-in type table and one compile per schema.

The first test needs fresh processes: libxml2 fills its table once per process, so the race it
guards against happens only on a process's first compiles (see gateway.message.schema_types).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from gateway.message.schema_registry import SchemaRegistry
from tests.gateway_process import REPO

# 8 threads, each compiling its own small schema at the same moment, right after importing the
# module the gateway compiles its schemas with. Without its preparation 22 of 60 such processes
# failed or crashed (lxml 6.1.3, libxml2 2.14.6), and 6 of 24 when this test was checked without
# it: 32 all passing is not luck.
_FIRST_COMPILES = r'''
import threading
from lxml import etree
import gateway.message.schema_registry  # noqa: F401

TYPES = ["string", "int", "decimal", "date", "dateTime", "boolean", "base64Binary", "anyURI",
         "token", "long", "time", "ID", "NMTOKEN", "double", "hexBinary", "positiveInteger"]
barrier = threading.Barrier(8)
failures = []

def compile_one(n):
    xsd = '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">' + "".join(
        f'<xs:simpleType name="t{i}"><xs:restriction base="xs:{t}"><xs:pattern value=".*"/>'
        f'</xs:restriction></xs:simpleType><xs:element name="e{n}_{i}" type="t{i}"/>'
        for i, t in enumerate(TYPES)) + "</xs:schema>"
    document = etree.XML(xsd.encode())
    barrier.wait()
    try:
        etree.XMLSchema(document)
    except etree.XMLSchemaParseError as exc:
        failures.append(str(exc))

threads = [threading.Thread(target=compile_one, args=(n,)) for n in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("failures:", failures)
'''


def test_threads_compiling_their_first_schemas_at_once_do_not_break_libxml2() -> None:
    outcomes = []
    for _batch in range(8):
        runs = [subprocess.Popen([sys.executable, "-c", _FIRST_COMPILES], cwd=REPO, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(4)]
        outcomes += [(run.wait(60), run.communicate()[0]) for run in runs]
    bad = [(code, out[-500:]) for code, out in outcomes if code != 0 or "failures: []" not in out]
    assert not bad, f"{len(bad)} of {len(outcomes)} processes: {bad[:3]}"


def test_threads_asking_for_one_schema_at_once_share_one_compile(tmp_path: Path) -> None:
    registry = SchemaRegistry(tmp_path)
    barrier = threading.Barrier(6)
    got = []

    def ask() -> None:
        barrier.wait()
        got.append(registry.schema("4.03.00", "loteGuiasWS"))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 6 and all(schema is got[0] for schema in got)
