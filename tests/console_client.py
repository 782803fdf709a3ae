"""Helpers for the web console tests (HTTP and browser): console users made with the real
``tiss-gateway usuario`` / ``prestador`` commands, a second provider, and a ``requests`` client that
logs in through the login form and sends the CSRF token of the page it last read.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from decimal import Decimal

import requests
from lxml import html as lxml_html

from tests.factory import Party, cnpj_check_digits
from tests.forwarding_stack import OPERADORAS, Stack
from tests.gateway_process import cli

SENHA = "senha-forte-123"
OUTRO_CNPJ = cnpj_check_digits("334445550001")
OUTRO_LOGIN, OUTRO_SENHA = "clinicab", "senha-b"
DEMO_CNPJ = "11222333000181"
USUARIOS = {  # login -> (papel, prestador)
    "admin.teste": ("admin", None),
    "operador.teste": ("operador", None),
    "clinica.demo": ("prestador", DEMO_CNPJ),
    "clinica.b": ("prestador", OUTRO_CNPJ),
}


def stack_cli(stack: Stack, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return cli(*args, "--config", str(stack.config), "--database", stack.gateway.database_url,
               home=stack.gateway.home, stdin=stdin)


def add_outro_prestador(stack: Stack) -> None:
    """A second provider the gateway knows and the simulated operators do not (they refuse its lotes)."""
    codigos = [f"--codigo={registro}=9{codigo}" for registro, codigo in OPERADORAS.values()]
    done = stack_cli(stack, "prestador", "add", "--documento", OUTRO_CNPJ, "--nome", "Clínica B",
                     "--login", OUTRO_LOGIN, "--senha-stdin", *codigos, stdin=OUTRO_SENHA + "\n")
    assert done.returncode == 0, done.stdout + done.stderr


def add_usuarios(stack: Stack) -> None:
    for login, (papel, prestador) in USUARIOS.items():
        extra = ["--prestador", prestador] if prestador else []
        done = stack_cli(stack, "usuario", "add", login, "--nome", f"Usuário {login}", "--papel", papel,
                         *extra, "--senha-stdin", stdin=SENHA + "\n")
        assert done.returncode == 0, done.stdout + done.stderr


def outro_party(key: str) -> Party:
    registro, codigo = OPERADORAS[key]
    return Party(cnpj=OUTRO_CNPJ, login=OUTRO_LOGIN, senha=OUTRO_SENHA, registro_ans=registro,
                 codigo_na_operadora=f"9{codigo}")


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_CSRF_LOGIN = re.compile(r'name="csrf_login" value="([^"]+)"')


@dataclass
class Console:
    """One browser-like user of the console (its own cookie jar)."""

    base_url: str  # the gateway's, e.g. http://127.0.0.1:PORT
    csrf: str | None = None

    def __post_init__(self) -> None:
        self.http = requests.Session()

    def url(self, path: str) -> str:
        return f"{self.base_url}/console{path}"

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 60)
        response = self.http.get(self.url(path), **kwargs)
        page = response.headers.get("Content-Type", "").startswith("text/html")
        found = _CSRF.search(response.text) if page else None
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True,
             **kwargs) -> requests.Response:
        data = dict(data or {})
        if csrf and "csrf" not in data:
            data["csrf"] = self.csrf or ""
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 60)
        return self.http.post(self.url(path), data=data, **kwargs)

    def login(self, login: str, senha: str = SENHA, *,
              headers: dict[str, str] | None = None) -> requests.Response:
        form = self.http.get(self.url("/login"), timeout=60, headers=headers)
        assert form.status_code == 200, form.text[:2000]
        token = _CSRF_LOGIN.search(form.text).group(1)
        form_data = {"login": login, "senha": senha, "csrf_login": token, "proximo": "/console/lotes"}
        response = self.http.post(self.url("/login"), data=form_data, allow_redirects=False, timeout=60,
                                  headers=headers)
        if response.status_code == 303:
            self.get("/lotes")  # the session's CSRF token
        return response

    @property
    def token(self) -> str | None:
        return self.http.cookies.get("tiss_console")


def doc(response: requests.Response):
    return lxml_html.fromstring(response.text)


def figura(page, element_id: str) -> Decimal | int | None:
    """A figure of the capa (data-valor of the element with that id): Decimal, int or None (—)."""
    (element,) = page.xpath(f'//*[@id="{element_id}"]')
    value = element.get("data-valor")
    if not value:
        return None
    return int(value) if value.isdigit() else Decimal(value)


def lote_ids(response: requests.Response) -> list[int]:
    return [int(x) for x in doc(response).xpath("//tr/@data-lote-id")]
