"""The gateway's configuration: one TOML file (see ``docs/config-example.toml``).

Lookup when no path is given: ``$TISS_GATEWAY_CONFIG``, else ``<home>/config.toml`` if it exists,
else the built-in defaults (no operators, no providers). Every key is checked: unknown keys, a
registro ANS that is not 6 digits, a CNPJ/CPF whose check digits do not match or an unknown hash
variant stop the load with a :class:`ConfigError` that names the file and the key.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from gateway.home import gateway_home
from gateway.message import hashing
from gateway.message.identificacao import PrestadorError, md5_hex, normaliza_documento, tipo_documento
from gateway.message.tables import VERSIONS
from gateway.security.senhas import hash_senha, parse_senha_hash

MiB = 1024 * 1024
CONFIG_ENV = "TISS_GATEWAY_CONFIG"
DATABASE_URL_ENV = "TISS_GATEWAY_DATABASE_URL"  # overrides gateway.database_url (containers)
CONFIG_FILE = "config.toml"
FAULT_HTTP_STATUSES = (200, 400, 500)
CANAL_WEBSERVICE, CANAL_ARQUIVO = "webservice", "arquivo"  # [operadoras.NNNNNN] canal

_REGISTRO_ANS = re.compile(r"[0-9]{6}")
_VERSAO = re.compile(r"[0-9]\.[0-9]{2}\.[0-9]{2}")
_ADAPTER = re.compile(r"[a-z_][a-z0-9_]*")
_DATABASE_URL = re.compile(r"(sqlite|postgres(ql)?)(\+\w+)?://")
_SHA256 = re.compile(r"(?:sha256:)?((?:[0-9a-f]{2}:?){31}[0-9a-f]{2})")
_HEADER = re.compile(r"[A-Za-z0-9-]+")
# certificado_cliente: the certificate must carry the provider's CNPJ/CPF (ICP-Brasil otherName
# or CN "NOME:DOCUMENTO"), its chain verified by the TLS layer (gunicorn ca_certs or the proxy).
CERTIFICADO_DOCUMENTO = "documento"


class ConfigError(ValueError):
    """The configuration file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class GatewaySettings:
    public_base_url: str | None = None  # None: build URLs (WSDL soap:address) from the request's host
    database_url: str | None = None  # None: sqlite:///<home>/gateway.sqlite
    max_message_bytes: int = 15 * MiB
    # Failed logins are counted per (login, client address): lockout_attempts failures of a login
    # from one address (within a day, none succeeding) refuse that login from that address only,
    # for lockout_minutes; from anywhere else it keeps working (gateway.tentativas).
    lockout_attempts: int = 5
    lockout_minutes: int = 30
    # An address that fails throttle_failures logins (any logins) within throttle_window_minutes is
    # refused for every login for throttle_minutes; no account is touched.
    throttle_failures: int = 20
    throttle_window_minutes: int = 10
    throttle_minutes: int = 15
    # HTTP status of a tissFaultWS the client caused (server errors are always 500). 500 by default:
    # WS-I Basic Profile R1126, and suds/JAX-WS/WCF read a fault only under 500 (under 400 they
    # report "400 Bad Request" and the TISS fault is lost).
    fault_http_status: int = 500
    # Reverse proxies (addresses or networks) that terminate TLS: their client-certificate header
    # is believed, and they may set X-Forwarded-Proto (gunicorn forwarded_allow_ips).
    trusted_proxies: tuple[str, ...] = ()
    client_cert_header: str = "X-SSL-Client-Cert"  # URL-encoded PEM (nginx $ssl_client_escaped_cert)
    # Before login a refused message's body is kept up to this many bytes; the rest only as its
    # length and SHA-256 (in a crítica). A flood of garbage must not fill the disk.
    refused_body_bytes: int = 64 * 1024
    # Refused messages stored per client address per minute, in each gunicorn worker; past it they
    # are still answered, but only logged and counted.
    refusals_per_minute: int = 60
    # /readyz fails when the filesystem of a SQLite database has less free space than this.
    min_free_disk_mb: int = 64


@dataclass(frozen=True)
class EntregaSettings:
    """Delivery to operators and protocol tracking (the workers)."""

    tentativas: int = 12  # attempts before a delivery is dead-lettered
    espera_inicial_s: float = 2.0  # first retry delay; doubles per attempt, with jitter
    espera_max_s: float = 900.0
    # A worker's lease on a delivery, renewed by its heartbeat every third of it while it holds it:
    # a dead worker's deliveries are taken over this long after its last renewal.
    reserva_s: float = 30.0
    circuito_falhas: int = 5  # consecutive failures that open an operator's circuit
    circuito_pausa_s: float = 30.0  # how long it stays open before one trial call
    consulta_inicial_s: float = 300.0  # first status query of a new protocol
    consulta_max_s: float = 6 * 3600.0  # status queries back off up to this interval
    parada_s: float = 15.0  # SIGTERM/SIGINT: the worker exits within this, whatever is in flight
    # Registros ANS of operators that do not deduplicate sequencialTransacao: a delivery whose
    # earlier send has an unknown outcome is not sent to them again without a person.
    sem_deduplicacao: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConsoleSettings:
    """The web console under ``/console`` (gateway.console); logins lock like providers' do
    (``gateway.lockout_attempts`` / ``lockout_minutes``)."""

    habilitado: bool = True
    sessao_horas: float = 8.0  # a session ends this long after login, whatever its use (absolute)


LOG_FORMATOS = ("json", "texto")
LOG_NIVEIS = ("DEBUG", "INFO", "WARNING", "ERROR")
AUDITORIA_DIAS_MIN = 90  # ANS Componente de Segurança: access logs kept at least 90 days


@dataclass(frozen=True)
class LogSettings:
    """Logs of ``serve`` and ``worker`` (the CLI's other commands print plain text)."""

    formato: str = "json"  # LOG_FORMATOS: one JSON object per line, or masked plain text
    nivel: str = "INFO"


@dataclass(frozen=True)
class MetricSettings:
    # gunicorn workers' metric files (PROMETHEUS_MULTIPROC_DIR); emptied at start. None: the
    # inherited PROMETHEUS_MULTIPROC_DIR, else a temporary directory removed at exit.
    diretorio: Path | None = None


@dataclass(frozen=True)
class RetencaoSettings:
    """``tiss-gateway prune``: what is kept how long."""

    corpo_dias: int = 180  # message bodies older than this are emptied (the rows stay)
    auditoria_dias: int = 365  # access-log rows older than this are deleted (at least 90)
    lote: int = 500  # rows per statement and transaction (short locks on big tables)


@dataclass(frozen=True)
class Operadora:
    registro_ans: str
    nome: str
    adapter: str  # module name in adapters/
    # Padrao version -> the base URL of the operator's web services in that version (the WSDL of a
    # service is <base>/<service>?wsdl); empty: not connected, messages are stored only.
    enderecos: Mapping[str, str] = field(default_factory=dict)
    versoes: tuple[str, ...] = VERSIONS  # accepted Padrao versions
    hash_aceito: tuple[str, ...] = (hashing.DECLARED,)  # gateway.message.hashing.VARIANTS names
    hash_emitido: str = hashing.DECLARED
    versoes_operadora: tuple[str, ...] = ()  # versions its web service takes (default: versoes)
    timeout_s: float = 30.0  # per call to the operator
    assinatura_chave: Path | None = None  # PEM key + certificate chain to sign what is sent
    assinatura_certificados: Path | None = None
    cnpj: str | None = None  # the operator's own CNPJ (rules that refuse the operator as executante)
    codigos_proprios: tuple[str, ...] = ()  # codes that identify the operator itself in guides
    # Real-time relays to it at once per gateway process (its bulkhead); None: derived from the
    # process's threads (gateway.delivery.bulkhead).
    max_relays: int | None = None
    # How lotes reach it: CANAL_WEBSERVICE (posted by the worker) or CANAL_ARQUIVO (a mensagemTISS
    # file a person uploads in its portal: gateway.delivery.arquivo); pasta_arquivos: a drop folder.
    canal: str = "webservice"
    pasta_arquivos: Path | None = None

    @property
    def versoes_envio(self) -> tuple[str, ...]:
        """The versions its web service takes: those with an endereço, when it is connected."""
        return tuple(self.enderecos) or self.versoes_operadora or self.versoes

    @property
    def conectada(self) -> bool:
        """Messages to it are forwarded: its web services are known, or it takes files."""
        return bool(self.enderecos) or self.canal == CANAL_ARQUIVO

    @property
    def web_service(self) -> bool:
        """Its web services are known: real-time services can be relayed to it."""
        return bool(self.enderecos)

    @property
    def por_arquivo(self) -> bool:
        """Lotes go as mensagemTISS files for a person to upload in its portal."""
        return self.canal == CANAL_ARQUIVO

    def endereco(self, versao: str) -> str | None:
        """The base URL of its web services in ``versao`` (None: it takes no such version)."""
        return self.enderecos.get(versao)

    def hash_policy(self) -> hashing.HashPolicy:
        return hashing.HashPolicy.of(self.hash_aceito)


@dataclass(frozen=True)
class PrestadorConfig:
    documento: str  # CNPJ (14) or CPF (11), normalised
    nome: str
    login: str
    senha_hash: str | None = field(default=None, repr=False)  # scrypt$... of the password's MD5 hex
    codigos: Mapping[str, str] = field(default_factory=dict)  # registro ANS -> código na operadora
    # Client certificates accepted from this provider (none: not required): SHA-256 fingerprints
    # (lower-case hex) and/or CERTIFICADO_DOCUMENTO.
    certificado_cliente: tuple[str, ...] = ()

    @property
    def tipo_documento(self) -> str:
        return tipo_documento(self.documento)


@dataclass(frozen=True)
class Config:
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    operadoras: Mapping[str, Operadora] = field(default_factory=dict)  # keyed by registro ANS
    prestadores: tuple[PrestadorConfig, ...] = ()
    source: Path | None = None  # the file it was read from
    entregas: EntregaSettings = field(default_factory=EntregaSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    logs: LogSettings = field(default_factory=LogSettings)
    metricas: MetricSettings = field(default_factory=MetricSettings)
    retencao: RetencaoSettings = field(default_factory=RetencaoSettings)

    def operadora(self, registro_ans: str) -> Operadora | None:
        return self.operadoras.get(registro_ans)


# --- loading -------------------------------------------------------------------------------------

def default_config_path() -> Path | None:
    configured = os.environ.get(CONFIG_ENV)
    if configured:
        return Path(configured)
    candidate = gateway_home() / CONFIG_FILE
    return candidate if candidate.is_file() else None


def load_config(path: Path | str | None = None) -> Config:
    """Read and validate a config file (see the module docstring for the lookup without one)."""
    path = Path(path) if path is not None else default_config_path()
    if path is None:
        return _database_from_env(Config())
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: não foi possível ler: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: o arquivo deve estar em UTF-8 ({exc.reason})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML inválido: {exc}") from exc
    return _database_from_env(parse_config(data, source=path))


def _database_from_env(config: Config) -> Config:
    """``$TISS_GATEWAY_DATABASE_URL`` over the file's ``gateway.database_url`` (a ``--database``
    option still wins over both)."""
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    if not url:
        return config
    if not _DATABASE_URL.match(url):
        raise ConfigError(f"{DATABASE_URL_ENV} deve começar com sqlite:// ou postgresql://")
    return replace(config, gateway=replace(config.gateway, database_url=url))


def parse_config(data: Mapping[str, Any], source: Path | None = None) -> Config:
    """Validate an already-parsed TOML document."""
    where = str(source) if source else "configuração"
    try:
        return _parse(_Reader(), data, source)
    except _Invalid as exc:
        raise ConfigError(f"{where}: {exc}") from None


class _Invalid(Exception):
    pass


class _Reader:
    @staticmethod
    def keys(table: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
        problem = unknown_key(table, allowed, path)
        if problem:
            raise _Invalid(problem)

    @staticmethod
    def table(value: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise _Invalid(f"{path} deve ser uma tabela TOML")
        return value

    @staticmethod
    def string(value: Any, path: str, *, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise _Invalid(f"{path} deve ser um texto não vazio")
        return value.strip()

    @staticmethod
    def integer(value: Any, path: str, minimum: int, maximum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"{path} deve ser um número inteiro")
        if not minimum <= value <= maximum:
            raise _Invalid(f"{path} deve estar entre {minimum} e {maximum} (veio {value})")
        return value

    @staticmethod
    def number(value: Any, path: str, minimum: float, maximum: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid(f"{path} deve ser um número")
        if not minimum <= value <= maximum:
            raise _Invalid(f"{path} deve estar entre {minimum} e {maximum} (veio {value})")
        return float(value)

    @staticmethod
    def path(value: Any, path: str, source: Path | None) -> Path | None:
        text = _Reader.string(value, path, optional=True)
        if text is None:
            return None
        found = Path(text).expanduser()
        if not found.is_absolute() and source is not None:
            found = source.parent / found  # relative to the config file, not the working directory
        if not found.is_file():
            raise _Invalid(f"{path}: arquivo não encontrado: {found}")
        return found

    @staticmethod
    def strings(value: Any, path: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise _Invalid(f"{path} deve ser uma lista não vazia de textos")
        return tuple(dict.fromkeys(v.strip() for v in value))

    @staticmethod
    def url(value: Any, path: str) -> str | None:
        text = _Reader.string(value, path, optional=True)
        if text is None:
            return None
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", text):
            raise _Invalid(f"{path} deve ser uma URL http(s):// sem query nem fragmento: {text!r}")
        return text.rstrip("/")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def unknown_key(table: Mapping[str, Any], allowed: Sequence[str], path: str) -> str | None:
    """The message for the first key of a TOML table not in ``allowed`` (with the nearest allowed
    one as a hint), or None: shared by every TOML file the project reads."""
    for key in table:
        if key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1)
            suggestion = f" (quis dizer {hint[0]!r}?)" if hint else ""
            return (f"chave desconhecida {_join(path, key)!r}{suggestion}; "
                    f"permitidas em [{path or 'raiz'}]: {', '.join(allowed)}")
    return None


def _parse(r: _Reader, data: Mapping[str, Any], source: Path | None) -> Config:
    r.keys(data, ("gateway", "entregas", "operadoras", "prestadores", "console", "logs", "metricas",
                  "retencao"), "")
    gateway = _parse_gateway(r, r.table(data.get("gateway", {}), "gateway"))
    console = _parse_console(r, r.table(data.get("console", {}), "console"))
    entregas = _parse_entregas(r, r.table(data.get("entregas", {}), "entregas"))
    operadoras = {}
    for registro, table in r.table(data.get("operadoras", {}), "operadoras").items():
        operadoras[registro] = _parse_operadora(r, registro, r.table(table, f"operadoras.{registro}"), source)
    raw_prestadores = data.get("prestadores", [])
    if not isinstance(raw_prestadores, list):
        raise _Invalid("prestadores deve ser uma lista de tabelas ([[prestadores]])")
    prestadores: list[PrestadorConfig] = []
    for index, table in enumerate(raw_prestadores):
        path = f"prestadores[{index}]"
        item = _parse_prestador(r, path, r.table(table, path), operadoras)
        for other in prestadores:
            if other.login == item.login:
                raise _Invalid(f"{path}: login {item.login!r} repetido")
            if other.documento == item.documento:
                raise _Invalid(f"{path}: documento {item.documento} repetido")
        prestadores.append(item)
    return Config(gateway, operadoras, tuple(prestadores), source, entregas, console,
                  logs=_parse_logs(r, r.table(data.get("logs", {}), "logs")),
                  metricas=_parse_metricas(r, r.table(data.get("metricas", {}), "metricas"), source),
                  retencao=_parse_retencao(r, r.table(data.get("retencao", {}), "retencao")))


def _parse_logs(r: _Reader, table: Mapping[str, Any]) -> LogSettings:
    r.keys(table, ("formato", "nivel"), "logs")
    defaults = LogSettings()
    formato = r.string(table.get("formato", defaults.formato), "logs.formato") or ""
    if formato not in LOG_FORMATOS:
        raise _Invalid(f"logs.formato deve ser um de {', '.join(LOG_FORMATOS)} (veio {formato!r})")
    nivel = (r.string(table.get("nivel", defaults.nivel), "logs.nivel") or "").upper()
    if nivel not in LOG_NIVEIS:
        raise _Invalid(f"logs.nivel deve ser um de {', '.join(LOG_NIVEIS)} (veio {nivel!r})")
    return LogSettings(formato, nivel)


def _parse_metricas(r: _Reader, table: Mapping[str, Any], source: Path | None) -> MetricSettings:
    r.keys(table, ("diretorio",), "metricas")
    text = r.string(table.get("diretorio"), "metricas.diretorio", optional=True)
    if text is None:
        return MetricSettings()
    found = Path(text).expanduser()
    if not found.is_absolute() and source is not None:
        found = source.parent / found  # relative to the config file, like the other paths
    if found.exists() and not found.is_dir():
        raise _Invalid(f"metricas.diretorio não é um diretório: {found}")
    return MetricSettings(found)


def _parse_retencao(r: _Reader, table: Mapping[str, Any]) -> RetencaoSettings:
    r.keys(table, ("corpo_dias", "auditoria_dias", "lote"), "retencao")
    defaults = RetencaoSettings()
    auditoria = table.get("auditoria_dias", defaults.auditoria_dias)
    if isinstance(auditoria, int) and not isinstance(auditoria, bool) and auditoria < AUDITORIA_DIAS_MIN:
        raise _Invalid(f"retencao.auditoria_dias deve ser ao menos {AUDITORIA_DIAS_MIN} (veio {auditoria}): "
                       "o registro de acessos é guardado por no mínimo 90 dias (Componente de "
                       "Segurança da ANS)")
    return RetencaoSettings(
        corpo_dias=r.integer(table.get("corpo_dias", defaults.corpo_dias), "retencao.corpo_dias", 1, 36500),
        auditoria_dias=r.integer(auditoria, "retencao.auditoria_dias", AUDITORIA_DIAS_MIN, 36500),
        lote=r.integer(table.get("lote", defaults.lote), "retencao.lote", 1, 100_000),
    )


def _parse_console(r: _Reader, table: Mapping[str, Any]) -> ConsoleSettings:
    r.keys(table, ("habilitado", "sessao_horas"), "console")
    habilitado = table.get("habilitado", True)
    if not isinstance(habilitado, bool):
        raise _Invalid("console.habilitado deve ser true ou false")
    return ConsoleSettings(habilitado, r.number(table.get("sessao_horas", ConsoleSettings.sessao_horas),
                                                "console.sessao_horas", 0.05, 24 * 7))


def _parse_entregas(r: _Reader, table: Mapping[str, Any]) -> EntregaSettings:
    defaults = EntregaSettings()
    names = tuple(defaults.__dataclass_fields__)
    r.keys(table, names, "entregas")
    values: dict[str, Any] = {}
    for name in names:
        value = table.get(name, getattr(defaults, name))
        if name in ("tentativas", "circuito_falhas"):
            values[name] = r.integer(value, f"entregas.{name}", 1, 1000)
        elif name == "sem_deduplicacao":
            values[name] = r.strings(value, f"entregas.{name}") if name in table else ()
            if not all(v.isdigit() and len(v) == 6 for v in values[name]):
                raise _Invalid("entregas.sem_deduplicacao: registros ANS de seis dígitos")
        elif name == "parada_s":
            values[name] = r.number(value, "entregas.parada_s", 0.1, 300.0)
        else:
            values[name] = r.number(value, f"entregas.{name}", 0.01, 30 * 24 * 3600.0)
    return EntregaSettings(**values)


def _parse_gateway(r: _Reader, table: Mapping[str, Any]) -> GatewaySettings:
    r.keys(table, ("public_base_url", "database_url", "max_message_bytes", "lockout_attempts",
                   "lockout_minutes", "throttle_failures", "throttle_window_minutes", "throttle_minutes",
                   "fault_http_status", "trusted_proxies", "client_cert_header",
                   "refused_body_bytes", "refusals_per_minute", "min_free_disk_mb"),
           "gateway")
    defaults = GatewaySettings()
    database_url = r.string(table.get("database_url"), "gateway.database_url", optional=True)
    if database_url is not None and not _DATABASE_URL.match(database_url):
        raise _Invalid("gateway.database_url deve começar com sqlite:// ou postgresql://")
    status = table.get("fault_http_status", defaults.fault_http_status)
    if status not in FAULT_HTTP_STATUSES or isinstance(status, bool):
        raise _Invalid(f"gateway.fault_http_status deve ser um de {FAULT_HTTP_STATUSES} (veio {status!r})")
    return GatewaySettings(
        public_base_url=r.url(table.get("public_base_url"), "gateway.public_base_url"),
        database_url=database_url,
        max_message_bytes=r.integer(table.get("max_message_bytes", defaults.max_message_bytes),
                                    "gateway.max_message_bytes", 1024, 1024 * MiB),
        lockout_attempts=r.integer(table.get("lockout_attempts", defaults.lockout_attempts),
                                   "gateway.lockout_attempts", 1, 100),
        lockout_minutes=r.integer(table.get("lockout_minutes", defaults.lockout_minutes),
                                  "gateway.lockout_minutes", 1, 7 * 24 * 60),
        throttle_failures=r.integer(table.get("throttle_failures", defaults.throttle_failures),
                                    "gateway.throttle_failures", 1, 10_000),
        # at most a day: failure series older than a day are forgotten (gateway.tentativas)
        throttle_window_minutes=r.integer(
            table.get("throttle_window_minutes", defaults.throttle_window_minutes),
            "gateway.throttle_window_minutes", 1, 24 * 60),
        throttle_minutes=r.integer(table.get("throttle_minutes", defaults.throttle_minutes),
                                   "gateway.throttle_minutes", 1, 7 * 24 * 60),
        fault_http_status=status,
        trusted_proxies=_proxies(r, table.get("trusted_proxies"), "gateway.trusted_proxies"),
        client_cert_header=_header(r, table.get("client_cert_header", defaults.client_cert_header),
                                   "gateway.client_cert_header"),
        refused_body_bytes=r.integer(table.get("refused_body_bytes", defaults.refused_body_bytes),
                                     "gateway.refused_body_bytes", 0, 1024 * MiB),
        refusals_per_minute=r.integer(table.get("refusals_per_minute", defaults.refusals_per_minute),
                                      "gateway.refusals_per_minute", 0, 1_000_000),
        min_free_disk_mb=r.integer(table.get("min_free_disk_mb", defaults.min_free_disk_mb),
                                   "gateway.min_free_disk_mb", 0, 1024 * 1024),
    )


def _proxies(r: _Reader, value: Any, path: str) -> tuple[str, ...]:
    if value is None or value == []:
        return ()
    proxies = r.strings(value, path)
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise _Invalid(f"{path}: endereço ou rede IP inválido: {proxy!r}") from None
    return proxies


def _header(r: _Reader, value: Any, path: str) -> str:
    name = r.string(value, path) or ""
    if not _HEADER.fullmatch(name):
        raise _Invalid(f"{path} deve ser um nome de cabeçalho HTTP (letras, dígitos e hífens): {name!r}")
    return name


def _parse_operadora(r: _Reader, registro: str, table: Mapping[str, Any],
                     source: Path | None = None) -> Operadora:
    path = f"operadoras.{registro}"
    if not _REGISTRO_ANS.fullmatch(registro):
        raise _Invalid(f"[{path}]: o registro ANS da operadora deve ter 6 dígitos (ex.: [operadoras.329665])")
    r.keys(table, ("registro_ans", "nome", "adapter", "endpoint", "enderecos", "versoes", "hash_aceito",
                   "hash_emitido", "versoes_operadora", "timeout_s", "assinatura_chave",
                   "assinatura_certificados", "cnpj", "codigos_proprios", "max_relays", "canal",
                   "pasta_arquivos"), path)
    if "registro_ans" in table and table["registro_ans"] != registro:
        raise _Invalid(f"{path}.registro_ans ({table['registro_ans']!r}) difere da chave da tabela")
    for required in ("nome", "adapter"):
        if required not in table:
            raise _Invalid(f"{path}.{required} é obrigatório")
    adapter = r.string(table["adapter"], f"{path}.adapter")
    if not _ADAPTER.fullmatch(adapter or ""):
        raise _Invalid(f"{path}.adapter deve ser o nome de um módulo em adapters/ (ex.: 'unimed'): "
                       f"{adapter!r}")
    versoes = _versoes(r, table.get("versoes", list(VERSIONS)), f"{path}.versoes")
    enderecos = _enderecos(r, table, path, versoes)
    versoes_operadora = tuple(enderecos) or _versoes(r, table.get("versoes_operadora", list(versoes)),
                                                     f"{path}.versoes_operadora")
    chave = r.path(table.get("assinatura_chave"), f"{path}.assinatura_chave", source)
    certificados = r.path(table.get("assinatura_certificados"), f"{path}.assinatura_certificados", source)
    if (chave is None) != (certificados is None):
        raise _Invalid(f"{path}: assinatura_chave e assinatura_certificados vão juntos")
    hash_aceito = r.strings(table.get("hash_aceito", [hashing.DECLARED]), f"{path}.hash_aceito")
    hash_emitido = r.string(table.get("hash_emitido", hashing.DECLARED), f"{path}.hash_emitido")
    for name, key in [*((v, "hash_aceito") for v in hash_aceito), (hash_emitido, "hash_emitido")]:
        if name not in hashing.VARIANTS:
            raise _Invalid(f"{path}.{key}: variante de hash desconhecida {name!r}; "
                           f"conhecidas: {', '.join(hashing.VARIANTS)}")
    return Operadora(
        registro_ans=registro,
        nome=r.string(table["nome"], f"{path}.nome") or "",
        adapter=adapter or "",
        enderecos=enderecos,
        versoes=versoes,
        hash_aceito=hash_aceito,
        hash_emitido=hash_emitido or hashing.DECLARED,
        versoes_operadora=versoes_operadora,
        timeout_s=r.number(table.get("timeout_s", 30.0), f"{path}.timeout_s", 0.1, 600.0),
        assinatura_chave=chave,
        assinatura_certificados=certificados,
        cnpj=_cnpj(r, table.get("cnpj"), f"{path}.cnpj"),
        codigos_proprios=r.strings(table["codigos_proprios"], f"{path}.codigos_proprios")
        if "codigos_proprios" in table else (),
        max_relays=r.integer(table["max_relays"], f"{path}.max_relays", 1, 1000)
        if "max_relays" in table else None,
        canal=_canal(r, table, path),
        pasta_arquivos=_pasta(r, table.get("pasta_arquivos"), f"{path}.pasta_arquivos", source),
    )


def _canal(r: _Reader, table: Mapping[str, Any], path: str) -> str:
    canal = r.string(table.get("canal", CANAL_WEBSERVICE), f"{path}.canal") or CANAL_WEBSERVICE
    if canal not in (CANAL_WEBSERVICE, CANAL_ARQUIVO):
        raise _Invalid(f"{path}.canal deve ser \"{CANAL_WEBSERVICE}\" ou \"{CANAL_ARQUIVO}\": {canal!r}")
    if "pasta_arquivos" in table and canal != CANAL_ARQUIVO:
        raise _Invalid(f"{path}.pasta_arquivos vale só com canal = \"{CANAL_ARQUIVO}\"")
    return canal


def _pasta(r: _Reader, value: Any, path: str, source: Path | None) -> Path | None:
    """An existing folder (relative to the config file): the gateway writes files there, never creates it."""
    text = r.string(value, path, optional=True)
    if text is None:
        return None
    found = Path(text).expanduser()
    if not found.is_absolute() and source is not None:
        found = source.parent / found
    if not found.is_dir():
        raise _Invalid(f"{path}: pasta não encontrada: {found}")
    return found


def _enderecos(r: _Reader, table: Mapping[str, Any], path: str, versoes: tuple[str, ...]) -> dict[str, str]:
    """Version -> base URL of the operator's web services: ``[<path>.enderecos]`` (one per version,
    as operators publish one WSDL per service and version), or ``endpoint`` for an operator that
    takes exactly one version (``versoes_operadora``). Their versions are ``versoes_operadora``."""
    if "endpoint" in table and "enderecos" in table:
        raise _Invalid(f"{path}: use endpoint (uma só versão) ou [{path}.enderecos] (uma URL por "
                       "versão), não os dois")
    if "enderecos" in table:
        return _enderecos_por_versao(r, r.table(table["enderecos"], f"{path}.enderecos"), table, path)
    endpoint = r.url(table.get("endpoint"), f"{path}.endpoint")
    if endpoint is None:
        return {}
    versoes_operadora = _versoes(r, table.get("versoes_operadora", list(versoes)),
                                 f"{path}.versoes_operadora")
    if len(versoes_operadora) != 1:
        exemplo = "\n".join(f'"{v}" = "{endpoint}/v{v.replace(".", "_")}"' for v in versoes_operadora)
        raise _Invalid(f"{path}.endpoint é o endereço de uma só versão, e a operadora recebe "
                       f"{', '.join(versoes_operadora)} (versoes_operadora"
                       f"{'' if 'versoes_operadora' in table else ', que sem valor é versoes'}): dê o "
                       f"endereço de cada versão em [{path}.enderecos], p.ex.\n{exemplo}\nou "
                       "versoes_operadora com a única versão que esse endereço recebe")
    return {versoes_operadora[0]: endpoint}


def _enderecos_por_versao(r: _Reader, enderecos: Mapping[str, Any], table: Mapping[str, Any],
                          path: str) -> dict[str, str]:
    where = f"{path}.enderecos"
    if not enderecos:
        raise _Invalid(f"[{where}] deve ter ao menos uma versão (ex.: \"4.03.00\" = \"https://.../v4_03_00\")")
    found: dict[str, str] = {}
    for versao, url in enderecos.items():
        if not _VERSAO.fullmatch(versao):
            raise _Invalid(f"{where}: versão do Padrão TISS inválida {versao!r} (formato 4.03.00)")
        found[versao] = r.url(url, f'{where}."{versao}"') or ""
    if "versoes_operadora" in table:
        declaradas = _versoes(r, table["versoes_operadora"], f"{path}.versoes_operadora")
        if set(declaradas) != set(found):
            raise _Invalid(f"{path}.versoes_operadora ({', '.join(declaradas)}) difere das versões de "
                           f"[{where}] ({', '.join(found)}): a operadora recebe as versões que têm "
                           "endereço (versoes_operadora pode ser omitido)")
        return {versao: found[versao] for versao in declaradas}
    return found


def _cnpj(r: _Reader, value: Any, path: str) -> str | None:
    text = r.string(value, path, optional=True)
    if text is None:
        return None
    documento = normaliza_documento(text)
    try:
        if tipo_documento(documento) != "CNPJ":
            raise _Invalid(f"{path}: esperado um CNPJ (14 dígitos): {text!r}")
    except PrestadorError as exc:
        raise _Invalid(f"{path}: {exc}") from None
    return documento


def _versoes(r: _Reader, value: Any, path: str) -> tuple[str, ...]:
    versoes = r.strings(value, path)
    for versao in versoes:
        if not _VERSAO.fullmatch(versao):
            raise _Invalid(f"{path}: versão do Padrão TISS inválida {versao!r} (formato 4.03.00)")
    return versoes


def _parse_prestador(r: _Reader, path: str, table: Mapping[str, Any],
                     operadoras: Mapping[str, Operadora]) -> PrestadorConfig:
    r.keys(table, ("documento", "nome", "login", "senha_hash", "codigos", "certificado_cliente"), path)
    for required in ("documento", "nome", "login"):
        if required not in table:
            raise _Invalid(f"{path}.{required} é obrigatório")
    documento = normaliza_documento(r.string(table["documento"], f"{path}.documento") or "")
    try:
        tipo_documento(documento)
    except PrestadorError as exc:
        raise _Invalid(f"{path}.documento: {exc}") from None
    login = r.string(table["login"], f"{path}.login") or ""
    if len(login) > 20 or any(c.isspace() for c in login):
        raise _Invalid(f"{path}.login deve ter até 20 caracteres, sem espaços (loginPrestador)")
    senha_hash = r.string(table.get("senha_hash"), f"{path}.senha_hash", optional=True)
    if senha_hash is not None:
        try:
            parse_senha_hash(senha_hash)
        except ValueError as exc:
            raise _Invalid(f"{path}.senha_hash: {exc} (como gerar: docs/config-example.toml)") from None
    codigos: dict[str, str] = {}
    for registro, codigo in r.table(table.get("codigos", {}), f"{path}.codigos").items():
        if not _REGISTRO_ANS.fullmatch(registro):
            raise _Invalid(f"{path}.codigos: registro ANS deve ter 6 dígitos: {registro!r}")
        if registro not in operadoras:
            raise _Invalid(f"{path}.codigos: a operadora {registro} não está em [operadoras]")
        text = r.string(codigo, f"{path}.codigos.{registro}") or ""
        if len(text) > 14:
            raise _Invalid(f"{path}.codigos.{registro}: o código na operadora tem no máximo 14 caracteres")
        codigos[registro] = text
    return PrestadorConfig(documento=documento, nome=r.string(table["nome"], f"{path}.nome") or "",
                           login=login, senha_hash=senha_hash, codigos=codigos,
                           certificado_cliente=_certificados(r, table.get("certificado_cliente"),
                                                             f"{path}.certificado_cliente"))


def _certificados(r: _Reader, value: Any, path: str) -> tuple[str, ...]:
    """SHA-256 fingerprints (hex, colons and a "sha256:" prefix allowed) or "documento"."""
    if value is None:
        return ()
    accepted = []
    for item in r.strings([value] if isinstance(value, str) else value, path):
        text = item.lower()
        match = _SHA256.fullmatch(text)
        if match:
            accepted.append(match.group(1).replace(":", ""))
        elif text == CERTIFICADO_DOCUMENTO:
            accepted.append(CERTIFICADO_DOCUMENTO)
        else:
            raise _Invalid(f"{path}: esperado a impressão digital SHA-256 do certificado (64 dígitos "
                           f"hexadecimais) ou {CERTIFICADO_DOCUMENTO!r}: {item!r}")
    return tuple(dict.fromkeys(accepted))


# --- the demo ------------------------------------------------------------------------------------

DEMO_CNPJ = "11222333000181"
DEMO_LOGIN = DEMO_SENHA = "demo"
DEMO_OPERADORAS = (
    ("329665", "Capital Prev", "capitalprev", "000123"),
    ("331988", "PASA", "pasa", "1004567"),
    ("331872", "Unimed São José dos Campos", "unimed", "20345"),
    ("413534", "CASSEMS", "cassems", "880142"),
    ("424188", "IPASGO", "ipasgo", "5012377"),
)


# The versions each demo operator's web service takes, as its simulated operator's profile
# (simulator/profiles/<adapter>.toml ``versoes``) says: Unimed only the newest, the others both in
# force. A unit test keeps the two in step (the gateway does not read the simulator's profiles).
DEMO_VERSOES_OPERADORA = {"331872": ("4.03.00",)}
DEMO_VERSOES_EM_VIGOR = ("4.02.00", "4.03.00")
# How each demo operator shows itself in a guide, as its simulated operator's profile (``cnpj``,
# ``codigos_proprios``) says: Unimed's rule refuses them as the SP/SADT executante at acceptance
# instead of after delivery. Kept in step with the profiles by a unit test.
DEMO_IDENTIDADE_OPERADORA: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "329665": ("32966500000179", ()),
    "331988": ("39419809000198", ()),
    "331872": ("33187200000154", ("00001",)),
    "413534": ("41353400000168", ()),
    "424188": ("42418800000177", ()),
}


DEMO_SIMULADOR = "127.0.0.1:9000"
# The demo provider's certificate, issued by `serve --demo` from the simulated operators' sandbox
# AC (IPASGO takes only messages signed by the sender).
DEMO_CERTIFICADO = ("demo", "prestador-demo")


def demo_certificado() -> tuple[Path, Path]:
    directory = gateway_home() / DEMO_CERTIFICADO[0]
    stem = DEMO_CERTIFICADO[1]
    return directory / f"{stem}-key.pem", directory / f"{stem}-cert.pem"


def _demo_assinatura(adapter: str) -> tuple[Path | None, Path | None]:
    """(assinatura_chave, assinatura_certificados) of a demo operator: IPASGO's, once issued."""
    chave, certificados = demo_certificado()
    if adapter != "ipasgo" or not (chave.is_file() and certificados.is_file()):
        return None, None
    return chave, certificados


@cache
def demo_config(simulador: str | None = DEMO_SIMULADOR) -> Config:
    """The five operators of the user's manuals and one demo provider (login demo, password demo).

    ``simulador`` is the admin address of ``tiss-gateway simulate --all`` (operators on the next
    five ports, in DEMO_OPERADORAS order, each version at ``/tiss/v4_0X_00``); None: operators
    without endereços (store only).
    """
    host, _sep, port = (simulador or "").rpartition(":")
    operadoras: dict[str, Operadora] = {}
    for index, (registro, nome, adapter, _codigo) in enumerate(DEMO_OPERADORAS, 1):
        chave, certificados = _demo_assinatura(adapter)
        versoes = DEMO_VERSOES_OPERADORA.get(registro, DEMO_VERSOES_EM_VIGOR)
        base = f"http://{host}:{int(port) + index}/tiss" if simulador else ""
        cnpj, codigos_proprios = DEMO_IDENTIDADE_OPERADORA[registro]
        operadoras[registro] = Operadora(
            registro_ans=registro, nome=nome, adapter=adapter,
            enderecos={v: f"{base}/v{v.replace('.', '_')}" for v in versoes} if base else {},
            versoes_operadora=versoes, timeout_s=15.0, assinatura_chave=chave,
            assinatura_certificados=certificados, cnpj=cnpj, codigos_proprios=codigos_proprios)
    prestador = PrestadorConfig(
        documento=DEMO_CNPJ, nome="Clínica Demonstração", login=DEMO_LOGIN,
        senha_hash=hash_senha(md5_hex(DEMO_SENHA)),
        codigos={registro: codigo for registro, _nome, _adapter, codigo in DEMO_OPERADORAS})
    # The simulated clock of the demo runs fast: ask about protocols often.
    entregas = EntregaSettings(espera_inicial_s=1.0, espera_max_s=30.0, consulta_inicial_s=5.0,
                               consulta_max_s=30.0)
    return Config(GatewaySettings(), operadoras, (prestador,), None, entregas)
