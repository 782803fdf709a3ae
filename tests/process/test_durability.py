"""An acknowledged lote survives the crash of the server that acknowledged it.

SQLite runs in WAL mode with ``synchronous = NORMAL`` (gateway.storage.db): a COMMIT has written
the transaction to the WAL before the answer leaves, so killing every gunicorn process (SIGKILL,
no chance to flush anything) right after the answer loses nothing; the next process recovers the
WAL. (NORMAL does not sync the WAL on every commit: an OS crash or power loss can lose the last
transactions; PostgreSQL with its default ``synchronous_commit = on`` does not.)
"""

import os
import re
import signal
from pathlib import Path

import requests
from sqlalchemy import select

from gateway.storage import db
from gateway.storage.models import Entrega, Lote, Mensagem, Protocolo
from tests.factory import build_lote
from tests.gateway_process import GatewayProcess

PROTOCOLO = re.compile(rb"<ans:numeroProtocolo>([0-9]{12})</ans:numeroProtocolo>")


def test_acknowledged_lotes_survive_sigkill_of_the_server(tmp_path: Path, tiss_home: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.sqlite'}"
    server = GatewayProcess(url, tiss_home, workers=2, log_dir=tmp_path).start()
    acknowledged = {}
    try:
        for i in range(5):
            data = build_lote("sp-sadt", 10, envelope=True, numero_lote=f"K{i}", sequencial=f"k{i}")
            response = requests.post(server.url("/tiss/v4_03_00/tissLoteGuias"), data=data, timeout=60,
                                     headers={"Content-Type": "text/xml; charset=ISO-8859-1"})
            assert response.status_code == 200, response.text[:2000]
            acknowledged[f"K{i}"] = PROTOCOLO.search(response.content).group(1).decode()
    finally:
        if server.process is not None:
            os.killpg(server.process.pid, signal.SIGKILL)  # arbiter and workers, at once
            server.process.wait(10)
            server.process = None
        server.close()
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            lotes = dict(connection.execute(select(Lote.numero_lote, Protocolo.numero)
                                            .join(Protocolo, Protocolo.id == Lote.protocolo_id)).all())
            assert lotes == acknowledged
            answers = connection.execute(select(Mensagem.id).where(Mensagem.direcao == "saida")).all()
            assert len(answers) == 5
            assert len(connection.execute(select(Entrega.id)).all()) == 5  # deliveries scheduled with them
    finally:
        engine.dispose()
