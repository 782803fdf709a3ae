"""The upload-file channel end to end over HTTP (issue 18): CASSEMS configured with
``canal = "arquivo"`` and a drop folder; its lote of 60 guides becomes two mensagemTISS files named
and hashed as CASSEMS takes them; the clerk downloads them, uploads them to the simulated portal,
records the protocols (one typed, one from the portal's receipt) and uploads what the portal gives
back; the ERP's status query and the console then show what CASSEMS's web service says."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import requests
from lxml import etree
from sqlalchemy import func, select

from gateway.message import arquivo as forma
from gateway.message import hashing, reader
from gateway.storage.models import Entrega, Lote, Mensagem, Protocolo
from simulator.profile import load_profile
from tests.console_client import SENHA, Console, add_outro_prestador, add_usuarios
from tests.db_fixtures import BACKENDS
from tests.factory import build_request
from tests.forwarding_stack import NS, OPERADORAS, Stack, new_number, party, wait_until, write_config
from tests.gateway_process import GatewayProcess
from tests.simulator_process import SimulatorProcess

pytestmark = pytest.mark.slow
CASSEMS = OPERADORAS["cassems"][0]
CAPITALPREV = OPERADORAS["capitalprev"][0]  # emits the demonstrativo de análise de conta
_NOME = re.compile(r"[0-9]{20}_[0-9A-F]{32}\.xml")


@pytest.fixture(scope="module", params=BACKENDS)
def stack(request: pytest.FixtureRequest, tiss_home: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("arquivo")
    url = f"sqlite:///{home / 'gateway.sqlite'}" if request.param == "sqlite" \
        else request.getfixturevalue("pg_schemas")()
    simulator = SimulatorProcess(home / "sim").start()
    config = write_config(home, simulator)
    pasta = home / "pasta-cassems"
    pasta.mkdir()
    text = config.read_text(encoding="utf-8")  # CASSEMS and Capital Prev: portal only, no web service
    for registro, canal in ((CASSEMS, f'canal = "arquivo"\npasta_arquivos = "{pasta}"\n'),
                            (CAPITALPREV, 'canal = "arquivo"\n')):
        enderecos = re.search(rf"\[operadoras\.{registro}\.enderecos\]\n(?:\".*\n)+", text)
        assert enderecos
        text = text.replace(enderecos.group(0), canal)
    config.write_text(text, encoding="utf-8")
    gateway = GatewayProcess(url, tiss_home, demo=False, extra_args=("--config", str(config))).start()
    found = Stack(simulator, gateway, config)
    found.pasta = pasta  # type: ignore[attr-defined]
    add_outro_prestador(found)
    add_usuarios(found)
    try:
        yield found
    finally:
        found.close()
        gateway.close()
        simulator.close()


def _portal(stack: Stack, method: str, path: str, key: str = "cassems", **kwargs) -> requests.Response:
    return requests.request(method, stack.simulator.url(key, path), auth=("demo", "demo"), timeout=60,
                            **kwargs)


def _lote_id(stack: Stack, protocolo: str) -> int:
    with stack.db.connect() as connection:
        return connection.execute(select(Lote.id).join(Protocolo, Lote.protocolo_id == Protocolo.id)
                                  .where(Protocolo.numero == protocolo)).scalar_one()


def _em_arquivos(stack: Stack, operadora: str, guias: int) -> tuple[str, str, list[Entrega]]:
    """A lote sent and turned into its portal files by a worker: (numeroLote, protocolo, its parts)."""
    worker = stack.worker()
    try:
        numero, protocolo = stack.send_lote(operadora, guias)
        entregas = cast(list[Entrega], wait_until(lambda: stack.delivered(protocolo), timeout=90,
                                                  what="arquivos gerados"))
    finally:
        worker.close()
    return numero, protocolo, entregas


def _mensagens(stack: Stack) -> int:
    with stack.db.connect() as connection:
        return connection.execute(select(func.count()).select_from(Mensagem)).scalar_one()


def _arquivos(page: str) -> list[tuple[int, str]]:
    linhas = re.findall(r'data-arquivo="(\d+)">.*?class="baixar-arquivo"[^>]*>([^<]+)<', page, re.S)
    return [(int(i), n) for i, n in linhas]


def _valores(situacao: etree._Element) -> tuple[str, dict[str, tuple[str, ...]]]:
    """(statusProtocolo, numeroGuiaPrestador -> its vlInformadoGuia values) of a situação answer."""
    status = situacao.findtext(".//ans:statusProtocolo", namespaces=NS)
    guias = {g.findtext("ans:numeroGuiaPrestador", namespaces=NS):
             tuple(v.text for v in g.find("ans:vlInformadoGuia", namespaces=NS))
             for g in situacao.iterfind(".//ans:guiasTISS/*/ans:guias", namespaces=NS)}
    return status, guias


def _na_operadora(stack: Stack, key: str, numero_protocolo: str) -> etree._Element:
    """What the operator's web service answers of its protocol (the web-service channel's view)."""
    body = build_request("solicitacaoStatusProtocoloWS", envelope=True, sequencial=new_number(),
                         numero_protocolo=numero_protocolo, party=party(key), version="4.03.00")
    answer = requests.post(stack.simulator.service_url(key, "tissSolicitacaoStatusProtocolo"), data=body,
                           headers={"Content-Type": "text/xml; charset=ISO-8859-1"}, timeout=60)
    assert answer.status_code == 200, answer.text[:2000]
    return etree.fromstring(answer.content)


def _retorno(console: Console, lote_id: int, nome: str, corpo: bytes) -> str:
    """Uploads what the portal gave back on the lote's page; the page it redirects to."""
    console.get(f"/lotes/{lote_id}")  # a fresh CSRF token
    feito = console.http.post(console.url(f"/lotes/{lote_id}/retorno"), data={"csrf": console.csrf},
                              files={"retorno": (nome, corpo, "text/xml")}, allow_redirects=False)
    assert feito.status_code == 303, feito.text[:2000]
    return feito.headers["Location"]


def test_lote_cassems_por_arquivo(stack: Stack) -> None:
    numero, protocolo, entregas = _em_arquivos(stack, "cassems", 60)
    assert [e.numero_lote for e in entregas] == [f"{numero}-1", f"{numero}-2"]
    assert all(e.numero_protocolo is None and e.proxima_consulta_em is None for e in entregas)  # not polled

    console = Console(stack.gateway.base_url)
    assert console.login("clinica.demo", SENHA).status_code == 303
    lote_id = _lote_id(stack, protocolo)
    page = console.get(f"/lotes/{lote_id}")
    assert page.status_code == 200
    arquivos = _arquivos(page.text)
    assert len(arquivos) == 2 and "aguardando envio pelo portal" in page.text

    # Named and hashed as CASSEMS takes them: sequencial in 20 digits _ hash, ISO-8859-1.
    profile = load_profile("cassems")
    corpos = {}
    for (arquivo_id, nome), entrega in zip(arquivos, entregas, strict=True):
        baixado = console.get(f"/lotes/{lote_id}/arquivos/{arquivo_id}")
        assert baixado.status_code == 200
        message = reader.read(baixado.content)
        assert message.kind == "mensagemTISS" and message.encoding.upper() == "ISO-8859-1"
        checked = hashing.check(message.root, message.encoding, profile.hash_policy(), baixado.content)
        assert checked.accepted, checked
        assert _NOME.fullmatch(nome)
        assert nome == forma.nome_arquivo(entrega.sequencial or "", checked.found or "")
        assert b"senhaPrestador" not in baixado.content
        corpos[nome] = baixado.content
    baixado = console.get(f"/lotes/{lote_id}/arquivos.zip")
    assert baixado.status_code == 200, baixado.text[:3000]
    zipped = zipfile.ZipFile(io.BytesIO(baixado.content))
    assert {n: zipped.read(n) for n in zipped.namelist()} == corpos
    pasta: Path = stack.pasta  # type: ignore[attr-defined]
    assert {p.name: p.read_bytes() for p in pasta.iterdir() if p.name in corpos} == corpos
    assert not [p for p in pasta.iterdir() if p.name.startswith(".")]  # no temporary left behind

    # The portal: part 1's protocol typed by the clerk, part 2's receipt uploaded.
    recibos = []
    for nome, corpo in corpos.items():
        resposta = _portal(stack, "POST", "/portal/upload", data=corpo,
                           headers={"Content-Type": "text/xml", "X-Arquivo-Nome": nome})
        assert resposta.status_code == 200, resposta.text
        recibos.append(resposta.content)
    numeros = [reader.read(r).root.findtext(".//ans:numeroProtocolo", namespaces=NS) for r in recibos]
    assert all(numeros)
    console.get(f"/lotes/{lote_id}")
    feito = console.post(f"/lotes/{lote_id}/arquivos/{arquivos[0][0]}/protocolo", {"protocolo": numeros[0]})
    assert feito.status_code == 303 and "registrado" in feito.headers["Location"]
    feito = console.http.post(console.url(f"/lotes/{lote_id}/retorno"), data={"csrf": console.csrf},
                              files={"retorno": ("recibo.xml", recibos[1], "text/xml")},
                              allow_redirects=False)
    assert feito.status_code == 303, feito.text[:2000]
    assert "erro_arquivo" not in feito.headers["Location"], feito.headers["Location"]

    # Days later: what the portal shows of each protocol, uploaded.
    stack.simulator.advance(days=40)
    for numero_operadora in numeros:
        situacao = _portal(stack, "GET", "/portal/situacao", params={"protocolo": numero_operadora})
        assert situacao.status_code == 200, situacao.text
        console.get(f"/lotes/{lote_id}")
        feito = console.http.post(console.url(f"/lotes/{lote_id}/retorno"), data={"csrf": console.csrf},
                                  files={"retorno": ("situacao.xml", situacao.content, "text/xml")},
                                  allow_redirects=False)
        assert "erro_arquivo" not in feito.headers["Location"], feito.headers["Location"]

    # The ERP's status query answers what CASSEMS's web service says of its two protocols.
    gateway_status, gateway_guias = _valores(stack.status("cassems", protocolo))
    operadora_guias: dict[str, tuple[str, ...]] = {}
    operadora_status = []
    for numero_operadora in numeros:
        status, guias = _valores(_na_operadora(stack, "cassems", numero_operadora))
        operadora_status.append(int(status))
        operadora_guias.update(guias)
    assert gateway_guias == operadora_guias and len(gateway_guias) == 60
    assert int(gateway_status) == min(operadora_status)  # the least advanced part (same progress order here)
    page = console.get(f"/lotes/{lote_id}")
    assert all(n in page.text for n in numeros)


_ALHEIOS = (  # (what is changed in the portal's receipt, its new value, the reason shown)
    ("ans:cabecalho/ans:origem/ans:registroANS", OPERADORAS["pasa"][0],
     f"O arquivo é da operadora {OPERADORAS['pasa'][0]}"),
    ("ans:cabecalho/ans:destino/ans:identificacaoPrestador/*", "99888777000100",
     "O arquivo é para o prestador 99888777000100, não para o prestador deste lote"),
    (".//ans:numeroLote", "424242", "lote 424242, que não é nenhuma parte deste lote"),
)


def test_retorno_alheio_recusado_com_o_motivo(stack: Stack) -> None:
    """A return that is not about the lote (another operator's, another provider's, another lote's)
    is refused with the reason, and nothing is written."""
    _numero, protocolo, _entregas = _em_arquivos(stack, "cassems", 1)
    lote_id = _lote_id(stack, protocolo)
    console = Console(stack.gateway.base_url)
    console.login("clinica.demo", SENHA)
    [(arquivo_id, nome)] = _arquivos(console.get(f"/lotes/{lote_id}").text)
    corpo = console.get(f"/lotes/{lote_id}/arquivos/{arquivo_id}").content
    recibo = _portal(stack, "POST", "/portal/upload", data=corpo,
                     headers={"Content-Type": "text/xml", "X-Arquivo-Nome": nome}).content
    mensagens = _mensagens(stack)
    for caminho, valor, motivo in _ALHEIOS:
        message = reader.read(recibo)
        [elemento] = message.root.findall(caminho, namespaces=NS)
        elemento.text = valor
        alheio = hashing.rewrite(message.tree, message.root, hashing.DECLARED, message.encoding)
        destino = _retorno(console, lote_id, "alheio.xml", alheio)
        assert "erro_arquivo" in destino, caminho
        page = console.get(destino.removeprefix("/console")).text
        assert motivo in page, (motivo, caminho)
        assert "aguardando envio pelo portal" in page and _mensagens(stack) == mensagens  # nothing written
    assert "erro_arquivo" not in _retorno(console, lote_id, "recibo.xml", recibo)  # the real one is taken
    assert "aguardando envio pelo portal" not in console.get(f"/lotes/{lote_id}").text


def test_demonstrativo_de_analise_do_portal(stack: Stack) -> None:
    """Capital Prev (no drop folder) emits the demonstrativo de análise de conta: uploaded, it gives
    the part its protocol's status and each guide's values, as Capital Prev's web service says."""
    _numero, protocolo, _entregas = _em_arquivos(stack, "capitalprev", 3)
    lote_id = _lote_id(stack, protocolo)
    console = Console(stack.gateway.base_url)
    assert console.login("clinica.demo", SENHA).status_code == 303
    [(arquivo_id, nome)] = _arquivos(console.get(f"/lotes/{lote_id}").text)
    corpo = console.get(f"/lotes/{lote_id}/arquivos/{arquivo_id}").content
    recibo = _portal(stack, "POST", "/portal/upload", data=corpo, key="capitalprev",
                     headers={"Content-Type": "text/xml", "X-Arquivo-Nome": nome})
    assert recibo.status_code == 200, recibo.text
    numero = reader.read(recibo.content).root.findtext(".//ans:numeroProtocolo", namespaces=NS)
    assert numero
    assert "erro_arquivo" not in _retorno(console, lote_id, "recibo.xml", recibo.content)

    def analisado() -> bool:  # Capital Prev emits it once the protocol is analysed (status 5)
        stack.simulator.advance(days=15)
        status = _na_operadora(stack, "capitalprev", numero).findtext(".//ans:statusProtocolo", namespaces=NS)
        return int(status or 0) >= 5

    wait_until(analisado, timeout=120, what="protocolo analisado pela Capital Prev")
    demonstrativo = _portal(stack, "GET", "/portal/demonstrativo", params={"protocolo": numero},
                            key="capitalprev")
    assert demonstrativo.status_code == 200, demonstrativo.text
    assert b"demonstrativoAnaliseConta" in demonstrativo.content
    destino = _retorno(console, lote_id, "demonstrativo.xml", demonstrativo.content)
    assert "erro_arquivo" not in destino, destino

    gateway_status, gateway_guias = _valores(stack.status("capitalprev", protocolo))
    operadora_status, operadora_guias = _valores(_na_operadora(stack, "capitalprev", numero))
    assert (gateway_status, gateway_guias) == (operadora_status, operadora_guias)
    assert len(gateway_guias) == 3 and int(gateway_status) >= 5
    page = console.get(f"/lotes/{lote_id}").text
    assert numero in page  # the console lists the demonstrativo with the lote, as one fetched by web service
    [demonstrativo_id] = re.findall(r'href="/console/demonstrativos/(\d+)"', page)
    assert console.get(f"/demonstrativos/{demonstrativo_id}").status_code == 200
