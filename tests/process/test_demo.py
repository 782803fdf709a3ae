"""The README's run command: ``serve --demo`` brings up the gateway, the five simulated operators and a
worker; a lote sent to it is delivered and its status moves with the simulated clock."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from lxml import etree

from gateway.message.services import ANS_NS
from tests.factory import Party, build_lote, build_request
from tests.gateway_process import REPO, cli, free_port, free_port_block

NS = {"ans": ANS_NS}
PASA = Party(registro_ans="331988", codigo_na_operadora="1004567")
IPASGO = Party(registro_ans="424188", codigo_na_operadora="5012377")
UNIMED = Party(registro_ans="331872", codigo_na_operadora="20345")


def _post(url: str, body: bytes) -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": "text/xml"}, timeout=30)


def test_serve_demo_delivers_a_lote_and_its_status_moves(tmp_path: Path) -> None:
    port, base = free_port(), free_port_block(6)
    runtime = tmp_path / "run"
    runtime.mkdir()
    env = {**os.environ, "TISS_GATEWAY_HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(runtime)}
    log = (tmp_path / "demo.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--demo", "--bind", f"127.0.0.1:{port}",
         "--simulator", f"127.0.0.1:{base}", "--workers", "2"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    gateway = f"http://127.0.0.1:{port}/tiss/v4_03_00"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "demo.log").read_text()
            time.sleep(0.3)
        sent = _post(f"{gateway}/tissLoteGuias", build_lote("consulta", 2, envelope=True, party=PASA,
                                                             numero_lote="501", sequencial="501"))
        assert sent.status_code == 200, sent.text
        protocolo = re.search(rb"<ans:numeroProtocolo>(\w+)<", sent.content).group(1).decode()
        status, seen = "1", set()
        deadline = time.monotonic() + 90
        sequencial = 600
        while status == "1" and time.monotonic() < deadline:
            time.sleep(2)
            sequencial += 1
            answer = _post(f"{gateway}/tissSolicitacaoStatusProtocolo", build_request(
                "solicitacaoStatusProtocoloWS", envelope=True, sequencial=str(sequencial),
                numero_protocolo=protocolo, party=PASA))
            status = etree.fromstring(answer.content).findtext(".//ans:statusProtocolo", namespaces=NS)
            seen.add(status)
        assert status not in (None, "1"), ((tmp_path / "demo.log").read_text()[-5000:], seen)

        # IPASGO takes only signed messages: the demo signs with the demo provider's certificate.
        sent = _post(f"{gateway}/tissLoteGuias", build_lote("consulta", 1, envelope=True, party=IPASGO,
                                                             numero_lote="502", sequencial="502"))
        assert sent.status_code == 200, sent.text
        _wait_delivered(tmp_path, "424188")
        # Unimed takes only 4.03.00: a 4.02.00 lote is converted and delivered (to its 4.03.00 address).
        lote = build_lote("consulta", 1, envelope=True, party=UNIMED, numero_lote="503", sequencial="503",
                          version="4.02.00")
        sent = _post(gateway.replace("v4_03_00", "v4_02_00") + "/tissLoteGuias", lote)
        assert sent.status_code == 200, sent.text
        _wait_delivered(tmp_path, "331872")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def _wait_delivered(home: Path, registro: str) -> None:
    """The operator's first delivery is delivered (``entregas list``)."""
    deadline = time.monotonic() + 60
    while True:
        listed = cli("entregas", "list", "--operadora", registro, "--json", home=home)
        rows = json.loads(listed.stdout) if listed.returncode == 0 else []
        if rows and rows[0]["estado"] == "entregue":
            return
        assert time.monotonic() < deadline, (rows, (home / "demo.log").read_text()[-5000:])
        time.sleep(1)
