"""The web console in a real headless Chromium (Debian's ``chromium`` driven by Playwright), against
the real test bed (tests/forwarding_stack): log in through the form, filter the lotes list, open a
lote, retry a dead delivery with the button (and its confirmation), screenshots of the lote page
and of the capa do lote (real PNGs, not blank, the status light's colour in them), and the capa in
print media without navigation.

The browser is installed by the test setup when missing (tests/browser.py); a machine where it
cannot be installed fails these tests instead of skipping them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser import LAUNCH_ARGS, BrowserUnavailable, ensure_chromium, read_png
from tests.console_client import SENHA, add_outro_prestador, add_usuarios
from tests.forwarding_stack import OPERADORAS, Stack, wait_until
from tests.gateway_process import WorkerProcess

pytestmark = pytest.mark.usefixtures("clean_faults", "logs_on_failure")

VIEWPORT = {"width": 1280, "height": 900}
VERDE, VERMELHA, TOPO = (0x1A, 0x7F, 0x37), (0xCF, 0x22, 0x2E), (0x0F, 0x2D, 0x4F)  # console.css colours


@pytest.fixture(scope="session")
def chromium() -> Path:
    try:
        return ensure_chromium()
    except BrowserUnavailable as exc:
        pytest.fail(f"sem navegador para os testes do console: {exc}")


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=str(chromium), args=LAUNCH_ARGS)
        yield found
        found.close()


@pytest.fixture(scope="module")
def users(stack: Stack) -> Stack:
    add_outro_prestador(stack)
    add_usuarios(stack)
    return stack


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, locale="pt-BR")
    found = context.new_page()
    errors: list[str] = []
    found.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    found.on("pageerror", lambda exc: errors.append(str(exc)))
    yield found
    context.close()
    assert errors == [], errors  # a CSP violation or a script error shows up here


def login(page: Page, stack: Stack, user: str, target: str = "/console/lotes") -> None:
    page.goto(stack.gateway.url(target))
    assert "/console/login" in page.url
    page.fill("#login", user)
    page.fill("#senha", SENHA)
    page.click("#form-login button[type=submit]")
    page.wait_for_url(f"**{target}")


def test_log_in_filter_the_lotes_and_open_one(users: Stack, worker: WorkerProcess, page: Page) -> None:
    numero, protocolo = users.send_lote("pasa", 2)
    _outro, protocolo_unimed = users.send_lote("unimed", 1)
    for p in (protocolo, protocolo_unimed):
        wait_until(lambda p=p: users.delivered(p), what=f"entrega {p}")
    login(page, users, "operador.teste")
    assert page.locator("h1").inner_text() == "Lotes"
    assert page.locator("tr[data-lote-id]").count() >= 2

    page.select_option("#f-operadora", OPERADORAS["pasa"][0])
    page.click("#filtrar")
    page.wait_for_url(f"**operadora={OPERADORAS['pasa'][0]}**")
    operators = page.locator("tr[data-lote-id] td:nth-child(5)").all_inner_texts()
    assert operators and all("331988" in text for text in operators)

    page.fill("#f-q", protocolo)
    page.click("#filtrar")
    page.wait_for_url(f"**q={protocolo}**")
    assert page.locator("tr[data-lote-id]").count() == 1
    page.locator("tr[data-lote-id] td:nth-child(3)").click()  # the whole row opens the lote (console.js)
    page.wait_for_url("**/console/lotes/*")
    assert page.locator("h1").inner_text().startswith(f"Lote {numero}")
    assert page.locator("#protocolo").inner_text() == protocolo
    assert page.locator("#guias tr[data-guia]").count() == 2

    page.click("#sair")
    page.wait_for_url("**/console/login")
    page.goto(users.gateway.url("/console/lotes"))
    assert "/console/login" in page.url


def test_screenshots_of_the_lote_page_and_the_capa(users: Stack, worker: WorkerProcess, page: Page,
                                                  tmp_path: Path) -> None:
    numero, protocolo = users.send_lote("pasa", 6, guide="sp-sadt")
    wait_until(lambda: users.delivered(protocolo), what="entrega")
    users.simulator.advance(days=30)  # analysed and paid: the capa has every figure
    wait_until(lambda: users.entregas(protocolo)[0].status in (4, 6) or None, what="análise da operadora")
    status = users.entregas(protocolo)[0].status
    colour = VERDE if status == 6 else VERMELHA
    login(page, users, "clinica.demo")
    page.fill("#f-q", protocolo)
    page.click("#filtrar")
    page.click("a.link-lote")
    page.wait_for_url("**/console/lotes/*")
    lote_url = page.url

    lote_png = tmp_path / "lote.png"
    page.screenshot(path=str(lote_png), full_page=True)
    shot = read_png(lote_png.read_bytes())
    assert shot.width == VIEWPORT["width"] and shot.height >= VIEWPORT["height"]
    assert shot.luminance_variance() > 200 and shot.distinct_colours() > 50  # a real page, not blank
    assert _pixels(shot, colour) > 40  # the status light (a 12 px dot) is there, in its colour
    assert _pixels(shot, TOPO) > 1000  # the navigation bar

    page.click("#link-capa")
    page.wait_for_url("**/capa")
    assert page.locator("#capa-lote").inner_text() == numero
    assert page.locator("#valor-processado").inner_text().startswith("R$")
    capa_png = tmp_path / "capa.png"
    page.screenshot(path=str(capa_png), full_page=True)
    capa = read_png(capa_png.read_bytes())
    assert capa.width == VIEWPORT["width"] and capa.luminance_variance() > 200
    assert _pixels(capa, colour) > 40 and _pixels(capa, TOPO) > 1000

    page.emulate_media(media="print")
    assert not page.locator("header.topo").is_visible()
    assert not page.locator("#imprimir").is_visible()
    assert page.locator("#capa-valores").is_visible() and page.locator("#relacao-guias").is_visible()
    printed_png = tmp_path / "capa-impressao.png"
    page.screenshot(path=str(printed_png), full_page=True)
    printed = read_png(printed_png.read_bytes())
    assert printed.luminance_variance() > 100
    assert _pixels(printed, TOPO) == 0  # no navigation on paper
    assert _pixels(printed, colour) > 40  # the status light prints in colour
    page.emulate_media(media="screen")
    assert page.locator("header.topo").is_visible()
    page.goto(lote_url)  # back to the lote: still signed in
    assert page.locator("#link-capa").is_visible()


def test_retry_a_dead_delivery_with_the_button(users: Stack, worker: WorkerProcess, page: Page) -> None:
    numero, protocolo, entrega = users.send_lote_until_dead("capitalprev")
    users.simulator.clear_fault("capitalprev")
    login(page, users, "operador.teste", "/console/entregas")
    button = page.locator(f"#reenviar-{entrega.id}")
    assert button.is_visible()

    page.once("dialog", lambda dialog: dialog.dismiss())  # "no" to the confirmation: nothing happens
    button.click()
    page.wait_for_timeout(500)
    assert users.entregas(protocolo)[0].estado == "morta" and "/console/entregas" in page.url

    questions: list[str] = []

    def accept(dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    button.click()
    page.wait_for_url(f"**reenviada={entrega.id}")
    assert questions == [f"Devolver a entrega {entrega.id} à fila de envio?"]
    assert str(entrega.id) in page.locator("#aviso").inner_text()
    wait_until(lambda: users.delivered(protocolo), what="entrega depois do reenvio")
    assert users.operator_lotes("capitalprev", numero) == {numero: 1}
    page.reload()
    assert page.locator(f"#reenviar-{entrega.id}").count() == 0


def _pixels(png, colour: tuple[int, int, int]) -> int:
    return png.count(colour)
