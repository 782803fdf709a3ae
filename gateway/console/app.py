"""The console's WSGI application (mounted at ``/console`` by gateway.soap.app.TissWsgi).

Pages (GET unless said): ``/login`` (GET, POST), ``/logout`` (POST), ``/lotes`` (filters: de, ate,
operadora, prestador, situacao, q; pagina), ``/lotes/<id>``, ``/lotes/<id>/capa``,
``/mensagens/<id>``, ``/mensagens/<id>/xml`` (download), ``/recusadas`` (pagina_lotes, pagina),
``/entregas`` (dead letters) and ``/entregas/<id>/reenviar`` (POST), ``/demonstrativos``,
``/demonstrativos/<id>``, ``/graficos``, ``/static/<file>``.

Every page but the login needs a session; every POST but the login's checks the session's CSRF
token (403 otherwise). A page about data the user may not see answers 404, like a missing one.
GET pages read through DEFERRED (read-only) transactions; login, logout, retries and downloads
write, and audit, in their own.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import Config
from gateway.console import (
    arquivos,
    auth,
    capa,
    charts,
    demonstrativos,
    desfecho,
    formatos,
    queries,
    situacao,
    xml_view,
)
from gateway.console.capa import Analise
from gateway.console.web import (
    PREFIX,
    FormTooLarge,
    Request,
    Response,
    StartResponse,
    StaticFiles,
    attachment,
    html,
    redirect,
    safe_next,
)
from gateway.delivery.outbox import retry_dead
from gateway.delivery.status_names import StatusNames
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.tables import SITUACOES_PROTOCOLO
from gateway.storage.auditoria import auditar
from gateway.tentativas import Limites

log = logging.getLogger("tiss_gateway.console")
HERE = Path(__file__).resolve().parent
COOKIE, LOGIN_COOKIE = "tiss_console", "tiss_console_login"
LOGIN_FORM_SECONDS = 1800
MAX_DIAS_GRAFICO = 366
MAX_LOTES_GLOSA = 1500  # the glosa chart reads the newest analysed lotes' answers (cached per process)
SENHA_REMOVIDA = "senhaPrestador removida antes de armazenar"  # no credential at rest
_ID = "([0-9]{1,18})"

Handler = Callable[..., Response]


@dataclass(frozen=True)
class Rota:
    method: str
    pattern: re.Pattern[str]
    handler: str  # ConsoleApp method name


ROTAS = [Rota(m, re.compile(p), h) for m, p, h in (
    ("GET", r"/lotes", "pagina_lotes"),
    ("GET", rf"/lotes/{_ID}", "pagina_lote"),
    ("GET", rf"/lotes/{_ID}/capa", "pagina_capa"),
    ("GET", rf"/lotes/{_ID}/arquivos/{_ID}", "baixar_arquivo"),
    ("GET", rf"/lotes/{_ID}/arquivos\.zip", "baixar_arquivos"),
    ("POST", rf"/lotes/{_ID}/arquivos/{_ID}/protocolo", "protocolo_do_portal"),
    ("POST", rf"/lotes/{_ID}/retorno", "retorno_do_portal"),
    ("GET", rf"/mensagens/{_ID}", "pagina_mensagem"),
    ("GET", rf"/mensagens/{_ID}/xml", "baixar_mensagem"),
    ("GET", r"/recusadas", "pagina_recusadas"),
    ("GET", r"/entregas", "pagina_entregas"),
    ("POST", rf"/entregas/{_ID}/reenviar", "reenviar"),
    ("GET", r"/demonstrativos", "pagina_demonstrativos"),
    ("GET", rf"/demonstrativos/{_ID}", "pagina_demonstrativo"),
    ("GET", r"/graficos", "pagina_graficos"),
    ("POST", r"/logout", "logout"),
)]


class BadRequest(Exception):
    """A filter or parameter the user typed that cannot be used (400, the page explains)."""


class ConsoleApp:
    def __init__(self, config: Config, sessions: sessionmaker[Session], readers: sessionmaker[Session],
                 registry: SchemaRegistry, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 status_names: StatusNames | None = None):
        self.config = config
        self.sessions = sessions
        self.readers = readers
        self.registry = registry
        self.clock = clock
        # The operators' own status names, shown beside the TISS ones (from their adapters).
        self.status_names = status_names or StatusNames.from_config(config, registry)
        self.static = StaticFiles(HERE / "static")
        self.cache = capa.MessageCache()
        # Built once per process; templates compile on first use and stay (no mtime checks).
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                               auto_reload=False, trim_blocks=True, lstrip_blocks=True,
                               undefined=StrictUndefined)
        self.env.filters.update(data_hora=formatos.data_hora, data=formatos.data, reais=formatos.reais,
                                carteira=formatos.carteira, numero=formatos.numero,
                                percentual=formatos.percentual, valor_exato=_valor_exato)
        self.env.globals.update(PREFIX=PREFIX, STATUS=SITUACOES_PROTOCOLO, operadora_nome=self.operadora_nome,
                                status_luz=situacao.do_status, NAO_INFORMADO=formatos.NAO_INFORMADO,
                                status_na_operadora=self.status_names.label, origem_nome=self.origem_nome,
                                RECUSADA_POR=desfecho.RECUSADA_POR)

    # -- WSGI ------------------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except FormTooLarge:
            response = self.erro(request, None, "413 Request Entity Too Large", "Formulário grande demais.")
        except Exception:  # a bug: log it, answer a plain error page (never a traceback)
            log.exception("erro no console: %s %s", request.method, request.path)
            response = self.erro(request, None, "500 Internal Server Error", "Erro inesperado no console.")
        return response(start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/static/") and request.method in ("GET", "HEAD"):
            found = self.static.get(path.removeprefix("/static/"))
            return found or self.erro(request, None, "404 Not Found", "Arquivo não encontrado.")
        if path in ("/", ""):
            return redirect(f"{PREFIX}/lotes")
        if path == "/login":
            if request.method == "POST":
                return self.login(request)
            if request.method == "GET":
                return self.login_form(request)
            return self.erro(request, None, "405 Method Not Allowed", "Método não permitido.")
        escopo = self.escopo(request)
        if escopo is None:
            target = f"{PREFIX}/login"
            if request.method == "GET":
                target += f"?{urlencode({'proximo': request.full_path})}"
            response = redirect(target)
            if COOKIE in request.cookies:
                response.delete_cookie(COOKIE, secure=request.https)
            return response
        for rota in ROTAS:
            match = rota.pattern.fullmatch(path)
            if match is None:
                continue
            if rota.method != request.method and not (rota.method == "GET" and request.method == "HEAD"):
                return self.erro(request, escopo, "405 Method Not Allowed", "Método não permitido.")
            if request.method == "POST" and not auth.mesmo_token(escopo.csrf, request.form.get("csrf")):
                return self.erro(request, escopo, "403 Forbidden",
                                 "Formulário inválido ou expirado (proteção CSRF). Volte e tente de novo.")
            try:
                return getattr(self, rota.handler)(request, escopo, *(int(g) for g in match.groups()))
            except BadRequest as exc:
                return self.erro(request, escopo, "400 Bad Request", str(exc))
        return self.erro(request, escopo, "404 Not Found", "Página não encontrada.")

    # -- helpers ---------------------------------------------------------------------------------
    def render(self, template: str, status: str = "200 OK", **context: Any) -> Response:
        return html(self.env.get_template(template).render(**context), status)

    def page(self, request: Request, escopo: auth.Escopo, template: str, secao: str, status: str = "200 OK",
             **context: Any) -> Response:
        return self.render(template, status, escopo=escopo, secao=secao, request=request,
                           operadoras=self.operadoras(), **context)

    def erro(self, request: Request, escopo: auth.Escopo | None, status: str, mensagem: str) -> Response:
        return self.render("erro.html", status, escopo=escopo, secao="", request=request, titulo=status,
                           mensagem=mensagem, operadoras=self.operadoras())

    def nao_encontrado(self, request: Request, escopo: auth.Escopo) -> Response:
        return self.erro(request, escopo, "404 Not Found", "Não encontrado.")

    def operadoras(self) -> dict[str, str]:
        return {r: o.nome for r, o in sorted(self.config.operadoras.items(), key=lambda item: item[1].nome)}

    def operadora_nome(self, registro_ans: str | None) -> str:
        found = self.config.operadoras.get(registro_ans or "")
        return f"{found.nome} ({registro_ans})" if found else (registro_ans or formatos.NAO_INFORMADO)

    def origem_nome(self, origem: str) -> str:
        """Who reported a status, as stored in its history: "operadora:331988" names the operator."""
        quem, _, registro = origem.partition(":")
        return f"Operadora {self.operadora_nome(registro)}" if quem == "operadora" and registro else origem

    def escopo(self, request: Request) -> auth.Escopo | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        with self.readers() as session:
            return auth.escopo_do_token(session, token, self.clock())

    # -- login / logout --------------------------------------------------------------------------
    def login_form(self, request: Request, *, status: str = "200 OK", mensagem: str | None = None,
                   login: str = "") -> Response:
        if status == "200 OK" and self.escopo(request) is not None:
            return redirect(safe_next(request.query.get("proximo")))
        token = auth.novo_token()
        response = self.render("login.html", status, escopo=None, secao="login", request=request,
                               operadoras={}, token=token, mensagem=mensagem, login=login,
                               proximo=safe_next(request.form.get("proximo") if request.method == "POST"
                                                 else request.query.get("proximo")))
        return response.set_cookie(LOGIN_COOKIE, token, secure=request.https, max_age=LOGIN_FORM_SECONDS)

    def login(self, request: Request) -> Response:
        form = request.form
        if not auth.mesmo_token(request.cookies.get(LOGIN_COOKIE), form.get("csrf_login")):
            return self.login_form(request, status="403 Forbidden",
                                   mensagem="O formulário expirou. Digite login e senha de novo.")
        login, senha = form.get("login", "").strip(), form.get("senha", "")
        settings, now = self.config.gateway, self.clock()
        with self.sessions.begin() as session:
            entrada = auth.autenticar(session, login, senha, now=now, limites=Limites.de(settings),
                                      endereco=request.endereco)
            token = None
            if entrada.usuario is not None:
                token, _row = auth.abrir_sessao(session, entrada.usuario, now=now, endereco=request.endereco,
                                                horas=self.config.console.sessao_horas)
        if token is None:
            return self.login_form(request, status="401 Unauthorized", login=login[:60],
                                   mensagem="Login ou senha inválidos, ou acesso bloqueado temporariamente "
                                            "após tentativas seguidas.")
        response = redirect(safe_next(form.get("proximo")))
        response.set_cookie(COOKIE, token, secure=request.https,
                            max_age=int(self.config.console.sessao_horas * 3600))
        return response.delete_cookie(LOGIN_COOKIE, secure=request.https)

    def logout(self, request: Request, escopo: auth.Escopo) -> Response:
        with self.sessions.begin() as session:
            auth.fechar_sessao(session, escopo, now=self.clock(), endereco=request.endereco)
        return redirect(f"{PREFIX}/login").delete_cookie(COOKIE, secure=request.https)

    # -- lotes -----------------------------------------------------------------------------------
    def _filtro(self, request: Request, escopo: auth.Escopo) -> queries.FiltroLotes:
        q = request.query
        try:
            de, ate = formatos.dia_do_formulario(q.get("de")), formatos.dia_do_formulario(q.get("ate"))
        except ValueError:
            raise BadRequest("Data inválida: use o formato AAAA-MM-DD.") from None
        registro = q.get("operadora", "").strip() or None
        if registro is not None and not re.fullmatch(r"[0-9]{6}", registro):
            raise BadRequest("Operadora inválida: informe o registro ANS (6 dígitos).")
        codigo = q.get("situacao", "").strip() or None
        if codigo is not None and codigo not in {value for value, _l, _c in situacao.opcoes()}:
            raise BadRequest("Situação desconhecida.")
        prestador = _inteiro(q.get("prestador"), "Prestador") if escopo.prestador_id is None else None
        busca = q.get("q", "").strip()[:40] or None
        return queries.FiltroLotes(de, ate, registro, prestador, codigo, busca)

    def pagina_lotes(self, request: Request, escopo: auth.Escopo) -> Response:
        filtro = self._filtro(request, escopo)
        pagina = _inteiro(request.query.get("pagina"), "Página") or 1
        with self.readers() as session:
            found = queries.lotes(session, filtro, escopo_prestador=escopo.prestador_id, pagina=pagina)
            prestadores = queries.prestadores(session) if escopo.prestador_id is None else []
        return self.page(request, escopo, "lotes.html", "lotes", filtro=filtro, resultado=found,
                         prestadores=prestadores, situacoes=situacao.opcoes(),
                         links=_paginacao(request, found))

    def _lote(self, session: Session, escopo: auth.Escopo, lote_id: int) -> dict[str, Any] | None:
        row = queries.lote(session, lote_id, escopo_prestador=escopo.prestador_id)
        if row is None:
            return None
        lote, protocolo, prestador = row
        entregas = queries.entregas(session, lote.id)
        demonstrativos_ = queries.demonstrativos_do_protocolo(session, lote.protocolo_id)
        figuras = self.capa(session, lote, entregas, demonstrativos_)
        status = protocolo.status if protocolo else None
        estados: dict[str, int] = {}
        for e in entregas:
            estado = situacao.estado_da_luz(e.estado, e.resposta_id is not None)
            estados[estado] = estados.get(estado, 0) + 1
        criticas = queries.criticas(session, lote.id, queries.mensagens_do_lote(lote, entregas))
        return dict(lote=lote, protocolo=protocolo, prestador=prestador, entregas=entregas,
                    demonstrativos=demonstrativos_, capa=figuras, luz=situacao.do_lote(status, estados),
                    criticas=criticas, cadeia=queries.cadeia(session, lote),
                    desfecho=desfecho.montar(queries.guias(session, lote.id), criticas, status=status,
                                             mensagem_id=lote.mensagem_id))

    def capa(self, session: Session, lote: Any, entregas: list[Any], demonstrativos_: list[Any]) -> capa.Capa:
        def corpo(mensagem_id: int) -> bytes | None:
            return queries.corpo(session, mensagem_id)

        apresentado = None
        if lote.mensagem_id is not None:
            apresentado = self.cache.get("apresentado", lote.mensagem_id,
                                         lambda: capa.apresentado(corpo(lote.mensagem_id)))
        partes = [capa.Parte(e.numero_protocolo, e.estado, e.situacao_id) for e in entregas]
        analises = [d.mensagem_id for d in reversed(demonstrativos_) if d.tipo in ("2", "3")]  # oldest first
        return capa.montar(apresentado, partes, self._analises_demonstrativos(corpo, analises),
                           self._situacoes(corpo, [e.situacao_id for e in entregas if e.situacao_id]),
                           valor_informado=lote.valor_informado, quantidade_guias=lote.quantidade_guias)

    def _analises_demonstrativos(self, corpo: Callable[[int], bytes | None],
                                 mensagem_ids: list[int]) -> dict[str, Analise]:
        """Oldest first: a newer demonstrativo of the same protocol replaces an older one."""
        found: dict[str, Analise] = {}
        for mensagem_id in mensagem_ids:
            found.update(self.cache.get("demonstrativo", mensagem_id,
                                        functools.partial(_demonstrativo, corpo, mensagem_id)))
        return found

    def _situacoes(self, corpo: Callable[[int], bytes | None],
                   ids: list[int]) -> dict[int, Analise | None]:
        return {i: self.cache.get("situacao", i, functools.partial(_situacao, corpo, i, self.registry))
                for i in ids}

    def pagina_lote(self, request: Request, escopo: auth.Escopo, lote_id: int) -> Response:
        with self.readers() as session:
            dados = self._lote(session, escopo, lote_id)
            if dados is None:
                return self.nao_encontrado(request, escopo)
            lote = dados["lote"]
            historico = queries.historico(session, lote.protocolo_id)
            mensagens = self._mensagens_do_lote(session, lote, dados["entregas"], dados["demonstrativos"])
            por_arquivo = arquivos.contexto(session, request, lote.id)
        return self.page(request, escopo, "lote.html", "lotes", historico=historico, mensagens=mensagens,
                         **dados, **por_arquivo)

    # -- the upload-file channel (gateway.console.arquivos) --------------------------------------
    def baixar_arquivo(self, request: Request, escopo: auth.Escopo, lote_id: int,
                       arquivo_id: int) -> Response:
        found = arquivos.baixar(self.sessions, request, escopo, lote_id, arquivo_id, self.clock())
        return found or self.nao_encontrado(request, escopo)

    def baixar_arquivos(self, request: Request, escopo: auth.Escopo, lote_id: int) -> Response:
        found = arquivos.baixar(self.sessions, request, escopo, lote_id, None, self.clock())
        return found or self.nao_encontrado(request, escopo)

    def protocolo_do_portal(self, request: Request, escopo: auth.Escopo, lote_id: int,
                            arquivo_id: int) -> Response:
        found = arquivos.protocolo(self.sessions, request, escopo, lote_id, arquivo_id, self.clock())
        return found or self.nao_encontrado(request, escopo)

    def retorno_do_portal(self, request: Request, escopo: auth.Escopo, lote_id: int) -> Response:
        found = arquivos.retorno(self.sessions, self.registry, request, escopo, lote_id, self.clock())
        return found or self.nao_encontrado(request, escopo)

    def pagina_capa(self, request: Request, escopo: auth.Escopo, lote_id: int) -> Response:
        with self.readers() as session:
            dados = self._lote(session, escopo, lote_id)
        if dados is None:
            return self.nao_encontrado(request, escopo)
        return self.page(request, escopo, "capa.html", "lotes", agora=self.clock(), **dados)

    def _mensagens_do_lote(self, session: Session, lote: Any, entregas: list[Any],
                           demonstrativos_: list[Any]) -> list[dict[str, Any]]:
        """Every stored message of the lote, oldest first, each with what it is."""
        rotulos: dict[int, str] = {}
        if lote.mensagem_id is not None:
            rotulos[lote.mensagem_id] = "Lote recebido do prestador"
        respostas_de: dict[int, str] = {}  # message id -> label of the messages that answer it
        if lote.mensagem_id is not None:
            respostas_de[lote.mensagem_id] = "Resposta ao prestador (protocolo de recebimento)"
        encadeadas: dict[int, tuple[str, ...]] = {}  # answer id -> labels of its request chain, upwards
        for e in entregas:
            parte = f"parte {e.parte}/{e.partes or '?'}"
            if e.envio_id:
                rotulos[e.envio_id] = f"Envio à operadora ({parte}, lote {e.numero_lote or '—'})"
                respostas_de[e.envio_id] = f"Resposta da operadora ao envio ({parte})"
            if e.situacao_id:
                rotulos[e.situacao_id] = f"Situação do protocolo informada pela operadora ({parte})"
                encadeadas[e.situacao_id] = (f"Consulta de situação à operadora ({parte})",)
        for d in demonstrativos_:
            rotulos[d.mensagem_id] = "Demonstrativo informado pela operadora"
            encadeadas[d.mensagem_id] = ("Pedido de demonstrativo enviado à operadora",
                                         "Pedido de demonstrativo do prestador")
        rows = {r.id: r for r in queries.mensagens(session, set(rotulos))}
        for answer_id, chain in encadeadas.items():  # up the request chain of each answer
            current = rows.get(answer_id)
            for label in chain:
                parent_id = current.resposta_de_id if current is not None else None
                if parent_id is None:
                    break
                if parent_id not in rows:
                    for r in queries.mensagens(session, {parent_id}):
                        rows.setdefault(r.id, r)
                rotulos.setdefault(parent_id, label)
                current = rows.get(parent_id)
        found = []
        for row in sorted(rows.values(), key=lambda r: r.id):
            rotulo = rotulos.get(row.id)
            if rotulo is None and row.resposta_de_id in respostas_de:
                rotulo = respostas_de[row.resposta_de_id]
            if rotulo is None and row.resposta_de_id in rotulos and row.direcao == "saida":
                rotulo = f"Resposta ao prestador ({row.servico})"
            found.append(dict(row=row, rotulo=rotulo or f"{row.servico or 'mensagem'} ({row.direcao})"))
        return found

    # -- messages --------------------------------------------------------------------------------
    def pagina_mensagem(self, request: Request, escopo: auth.Escopo, mensagem_id: int) -> Response:
        with self.readers() as session:
            row = queries.mensagem(session, mensagem_id, escopo_prestador=escopo.prestador_id)
            if row is None:
                return self.nao_encontrado(request, escopo)
            view = xml_view.mostrar(queries.corpo(session, mensagem_id))
            criticas = queries.criticas_da_mensagem(session, mensagem_id)
            lote_id = queries.lote_da_mensagem(session, mensagem_id)
        return self.page(request, escopo, "mensagem.html", "", mensagem=row, xml=view, criticas=criticas,
                         lote_id=lote_id)

    def baixar_mensagem(self, request: Request, escopo: auth.Escopo, mensagem_id: int) -> Response:
        with self.sessions.begin() as session:
            row = queries.mensagem(session, mensagem_id, escopo_prestador=escopo.prestador_id)
            if row is None:
                return self.nao_encontrado(request, escopo)
            body = queries.corpo(session, mensagem_id) or b""
            auditar(session, escopo.login, "console_download",
                    f"mensagem {mensagem_id} ({row.servico}, {row.direcao}, {len(body)} bytes)",
                    request.endereco, self.clock())
        if not body:
            return self.erro(request, escopo, "410 Gone", "O corpo desta mensagem não está mais armazenado.")
        sem_senha = "-sem-senha" if row.sha256_original else ""
        download = attachment(body, f"mensagem-{mensagem_id}-{row.servico or 'tiss'}{sem_senha}.xml",
                              "application/xml")
        if row.sha256_original:  # stored without its senha (gateway.message.credencial): said with the file
            download.headers.append(("X-TISS-Senha-Removida", f"{SENHA_REMOVIDA}; SHA-256 original "
                                     f"{row.sha256_original}; {row.tamanho_original} bytes"))
        return download

    def pagina_recusadas(self, request: Request, escopo: auth.Escopo) -> Response:
        """Two lists, each paged on its own: lotes with a protocol the operator refused (whole or
        in part, or guides refused at acceptance), and messages the gateway refused at once."""
        pagina = _inteiro(request.query.get("pagina"), "Página") or 1
        pagina_lotes = _inteiro(request.query.get("pagina_lotes"), "Página") or 1
        with self.readers() as session:
            found = queries.recusadas(session, escopo_prestador=escopo.prestador_id, pagina=pagina)
            lotes = queries.com_desfecho(session, queries.recusadas_com_protocolo(
                session, escopo_prestador=escopo.prestador_id, pagina=pagina_lotes))
        return self.page(request, escopo, "recusadas.html", "recusadas", resultado=found,
                         links=_paginacao(request, found), lotes=lotes,
                         links_lotes=_paginacao(request, lotes, "pagina_lotes"))

    # -- dead-lettered deliveries ----------------------------------------------------------------
    def pagina_entregas(self, request: Request, escopo: auth.Escopo) -> Response:
        pagina = _inteiro(request.query.get("pagina"), "Página") or 1
        registro = request.query.get("operadora", "").strip() or None
        if registro is not None and not re.fullmatch(r"[0-9]{6}", registro):
            raise BadRequest("Operadora inválida: informe o registro ANS (6 dígitos).")
        with self.readers() as session:
            found = queries.entregas_mortas(session, escopo_prestador=escopo.prestador_id,
                                            registro_ans=registro, pagina=pagina)
        aviso = None
        if request.query.get("reenviada", "").isdigit():
            aviso = f"Entrega {request.query['reenviada']} devolvida à fila: o worker vai enviá-la de novo."
        elif request.query.get("nao_reenviada", "").isdigit():
            aviso = f"A entrega {request.query['nao_reenviada']} não estava mais morta: nada a reenviar."
        return self.page(request, escopo, "entregas.html", "entregas", resultado=found, aviso=aviso,
                         registro=registro, links=_paginacao(request, found))

    def reenviar(self, request: Request, escopo: auth.Escopo, entrega_id: int) -> Response:
        if not escopo.pode_reenviar:
            return self.erro(request, escopo, "403 Forbidden",
                             "Só administradores e operadores reenviam entregas.")
        with self.sessions.begin() as session:
            entrega = queries.entrega(session, entrega_id)
            if entrega is None:
                return self.nao_encontrado(request, escopo)
            antes = entrega.estado
            count = retry_dead(session, [entrega_id], now=self.clock())
            auditar(session, escopo.login, "console_reenvio",
                    f"entrega {entrega_id} (operadora {entrega.registro_ans}, "
                    f"lote {entrega.numero_lote or '—'}, estado {antes}): "
                    f"{'devolvida à fila' if count else 'nada a reenviar'}",
                    request.endereco, self.clock())
        key = "reenviada" if count else "nao_reenviada"
        return redirect(f"{PREFIX}/entregas?{key}={entrega_id}")

    # -- demonstrativos --------------------------------------------------------------------------
    def pagina_demonstrativos(self, request: Request, escopo: auth.Escopo) -> Response:
        pagina = _inteiro(request.query.get("pagina"), "Página") or 1
        registro = request.query.get("operadora", "").strip() or None
        tipo = request.query.get("tipo", "").strip() or None
        if registro is not None and not re.fullmatch(r"[0-9]{6}", registro):
            raise BadRequest("Operadora inválida: informe o registro ANS (6 dígitos).")
        if tipo is not None and tipo not in demonstrativos.TIPOS:
            raise BadRequest("Tipo de demonstrativo desconhecido.")
        with self.readers() as session:
            found = queries.demonstrativos(session, escopo_prestador=escopo.prestador_id,
                                           registro_ans=registro, tipo=tipo, pagina=pagina)
        return self.page(request, escopo, "demonstrativos.html", "demonstrativos", resultado=found,
                         registro=registro, tipo=tipo, tipos=demonstrativos.TIPOS,
                         links=_paginacao(request, found))

    def pagina_demonstrativo(self, request: Request, escopo: auth.Escopo, demonstrativo_id: int) -> Response:
        with self.readers() as session:
            row = queries.demonstrativo(session, demonstrativo_id, escopo_prestador=escopo.prestador_id)
            if row is None:
                return self.nao_encontrado(request, escopo)
            dem = row[0]
            figuras = self.cache.get("figuras", dem.mensagem_id,
                                     lambda: demonstrativos.figuras(queries.corpo(session, dem.mensagem_id)))
            numeros = [linha.numero_protocolo for f in figuras or () for linha in f.protocolos
                       if linha.numero_protocolo]
            lotes = queries.protocolos_da_operadora(session, dem.registro_ans, numeros, dem.prestador_id)
        return self.page(request, escopo, "demonstrativo.html", "demonstrativos", demonstrativo=dem,
                         linha=row, figuras=figuras, lotes_por_protocolo=lotes, tipos=demonstrativos.TIPOS)

    # -- charts ----------------------------------------------------------------------------------
    def pagina_graficos(self, request: Request, escopo: auth.Escopo) -> Response:
        quantos = _inteiro(request.query.get("dias"), "Dias")
        quantos = 30 if quantos is None else quantos
        if not 1 <= quantos <= MAX_DIAS_GRAFICO:
            raise BadRequest(f"Período deve ter de 1 a {MAX_DIAS_GRAFICO} dias.")
        registro = request.query.get("operadora", "").strip() or None
        if registro is not None and not re.fullmatch(r"[0-9]{6}", registro):
            raise BadRequest("Operadora inválida: informe o registro ANS (6 dígitos).")
        fim = queries.hoje()
        inicio = fim - timedelta(days=quantos - 1)
        with self.readers() as session:
            volume = queries.lotes_por_dia(session, inicio, fim, escopo_prestador=escopo.prestador_id,
                                           registro_ans=registro)
            taxas, lotes_lidos = self._taxas_de_glosa(session, inicio, fim, escopo, registro)
        return self.page(request, escopo, "graficos.html", "graficos", dias=quantos, registro=registro,
                         inicio=inicio, fim=fim, volume=charts.volume_por_dia(volume, inicio, fim),
                         total_lotes=sum(volume.values()), taxas=taxas,
                         glosa=charts.glosa_por_operadora(taxas),
                         amostra=MAX_LOTES_GLOSA if lotes_lidos >= MAX_LOTES_GLOSA else None)

    def _taxas_de_glosa(self, session: Session, inicio: date, fim: date, escopo: auth.Escopo,
                        registro: str | None) -> tuple[list[charts.TaxaGlosa], int]:
        """Glosa rate per operator: valor glosado / the value of the accepted guides (what the
        operator received: guides refused at acceptance never reached it) over the period's newest
        MAX_LOTES_GLOSA lotes whose every part the operator analysed (figures as on the capa);
        and how many lotes were read."""
        partes = queries.partes_analisadas(session, inicio, fim, escopo_prestador=escopo.prestador_id,
                                           registro_ans=registro, limite=MAX_LOTES_GLOSA)
        analisados: dict[int, list[Any]] = {}
        for p in partes:
            analisados.setdefault(p.lote_id, []).append(p)
        dems: dict[int, list[int]] = {}
        for protocolo_id, mensagem_id in queries.demonstrativos_dos_protocolos(
                session, [v[0].protocolo_id for v in analisados.values() if v[0].protocolo_id]):
            dems.setdefault(protocolo_id, []).append(mensagem_id)

        def corpo(mensagem_id: int) -> bytes | None:
            return queries.corpo(session, mensagem_id)

        somas: dict[str, list] = {}
        for partes_ in analisados.values():
            first = partes_[0]
            figuras = capa.montar(None,
                                  [capa.Parte(p.numero_protocolo, p.estado, p.situacao_id) for p in partes_],
                                  self._analises_demonstrativos(corpo, dems.get(first.protocolo_id, [])),
                                  self._situacoes(corpo, [p.situacao_id for p in partes_ if p.situacao_id]),
                                  valor_informado=first.valor_aceito, quantidade_guias=None)
            if figuras.valor_glosado is None or not figuras.valor_informado:
                continue
            soma = somas.setdefault(first.registro_ans, [0, Decimal("0.00"), Decimal("0.00")])
            soma[0] += 1
            soma[1] += figuras.valor_informado
            soma[2] += figuras.valor_glosado
        taxas = sorted((charts.TaxaGlosa(self.operadora_nome(r), n, aceito, glosado)
                        for r, (n, aceito, glosado) in somas.items()), key=lambda t: t.operadora)
        return taxas, len(analisados)


def _inteiro(texto: str | None, campo: str) -> int | None:
    texto = (texto or "").strip()
    if not texto:
        return None
    if not re.fullmatch(r"[0-9]{1,9}", texto):
        raise BadRequest(f"{campo} inválido: {texto[:20]!r}.")
    return int(texto)


def _paginacao(request: Request, pagina: queries.Pagina, chave: str = "pagina") -> dict[str, str | None]:
    def link(numero: int) -> str:
        query = {k: v for k, v in request.query.items() if k != chave and v}
        query[chave] = str(numero)
        return f"{PREFIX}{request.path}?{urlencode(query)}"

    return {"anterior": link(pagina.pagina - 1) if pagina.pagina > 1 else None,
            "proxima": link(pagina.pagina + 1) if pagina.tem_proxima else None}


def _valor_exato(valor: Decimal | None) -> str:
    """The exact decimal, for data-valor attributes (tests and scripts read figures from them)."""
    return "" if valor is None else str(valor)


def _demonstrativo(corpo: Callable[[int], bytes | None], mensagem_id: int) -> dict[str, Analise]:
    return capa.dos_demonstrativos(corpo(mensagem_id))


def _situacao(corpo: Callable[[int], bytes | None], mensagem_id: int,
             registry: SchemaRegistry) -> Analise | None:
    return capa.da_situacao(corpo(mensagem_id), registry)
