"""The web console over HTTP (requests), against the real test bed: the gateway under gunicorn with
the console at /console, its workers and the five simulated operators (tests/forwarding_stack), on
SQLite and on PostgreSQL. Users are made with the real ``tiss-gateway usuario`` command.

Sign-in (form, lockout, CSRF, expiry, logout, cookie flags, security headers), role scoping (a
provider's user gets 404 for another provider's data, like for a missing one), the lotes list's
filters and search, a lote's page (guides with masked cards, críticas, every message, raw
download), the capa do lote against the demonstrativo the simulated operator produced, the
dead-letter retry, and the audit trail.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from lxml import etree
from sqlalchemy import func, select, update

from gateway.console.formatos import BRASILIA, inicio_do_dia
from gateway.storage.models import (
    Auditoria,
    Entrega,
    FalhaLogin,
    Lote,
    Mensagem,
    Prestador,
    Protocolo,
    SessaoConsole,
)
from simulator.models import SimGuia, SimLote
from tests.console_client import (
    OUTRO_CNPJ,
    SENHA,
    Console,
    add_outro_prestador,
    add_usuarios,
    doc,
    figura,
    lote_ids,
    outro_party,
    stack_cli,
)
from tests.factory import build_lote, build_request, numero_guia_prestador
from tests.forwarding_stack import NS, OPERADORAS, Stack, new_number, party, wait_until
from tests.gateway_process import GatewayProcess, WorkerProcess

pytestmark = pytest.mark.usefixtures("clean_faults", "logs_on_failure")


@pytest.fixture(scope="module")
def users(stack: Stack) -> Stack:
    add_outro_prestador(stack)
    add_usuarios(stack)
    return stack


def console(stack: Stack, login: str | None = None) -> Console:
    client = Console(stack.gateway.base_url)
    if login is not None:
        response = client.login(login)
        assert response.status_code == 303, response.text[:2000]
    return client


def lote_id(stack: Stack, protocolo: str) -> int:
    with stack.db.connect() as connection:
        return connection.scalar(select(Lote.id).join(Protocolo, Lote.protocolo_id == Protocolo.id)
                                 .where(Protocolo.numero == protocolo))


def auditoria(stack: Stack, quem: str, acao: str) -> list[Auditoria]:
    with stack.db.connect() as connection:
        return list(connection.execute(select(Auditoria).where(Auditoria.quem == quem, Auditoria.acao == acao)
                                       .order_by(Auditoria.id)))


def send_outro(stack: Stack, key: str = "pasa", n: int = 2) -> tuple[str, str]:
    numero = new_number()
    body = build_lote("consulta", n, envelope=True, numero_lote=numero, sequencial=numero,
                      party=outro_party(key))
    response = stack.post("tissLoteGuias", body)
    assert response.status_code == 200, response.text[:2000]
    found = re.search(rb"<ans:numeroProtocolo>(\w+)</ans:numeroProtocolo>", response.content)
    assert found, response.text[:2000]
    return numero, found.group(1).decode()


# --- sign-in ---------------------------------------------------------------------------------------


def test_pages_need_a_session_and_carry_the_security_headers(users: Stack) -> None:
    client = console(users)
    response = client.get("/lotes/1")
    assert response.status_code == 303
    assert response.headers["Location"] == "/console/login?proximo=%2Fconsole%2Flotes%2F1"
    login = client.get("/login")
    assert login.status_code == 200 and "Entrar no console" in login.text
    for page in (response, login):
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in login.text and " style=" not in login.text  # nothing inline: CSP forbids it
    assert users.gateway.url("/healthz") and client.http.get(users.gateway.url("/healthz")).text == "ok"
    css = client.get("/static/console.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert "@media print" in css.text
    assert client.get("/static/nada.js").status_code == 404


def test_login_and_logout(users: Stack) -> None:
    client = console(users)
    before = datetime.now(UTC)
    response = client.login("operador.teste")
    assert response.status_code == 303 and response.headers["Location"] == "/console/lotes"
    cookie = next(c for c in response.headers["Set-Cookie"].split(", tiss") if c.startswith("tiss_console="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    lotes = client.get("/lotes")
    assert lotes.status_code == 200 and "Usuário operador.teste" in lotes.text
    assert lotes.headers["Cache-Control"] == "no-store"
    with users.db.connect() as connection:
        sessao = connection.execute(select(SessaoConsole).where(
            SessaoConsole.id == hashlib.sha256(client.token.encode()).hexdigest())).one()
    assert sessao.csrf == client.csrf and client.token not in (sessao.id, sessao.csrf)
    expected = before + timedelta(hours=8)  # absolute expiry, 8 h after login
    assert expected - timedelta(seconds=5) < sessao.expira_em < expected + timedelta(minutes=2)
    assert auditoria(users, "operador.teste", "console_login")

    out = client.post("/logout")
    assert out.status_code == 303 and out.headers["Location"] == "/console/login"
    assert client.get("/lotes").status_code == 303  # the old cookie no longer signs anyone in
    assert auditoria(users, "operador.teste", "console_logout")
    with users.db.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(SessaoConsole)
                                 .where(SessaoConsole.id == sessao.id)) == 0


def test_https_gets_a_secure_cookie(users: Stack) -> None:
    client = console(users)
    https = {"X-Forwarded-Proto": "https"}  # TLS ended at a proxy
    form = client.http.get(client.url("/login"), headers=https, timeout=30)
    assert "Secure" in form.headers["Set-Cookie"]
    token = re.search(r'name="csrf_login" value="([^"]+)"', form.text).group(1)
    # A Secure cookie never travels over this plain-http test connection: send it by hand.
    response = requests.post(client.url("/login"), data={"login": "admin.teste", "senha": SENHA,
                                                          "csrf_login": token},
                             headers={**https, "Cookie": f"tiss_console_login={token}"},
                             allow_redirects=False, timeout=30)
    assert response.status_code == 303
    cookies = response.headers["Set-Cookie"].split(", tiss")
    assert len(cookies) == 2 and all("Secure" in c and "HttpOnly" in c for c in cookies)


def test_five_failures_lock_the_login(users: Stack) -> None:
    done = stack_cli(users, "usuario", "add", "bloqueavel", "--nome", "Bloqueável", "--papel", "operador",
                     "--senha-stdin", stdin=SENHA + "\n")
    assert done.returncode == 0, done.stderr
    client = console(users)
    for _ in range(5):
        wrong = client.login("bloqueavel", "errada")
        assert wrong.status_code == 401
    refused = client.login("bloqueavel", SENHA)  # the right password, while locked (from this address)
    assert refused.status_code == 401 and _alerta(refused) == _alerta(wrong)  # the same page
    with users.db.connect() as connection:
        falha = connection.execute(select(FalhaLogin).where(
            FalhaLogin.escopo == "console", FalhaLogin.login == "bloqueavel")).one()
    assert falha.endereco == "127.0.0.1"
    assert falha.bloqueado_ate > datetime.now(UTC) + timedelta(minutes=25)
    motivos = [a.detalhe for a in auditoria(users, "bloqueavel", "console_login_recusado")]
    assert len(motivos) == 6 and motivos[-1].startswith("motivo=bloqueado") and "5 falhas" in motivos[-2]
    assert console(users).login("ninguem", "x").status_code == 401
    assert any("ninguem" in (a.detalhe or "") for a in auditoria(users, "anonimo", "console_login_recusado"))
    assert stack_cli(users, "usuario", "enable", "bloqueavel").returncode == 0
    assert console(users).login("bloqueavel", SENHA).status_code == 303


def _alerta(response: requests.Response) -> str:
    """The login page's message (the same for unknown, wrong and locked)."""
    return " ".join(" ".join(doc(response).xpath('//*[@role="alert"]//text()')).split())


def test_every_post_needs_the_session_csrf_token(users: Stack) -> None:
    client = console(users, "admin.teste")
    assert client.post("/logout", csrf=False).status_code == 403
    assert client.post("/logout", {"csrf": "x" * 43}).status_code == 403
    assert client.post("/entregas/1/reenviar", csrf=False).status_code == 403
    other = console(users, "operador.teste")  # another session's token is no good either
    assert client.post("/logout", {"csrf": other.csrf}).status_code == 403
    assert client.get("/lotes").status_code == 200  # still signed in
    forged = console(users).http.post(client.url("/login"), allow_redirects=False,
                                      data={"login": "admin.teste", "senha": SENHA, "csrf_login": "forjado"})
    assert forged.status_code == 403  # the login form's double-submit cookie is missing


def test_an_expired_session_or_a_disabled_user_is_signed_out(users: Stack) -> None:
    client = console(users, "clinica.demo")
    assert client.get("/lotes").status_code == 200
    with users.db.begin() as connection:
        connection.execute(update(SessaoConsole).where(
            SessaoConsole.id == hashlib.sha256(client.token.encode()).hexdigest())
            .values(expira_em=datetime.now(UTC) - timedelta(seconds=1)))
    response = client.get("/lotes")
    assert response.status_code == 303 and response.headers["Location"].startswith("/console/login")

    done = stack_cli(users, "usuario", "add", "temporario", "--nome", "Temporário", "--papel", "operador",
                     "--senha-stdin", stdin=SENHA + "\n")
    assert done.returncode == 0, done.stderr
    temporario = console(users, "temporario")
    assert temporario.get("/lotes").status_code == 200
    assert stack_cli(users, "usuario", "disable", "temporario").returncode == 0
    assert temporario.get("/lotes").status_code == 303
    assert console(users).login("temporario").status_code == 401
    listed = stack_cli(users, "usuario", "list")
    assert "temporario" in listed.stdout and "DESATIVADO" in listed.stdout and "senha" not in listed.stdout


# --- a lote's page, scoping, críticas, messages ------------------------------------------------------


def test_a_lote_page_shows_guides_messages_and_its_raw_xml(users: Stack, worker: WorkerProcess) -> None:
    numero, protocolo = users.send_lote("pasa", 3)
    wait_until(lambda: users.delivered(protocolo), what="entrega")
    wait_until(lambda: users.entregas(protocolo)[0].situacao_id, what="primeira consulta de situação")
    ident = lote_id(users, protocolo)
    client = console(users, "clinica.demo")
    page = client.get(f"/lotes/{ident}")
    assert page.status_code == 200, page.text[:2000]
    tree = doc(page)
    assert tree.xpath('string(//*[@id="protocolo"])').strip() == protocolo
    (part,) = users.entregas(protocolo)
    assert tree.xpath('string(//*[@id="protocolo-operadora"])').strip() == part.numero_protocolo
    guias = tree.xpath('//section[@id="guias"]//tr[@data-guia]')
    assert [g.get("data-guia") for g in guias] == [numero_guia_prestador(numero, i) for i in (1, 2, 3)]
    with users.db.connect() as connection:
        lote = connection.execute(select(Lote).where(Lote.id == ident)).one()
        cards = list(connection.scalars(select(Mensagem.corpo).where(Mensagem.id == lote.mensagem_id)))
    carteiras = re.findall(rb"<ans:numeroCarteira>(\d+)</ans:numeroCarteira>", cards[0])
    assert carteiras
    for carteira in {c.decode() for c in carteiras}:
        assert carteira not in page.text  # never a full card number
        assert carteira[-4:] in page.text
    rotulos = [r.xpath("string(td[2])") for r in tree.xpath('//section[@id="mensagens"]//tr[@data-mensagem]')]
    assert rotulos[:4] == ["Lote recebido do prestador", "Resposta ao prestador (protocolo de recebimento)",
                           f"Envio à operadora (parte 1/1, lote {numero})",
                           "Resposta da operadora ao envio (parte 1/1)"]
    assert "Situação do protocolo informada pela operadora (parte 1/1)" in rotulos
    assert "Consulta de situação à operadora (parte 1/1)" in rotulos

    shown = client.get(f"/mensagens/{lote.mensagem_id}")
    assert shown.status_code == 200
    xml_text = doc(shown).xpath('string(//pre[@id="xml-texto"])')
    assert "<ans:loteGuiasWS" in xml_text and "\n" in xml_text  # escaped in the HTML, indented
    assert "&lt;ans:loteGuiasWS" in shown.text
    assert "<ans:senhaPrestador>********</ans:senhaPrestador>" in xml_text
    assert all(c.decode() not in shown.text for c in carteiras)
    raw = client.get(f"/mensagens/{lote.mensagem_id}/xml")
    assert raw.status_code == 200 and raw.content == cards[0]  # the exact stored bytes
    assert raw.headers["Content-Disposition"].startswith("attachment;")
    assert raw.headers["Content-Type"] == "application/xml"
    downloads = auditoria(users, "clinica.demo", "console_download")
    assert any(f"mensagem {lote.mensagem_id} " in a.detalhe for a in downloads)


def test_a_provider_sees_only_its_own_data(users: Stack, worker: WorkerProcess) -> None:
    _numero, protocolo = send_outro(users)
    _numero_demo, protocolo_demo = users.send_lote("pasa", 1)
    ident, ident_demo = lote_id(users, protocolo), lote_id(users, protocolo_demo)
    with users.db.connect() as connection:
        mensagem_id = connection.scalar(select(Lote.mensagem_id).where(Lote.id == ident))
    demo, outro = console(users, "clinica.demo"), console(users, "clinica.b")
    admin = console(users, "admin.teste")
    missing = 999_999_999
    for path, other in ((f"/lotes/{ident}", f"/lotes/{missing}"),
                        (f"/lotes/{ident}/capa", f"/lotes/{missing}/capa"),
                        (f"/mensagens/{mensagem_id}", f"/mensagens/{missing}"),
                        (f"/mensagens/{mensagem_id}/xml", f"/mensagens/{missing}/xml")):
        response = demo.get(path)
        assert response.status_code == 404, path
        assert response.text == demo.get(other).text  # exactly as for a missing one
        assert outro.get(path).status_code == 200, path
        assert admin.get(path).status_code == 200, path
    assert ident not in lote_ids(demo.get("/lotes")) and ident_demo in lote_ids(demo.get("/lotes"))
    assert ident in lote_ids(outro.get("/lotes")) and ident_demo not in lote_ids(outro.get("/lotes"))
    assert {ident, ident_demo} <= set(lote_ids(admin.get("/lotes")))
    assert lote_ids(demo.get(f"/lotes?q={protocolo}")) == []  # a search does not cross the scope either
    assert lote_ids(demo.get(f"/lotes?prestador=1&q={protocolo}")) == []  # nor the prestador filter
    assert 'id="f-prestador"' not in demo.get("/lotes").text


def test_a_lote_the_operator_refused_shows_its_criticas(users: Stack, worker: WorkerProcess) -> None:
    _numero, protocolo = send_outro(users)  # the simulated operator does not know this provider

    def refused() -> Entrega | None:
        found = users.entregas(protocolo)
        return found[0] if found and found[0].estado == "recusada" else None

    entrega = wait_until(refused, what="recusa pela operadora")
    client = console(users, "clinica.b")
    page = client.get(f"/lotes/{lote_id(users, protocolo)}")
    tree = doc(page)
    situacao = tree.xpath('string(//*[@id="resumo-lote"]//*[@data-situacao])').strip()
    assert situacao == "Recusado pela operadora"
    rows = tree.xpath('//section[@id="criticas"]//tr[@class="critica"]')
    criticas = [c.xpath("string(td[2])") for c in rows]
    assert criticas and entrega.ultimo_erro.split(":")[0] in criticas[0]
    filtered = lote_ids(client.get("/lotes?situacao=recusado"))
    assert lote_id(users, protocolo) in filtered
    assert lote_id(users, protocolo) not in lote_ids(client.get("/lotes?situacao=1"))


def test_a_lote_refused_at_the_gateway_is_listed_with_its_criticas(users: Stack) -> None:
    numero = new_number()
    body = build_lote("sp-sadt", 2, envelope=True, numero_lote=numero, sequencial=numero,
                      party=party("cassems"))
    response = users.post("tissLoteGuias", body)  # CASSEMS takes dental guides only: 1301 at once
    assert response.status_code == 200 and b"1301" in response.content
    client = console(users, "clinica.demo")
    page = doc(client.get("/recusadas"))
    row = page.xpath("//table[@id='tabela-recusadas']//tr[@data-mensagem]")[0]
    assert row.xpath("string(td[@class='codigo'])") == "1301"
    detail = client.get(f"/mensagens/{row.get('data-mensagem')}")
    assert detail.status_code == 200
    codes = doc(detail).xpath("//section[@id='criticas']//td[@class='codigo']/text()")
    assert "1301" in codes
    assert doc(console(users, "clinica.b").get("/recusadas")).xpath(
        f"//tr[@data-mensagem='{row.get('data-mensagem')}']") == []


# --- the lotes list ------------------------------------------------------------------------------


def test_the_lotes_list_filters_and_searches(users: Stack, worker: WorkerProcess) -> None:
    numero_pasa, protocolo_pasa = users.send_lote("pasa", 2)
    _numero_unimed, protocolo_unimed = users.send_lote("unimed", 1)
    parts = wait_until(lambda: users.delivered(protocolo_pasa), what="entrega pasa")
    wait_until(lambda: users.delivered(protocolo_unimed), what="entrega unimed")
    pasa, unimed = lote_id(users, protocolo_pasa), lote_id(users, protocolo_unimed)
    client = console(users, "operador.teste")

    by_operator = lote_ids(client.get(f"/lotes?operadora={OPERADORAS['pasa'][0]}"))
    assert pasa in by_operator and unimed not in by_operator
    guia = numero_guia_prestador(numero_pasa, 2)
    for term in (protocolo_pasa, parts[0].numero_protocolo, numero_pasa, guia):
        assert lote_ids(client.get(f"/lotes?q={term}")) == [pasa], term
    today = datetime.now(UTC) - timedelta(hours=3)  # Brasília
    assert pasa in lote_ids(client.get(f"/lotes?de={today.date().isoformat()}"))
    assert pasa not in lote_ids(client.get(f"/lotes?ate={(today - timedelta(days=1)).date().isoformat()}"))
    with users.db.connect() as connection:
        demo_id = connection.scalar(select(Lote.prestador_id).where(Lote.id == pasa))
        outro_id = connection.scalar(select(Prestador.id).where(Prestador.documento == OUTRO_CNPJ))
    assert pasa in lote_ids(client.get(f"/lotes?prestador={demo_id}"))
    assert pasa not in lote_ids(client.get(f"/lotes?prestador={outro_id}"))
    recebidos = lote_ids(client.get("/lotes?situacao=1"))
    assert pasa in recebidos  # delivered, the operator's clock is frozen: Recebido
    assert pasa not in lote_ids(client.get("/lotes?situacao=6"))
    page = doc(client.get(f"/lotes?q={protocolo_pasa}"))
    assert page.xpath("string(//tr[@data-lote-id]//*[@data-situacao]/@data-situacao)") == "1"
    for bad in ("de=31-12-2025", "operadora=abc", "situacao=99", "pagina=-1", "prestador=x"):
        response = client.get(f"/lotes?{bad}")
        assert response.status_code == 400, bad
        assert "Traceback" not in response.text



def test_the_operators_own_status_name_follows_the_tiss_light(users: Stack, worker: WorkerProcess) -> None:
    """Wherever a protocol's status shows (list, lote page, capa), the operator's own name for it
    (its adapter's STATUS) follows the TISS light, which is unchanged."""
    _numero, protocolo = users.send_lote("pasa", 1)
    wait_until(lambda: users.delivered(protocolo), what="entrega")
    ident = lote_id(users, protocolo)
    client = console(users, "operador.teste")
    proprio = "(PASA: Enviado para a Operadora)"  # PASA's name of 1 Recebido (the clock is frozen)
    (row,) = doc(client.get(f"/lotes?q={protocolo}")).xpath("//tr[@data-lote-id]")
    assert row.xpath("string(.//*[@data-situacao]/@data-situacao)") == "1"
    assert row.xpath("string(.//*[@data-situacao])") == "Recebido"
    assert row.xpath("string(.//*[@data-status-operadora])") == proprio
    page = doc(client.get(f"/lotes/{ident}"))
    assert page.xpath('string(//*[@id="resumo-lote"]//*[@data-situacao])') == "Recebido"
    assert page.xpath('string(//*[@id="resumo-lote"]//*[@data-status-operadora])') == proprio
    assert page.xpath('string(//section[@id="entregas"]//*[@data-status-operadora])') == proprio
    assert page.xpath('string(//section[@id="historico"]//*[@data-status-operadora])') == proprio
    capa = doc(client.get(f"/lotes/{ident}/capa"))
    assert capa.xpath('string(//*[@class="capa-situacao"]//*[@data-status-operadora])') == proprio

def test_bad_requests_never_crash_the_console(users: Stack) -> None:
    client = console(users, "operador.teste")
    for path, status in (("/lotes/abc", 404), ("/lotes/99999999999999999999", 404),
                         ("/lotes/999999999999", 404), ("/nada", 404), ("/mensagens/0/xml", 404),
                         ("/demonstrativos/77", 404), ("/graficos?dias=0", 400), ("/graficos?dias=9999", 400),
                         ("/entregas?operadora=1", 400), ("/demonstrativos?tipo=9", 400),
                         ("/lotes/%C3%A9", 404), ("/lotes/%FF", 404)):
        assert client.get(path).status_code == status, path
    assert client.post("/lotes").status_code == 405
    big = client.post("/logout", {"x": "a" * 70_000})
    assert big.status_code == 413
    assert client.http.request("PUT", client.url("/login"), timeout=30).status_code == 405
    assert client.get("/lotes").status_code == 200


# --- capa do lote ---------------------------------------------------------------------------------

NUMERO_COM_GLOSA = "770001"  # with the simulator's seed 0, PASA glosa some of its 10 guides


def test_the_capa_shows_what_the_operator_reported(users: Stack, worker: WorkerProcess) -> None:
    _numero, protocolo = users.send_lote("pasa", 10, guide="sp-sadt", numero=NUMERO_COM_GLOSA)
    (part,) = wait_until(lambda: users.delivered(protocolo), what="entrega")
    ident = lote_id(users, protocolo)
    client = console(users, "clinica.demo")
    early = doc(client.get(f"/lotes/{ident}/capa"))
    assert figura(early, "guias-apresentadas") == 10
    assert figura(early, "itens-apresentados") > 10
    with users.db.connect() as connection:
        informado = connection.scalar(select(Lote.valor_informado).where(Lote.id == ident))
    assert figura(early, "valor-informado") == informado
    for name in ("valor-processado", "valor-glosado", "valor-liberado", "guias-com-glosa", "itens-com-glosa"):
        assert figura(early, name) is None, name  # not analysed: "—", never a made-up zero
        assert early.xpath(f'string(//*[@id="{name}"])').strip() == "—"

    users.simulator.advance(days=30)  # PASA pays 7 days after receipt

    def analysed() -> int | None:
        found = users.entregas(protocolo)[0]
        return found.status if found.status in (4, 6) else None

    wait_until(analysed, what="análise da operadora")
    from_status = doc(client.get(f"/lotes/{ident}/capa"))  # from the situação answer

    pedido = build_request("solicitacaoDemonstrativoRetornoWS", envelope=True, sequencial=new_number(),
                           party=party("pasa"), demonstrativo="analise", numero_protocolo=protocolo)
    response = users.post("tissSolicitacaoDemonstrativoRetorno", pedido)
    assert response.status_code == 200, response.text[:2000]
    dados = etree.fromstring(response.content).find(".//ans:dadosConta/ans:dadosProtocolo", NS)

    def valor(element, name: str) -> Decimal:
        return Decimal(element.findtext(f"ans:{name}", namespaces=NS))

    relacao = dados.findall("ans:relacaoGuias", NS)
    expected = {
        "valor-informado": valor(dados, "valorInformadoProtocolo"),
        "valor-processado": valor(dados, "valorProcessadoProtocolo"),
        "valor-glosado": valor(dados, "valorGlosaProtocolo"),
        "valor-liberado": valor(dados, "valorLiberadoProtocolo"),
        "guias-apresentadas": len(relacao),
        "guias-com-glosa": sum(1 for g in relacao if valor(g, "valorGlosaGuia") > 0),
        "itens-apresentados": len(dados.findall("ans:relacaoGuias/ans:detalhesGuia", NS)),
        "itens-com-glosa": len(dados.findall("ans:relacaoGuias/ans:detalhesGuia[ans:relacaoGlosa]", NS)),
    }
    assert expected["valor-glosado"] > 0 and expected["guias-com-glosa"] > 0, "o lote deveria ter glosa"
    from_demonstrativo = doc(client.get(f"/lotes/{ident}/capa"))
    for capa in (from_status, from_demonstrativo):
        assert {name: figura(capa, name) for name in expected} == expected
    assert "situação do protocolo" in from_status.xpath("string(//footer[@class='capa-rodape'])")
    fonte = from_demonstrativo.xpath("string(//footer[@class='capa-rodape'])")
    assert "demonstrativo de análise de conta" in fonte

    with users.sim_db.connect() as connection:  # and what the simulated operator decided at receipt
        sim = connection.execute(select(SimLote).where(
            SimLote.numero_protocolo == part.numero_protocolo)).one()
        glosadas = connection.scalar(select(func.count()).select_from(SimGuia).where(
            SimGuia.lote_id == sim.id, SimGuia.valor_glosa > 0))
    assert figura(from_demonstrativo, "valor-glosado") == sim.valor_glosa
    assert figura(from_demonstrativo, "guias-com-glosa") == glosadas

    lote_page = doc(client.get(f"/lotes/{ident}"))
    assert lote_page.xpath("//*[@id='com-glosa']")
    dem_rows = doc(client.get("/demonstrativos")).xpath("//tr[@data-demonstrativo]")
    assert dem_rows
    dem_page = client.get(f"/demonstrativos/{dem_rows[0].get('data-demonstrativo')}")
    assert dem_page.status_code == 200
    totais = {th.text: Decimal(td.get("data-valor")) for th, td in zip(
        doc(dem_page).xpath("//table[contains(@class,'totais-demonstrativo')]//th"),
        doc(dem_page).xpath("//table[contains(@class,'totais-demonstrativo')]//td"), strict=True)}
    assert totais["Valor glosa geral"] == expected["valor-glosado"]
    assert totais["Valor informado geral"] == expected["valor-informado"]
    assert f"/lotes/{ident}" in dem_page.text  # the operator's protocol links back to the lote

    charts = doc(client.get("/graficos"))
    glosa_rows = charts.xpath("//table[@id='tabela-glosa']//tr[td]")
    pasa_row = next(r for r in glosa_rows if r.xpath("string(td[1])").startswith("pasa"))
    assert Decimal(pasa_row.xpath("string(td[4]/@data-valor)")) >= expected["valor-glosado"]
    hoje = datetime.now(BRASILIA).date()
    with users.db.connect() as connection:
        demo_hoje = connection.scalar(select(func.count()).select_from(Lote).where(
            Lote.prestador_id == connection.scalar(select(Lote.prestador_id).where(Lote.id == ident)),
            Lote.criado_em >= inicio_do_dia(hoje)))
    titles = charts.xpath("//*[@id='grafico-volume']//*[local-name()='title']/text()")
    assert f"{hoje.strftime('%d/%m/%Y')}: {demo_hoje} lote(s)" in titles  # counted per Brasília day


def test_the_capa_of_a_split_lote_adds_up_its_parts(users: Stack, worker: WorkerProcess) -> None:
    _numero, protocolo = users.send_lote("cassems", 60)  # 50 + 10 guides: two operator protocols
    parts = wait_until(lambda: users.delivered(protocolo), what="as duas partes")
    assert len(parts) == 2
    users.simulator.advance(days=20)  # CASSEMS pays 10 days after receipt

    def analysed() -> bool:
        with users.db.connect() as connection:
            status = connection.scalar(select(Protocolo.status).where(Protocolo.numero == protocolo))
        return status in (4, 6) and all(e.status in (4, 6) for e in users.entregas(protocolo))

    wait_until(analysed, what="análise das duas partes")
    capa = doc(console(users, "clinica.demo").get(f"/lotes/{lote_id(users, protocolo)}/capa"))
    total = users.status("cassems", protocolo).find(".//ans:detalheLote/ans:valorTotalLote", NS)
    assert total is not None  # the gateway's own answer to the ERP merges the parts' situação
    assert {name: figura(capa, f"valor-{name}") for name in ("processado", "glosado", "liberado")} == {
        name: Decimal(total.findtext(f"ans:valor{field}", namespaces=NS))
        for name, field in (("processado", "Processado"), ("glosado", "Glosa"), ("liberado", "Liberado"))}
    assert figura(capa, "guias-apresentadas") == 60
    assert capa.xpath("string(//*[@id='capa-protocolo-operadora'])").strip() == ", ".join(
        p.numero_protocolo for p in parts)


def test_the_volume_chart_counts_lotes_per_brasilia_day(users: Stack) -> None:
    _numero, protocolo = users.send_lote("pasa", 1)
    hoje = datetime.now(BRASILIA).date()
    # 02:30 UTC is still the previous day in Brasília (23:30): the chart must say so.
    moved = datetime.combine(hoje - timedelta(days=2), datetime.min.time(), UTC) + timedelta(hours=2.5)
    ident = lote_id(users, protocolo)
    with users.db.begin() as connection:
        connection.execute(update(Lote).where(Lote.id == ident).values(criado_em=moved))
        rows = connection.execute(select(Lote.criado_em).where(
            Lote.criado_em >= inicio_do_dia(hoje - timedelta(days=6))))
        expected = Counter(r.criado_em.astimezone(BRASILIA).date() for r in rows)
    assert expected[hoje - timedelta(days=3)] >= 1
    charts = doc(console(users, "admin.teste").get("/graficos?dias=7"))
    titles = charts.xpath("//*[@id='grafico-volume']//*[local-name()='title']/text()")
    dias = [hoje - timedelta(days=d) for d in range(6, -1, -1)]
    assert titles == [f"{dia.strftime('%d/%m/%Y')}: {expected[dia]} lote(s)" for dia in dias]


# --- dead letters ---------------------------------------------------------------------------------


def test_a_dead_delivery_is_retried_from_the_console(users: Stack, worker: WorkerProcess) -> None:
    numero, protocolo, entrega = users.send_lote_until_dead("capitalprev")
    operador, prestador = console(users, "operador.teste"), console(users, "clinica.demo")
    listed = doc(operador.get("/entregas"))
    assert listed.xpath(f"//tr[@data-entrega='{entrega.id}']//form[@method='post']")
    assert lote_id(users, protocolo) in lote_ids(operador.get("/lotes?situacao=falha"))
    mine = doc(prestador.get("/entregas"))
    assert mine.xpath(f"//tr[@data-entrega='{entrega.id}']")
    assert not mine.xpath("//form[contains(@action,'reenviar')]")
    assert prestador.post(f"/entregas/{entrega.id}/reenviar").status_code == 403  # only admin/operador

    users.simulator.clear_fault("capitalprev")
    response = operador.post(f"/entregas/{entrega.id}/reenviar")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/console/entregas?reenviada={entrega.id}"
    wait_until(lambda: users.delivered(protocolo), what="entrega depois do reenvio")
    assert users.operator_lotes("capitalprev", numero) == {numero: 1}
    (audit,) = [a for a in auditoria(users, "operador.teste", "console_reenvio")
                if f"entrega {entrega.id} " in a.detalhe]
    assert "devolvida à fila" in audit.detalhe
    again = operador.post(f"/entregas/{entrega.id}/reenviar")  # nothing dead any more
    assert again.headers["Location"] == f"/console/entregas?nao_reenviada={entrega.id}"


# --- the demo ---------------------------------------------------------------------------------------


def test_serve_demo_seeds_the_console_user_demo(tmp_path, tiss_home) -> None:
    with GatewayProcess(f"sqlite:///{tmp_path / 'demo.sqlite'}", tiss_home, workers=1) as gateway:
        assert "console web: " in gateway.log() and "usuário demo, senha demo" in gateway.log()
        client = Console(gateway.base_url)
        assert client.login("demo", "demo").status_code == 303
        assert client.get("/lotes").status_code == 200
        assert client.get("/entregas").status_code == 200


def test_usuario_add_refuses_bad_input(users: Stack) -> None:
    cases = [
        (["usuario", "add", "curta", "--nome", "X", "--papel", "admin", "--senha-stdin"], "1234\n",
         "8 caracteres"),
        (["usuario", "add", "semprest", "--nome", "X", "--papel", "prestador", "--senha-stdin"], SENHA + "\n",
         "--prestador"),
        (["usuario", "add", "errado", "--nome", "X", "--papel", "prestador", "--prestador", "00000000000191",
          "--senha-stdin"], SENHA + "\n", "não encontrado"),
        (["usuario", "add", "admin.teste", "--nome", "X", "--papel", "admin", "--senha-stdin"], SENHA + "\n",
         "já existe"),
    ]
    for args, stdin, message in cases:
        done = stack_cli(users, *args, stdin=stdin)
        assert done.returncode == 1 and message in done.stderr, (args, done.stderr)
    listed = stack_cli(users, "usuario", "list", "--json")
    assert listed.returncode == 0 and '"clinica.b"' in listed.stdout and OUTRO_CNPJ in listed.stdout
    assert "scrypt" not in listed.stdout
