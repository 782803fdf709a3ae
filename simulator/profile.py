"""Operator profiles: one TOML data file per simulated operator (``simulator/profiles/<key>.toml``).

A profile is the operator's own behaviour: its status flow mapped onto dm_statusProtocolo, the
demonstrativos it issues, its glosas, timings, how its portal words a crítica, and who may log in.
The rules of its manual (guide limit, guide types, required fields, partial sending, signature,
and so the críticas it raises) are not in the TOML: they are :data:`adapters.rules.OPERADORAS`
``[key]``, the data the gateway's adapters use too, and fill the fields marked ``manual``.
TOML keys are the other dataclass field names; loading is strict (unknown keys, a manual's rule
restated, wrong types, codes missing from Table 38, a flow out of order all stop the load with a
:class:`ProfileError` naming the file and the key).
"""

from __future__ import annotations

import hashlib
import re
import string
import tomllib
import types
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Union, get_args, get_origin, get_type_hints

from adapters.rules import OPERADORAS, OperadoraRules
from gateway.config import unknown_key
from gateway.message import hashing
from gateway.message.identificacao import cnpj_valido, cpf_valido, normaliza_documento
from gateway.message.responses import codigos_glosa
from gateway.message.tables import VERSIONS
from simulator.lifecycle import (
    ANALISADOS,
    AUTORIZADO,
    CANCELADO,
    EM_ANALISE,
    EM_ANALISE_SOLICITACAO,
    ENCERRADO_SEM_PAGAMENTO,
    LIBERADO_PARA_PAGAMENTO,
    NAO_LOCALIZADO,
    NEGADO,
    PAGAMENTO_EFETUADO,
    RECEBIDO,
)

PROFILE_KEYS: tuple[str, ...] = ("capitalprev", "pasa", "unimed", "cassems", "ipasgo")
MiB = 1024 * 1024
# The simulator's own rules, which every operator applies before its manual's (simulator.rules).
REGRAS_PROPRIAS: tuple[str, ...] = ("prestador_conhecido",)

# Statuses an accepted lote never shows on its own: 4 is the total-glosa ending, 7 means no
# protocol, 9 follows a cancelamento request, 10 a court order.
_FORA_DO_FLUXO = frozenset({ENCERRADO_SEM_PAGAMENTO, NAO_LOCALIZADO, CANCELADO, 10})
# dm_tipoDemonstrativo
PAGAMENTO, ANALISE_CONTA, PAGAMENTO_ODONTOLOGIA = 1, 2, 3

_REGISTRO_ANS = re.compile(r"[0-9]{6}")
_PROCEDIMENTO = re.compile(r"[0-9A-Za-z.\-]{1,10}")  # st_texto10 codigoProcedimento
_FORMATO_CAMPOS = frozenset({"codigo", "descricao", "detalhe"})
# Fields filled from the operator's manual rules (adapters.rules), never from the TOML.
_MANUAL = {"toml": False, "manual": True}


class ProfileError(ValueError):
    """A profile file cannot be used; the message names the file, the key and why."""


@dataclass(frozen=True)
class Etapa:
    """One status of the operator's flow: its portal name, dm_statusProtocolo, sim-hours after receipt."""

    nome: str
    status_tiss: int
    apos_horas: float


@dataclass(frozen=True)
class GlosaConfig:
    """Deterministic glosas: share of guides glosadas in full / in part, and the Table 38 motives."""

    taxa_parcial: float
    taxa_total: float
    codigos: tuple[str, ...]
    fracao_parcial: float  # share of one item's value a partial glosa takes


@dataclass(frozen=True)
class PrestadorSimulado:
    """A provider the operator knows: its document, its code there and its portal login."""

    documento: str  # CNPJ (14) or CPF (11)
    codigo_na_operadora: str
    login: str
    senha: str = field(repr=False)  # plain text (sandbox); clients send its MD5 hex
    nome: str = "Prestador"

    @property
    def senha_md5(self) -> str:
        return hashlib.md5(self.senha.encode("utf-8"), usedforsecurity=False).hexdigest()

    def confere(self, login: str, senha_md5: str) -> bool:
        """loginSenhaPrestador matches (the MD5 hex compared case-insensitively)."""
        return login == self.login and senha_md5.strip().lower() == self.senha_md5


@dataclass(frozen=True)
class RegraCarteira:
    """Elegibilidade: card numbers ending in ``sufixo`` are refused with ``codigo`` (Table 38)."""

    sufixo: str
    codigo: str


@dataclass(frozen=True)
class AutorizacaoConfig:
    """Autorização: procedure codes denied (code -> Table 38 motive) or left "em análise"."""

    negados: Mapping[str, str] = field(default_factory=dict, hash=False)
    em_analise: tuple[str, ...] = ()
    horas_em_analise: float = 24.0  # sim-hours until an "em análise" request is authorised

    def situacao(self, codigo_procedimento: str) -> tuple[str, str | None]:
        """(dm_statusSolicitacao, motive) at the request: 1 autorizado, 2 em análise, 3 negado."""
        if codigo_procedimento in self.negados:
            return NEGADO, self.negados[codigo_procedimento]
        if codigo_procedimento in self.em_analise:
            return EM_ANALISE_SOLICITACAO, None
        return AUTORIZADO, None


@dataclass(frozen=True, kw_only=True)
class Profile:
    key: str = field(metadata={"toml": False})  # the file name; not a TOML key
    registro_ans: str
    nome: str
    cnpj: str
    sistema: str  # the operator's portal / billing system
    versoes: tuple[str, ...]
    hash_variante: str  # gateway.message.hashing.VARIANTS name the responses are hashed with
    hash_aceito: tuple[str, ...]  # variants accepted on requests (declared is always accepted)
    assinatura_exigida: bool = field(metadata=_MANUAL)
    assina_respostas: bool
    max_guias_lote: int = field(metadata=_MANUAL)  # the manual's limit, or the Padrão's 100
    max_bytes: int  # what its web service reads (at least the manual's file limit)
    um_tipo_de_guia_por_lote: bool = field(metadata=_MANUAL)
    envio_parcial: bool = field(metadata=_MANUAL)  # guide-level críticas refuse only that guide (IPASGO)
    cancela_lote_enviado: bool = field(metadata=_MANUAL)  # a lote received can still be cancelled (not PASA)
    tipos_guia: tuple[str, ...] = field(metadata=_MANUAL)
    regras: tuple[str, ...] = field(metadata=_MANUAL)  # names of simulator.rules.REGRAS, in order
    formato_critica: str = "{codigo} - {descricao}: {detalhe}"  # how the portal words a crítica
    nome_protocolo: str = "Protocolo"
    protocolo_inicial: int = 1
    status: tuple[Etapa, ...]  # the accepted lote's flow, ordered in time, ends at 6
    status_glosa_total: Etapa  # replaces the flow from the analysis on when every guide is glosada
    status_recusa: Etapa  # what a lote refused by críticas shows (no protocol: status 7)
    status_nao_enviado: str  # portal name of a lote not yet sent
    demonstrativos: tuple[int, ...]  # dm_tipoDemonstrativo the operator issues
    demonstrativo_analise_desde: int | None = None  # status_tiss from which the análise exists
    demonstrativo_pagamento_desde: int = PAGAMENTO_EFETUADO
    glosa: GlosaConfig
    elegibilidade: tuple[RegraCarteira, ...] = ()
    autorizacao: AutorizacaoConfig = field(default_factory=AutorizacaoConfig)
    campos_obrigatorios: Mapping[str, tuple[str, ...]] = field(hash=False, metadata=_MANUAL)
    codigos_proprios: tuple[str, ...] = ()  # codes the operator itself has as contratado
    matriculas: tuple[str, ...] = ()  # professionals' codes at the operator (honorários)
    prestadores: tuple[PrestadorSimulado, ...]

    # -- providers

    def prestador_por_login(self, login: str) -> PrestadorSimulado | None:
        return next((p for p in self.prestadores if p.login == login), None)

    def prestador_por_documento(self, documento: str) -> PrestadorSimulado | None:
        documento = normaliza_documento(documento)
        return next((p for p in self.prestadores if p.documento == documento), None)

    def prestador_por_codigo(self, codigo: str) -> PrestadorSimulado | None:
        return next((p for p in self.prestadores if p.codigo_na_operadora == codigo.strip()), None)

    def hash_policy(self) -> hashing.HashPolicy:
        return hashing.HashPolicy.of(self.hash_aceito)

    # -- the flow in time

    def fluxo(self, glosa_total: bool = False) -> tuple[Etapa, ...]:
        """The flow a protocol goes through; with every guide glosada it ends at status_glosa_total."""
        if not glosa_total:
            return self.status
        corte = self.status_glosa_total.apos_horas
        return (*(e for e in self.status if e.apos_horas < corte), self.status_glosa_total)

    def etapa_em(self, horas: float, glosa_total: bool = False) -> Etapa:
        """The etapa a protocol shows ``horas`` sim-hours after its receipt."""
        flow = self.fluxo(glosa_total)
        return next((e for e in reversed(flow) if e.apos_horas <= horas), flow[0])

    def horas_ate(self, status_tiss: int) -> float | None:
        """Sim-hours from receipt until the flow first shows ``status_tiss`` (None: never)."""
        return next((e.apos_horas for e in self.status if e.status_tiss == status_tiss), None)

    @property
    def horas_analise(self) -> float:
        """Sim-hours until the analysis ends (first analysed status): glosas become visible."""
        return next(e.apos_horas for e in self.status if e.status_tiss in ANALISADOS)

    @property
    def horas_pagamento(self) -> float:
        """Sim-hours from receipt to the payment date (the flow reaches 6)."""
        return self.status[-1].apos_horas


# --- loading -------------------------------------------------------------------------------------

@cache
def load_profile(key: str) -> Profile:
    """The profile shipped as ``simulator/profiles/<key>.toml``, validated."""
    if key not in PROFILE_KEYS:
        raise ProfileError(f"operadora simulada desconhecida {key!r}; conhecidas: {', '.join(PROFILE_KEYS)}")
    text = files("simulator.profiles").joinpath(f"{key}.toml").read_text(encoding="utf-8")
    return parse_profile(text, key, source=f"{key}.toml")


def load_all() -> dict[str, Profile]:
    """Every shipped profile, keyed by key, in PROFILE_KEYS order."""
    profiles = {key: load_profile(key) for key in PROFILE_KEYS}
    registros = [p.registro_ans for p in profiles.values()]
    if len(set(registros)) != len(registros):
        raise ProfileError(f"registro ANS repetido entre perfis: {registros}")
    return profiles


def parse_profile(text: str, key: str, source: str | None = None) -> Profile:
    """Parse and validate one profile's TOML text (``key`` is the operator key, the file's stem)."""
    where = source or f"{key}.toml"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{where}: TOML inválido: {exc}") from None
    try:
        profile = _build(Profile, data, "", extra={"key": key, **_do_manual(key, data)})
        _validate(profile)
    except _Invalid as exc:
        raise ProfileError(f"{where}: {exc}") from None
    return profile


class _Invalid(Exception):
    pass


def _do_manual(key: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The profile's fields that are its operator's manual rules (adapters.rules), which the
    TOML must not restate: a manual changes in one place."""
    restated = [f.name for f in fields(Profile) if f.metadata.get("manual") and f.name in data]
    if restated:
        raise _Invalid(f"{restated[0]}: regra do manual da operadora, definida em adapters/rules.py "
                       f"(OPERADORAS[{key!r}]); não a repita no perfil")
    regras = _regras_do_manual(key)
    return {
        "max_guias_lote": regras.limite_guias,
        "um_tipo_de_guia_por_lote": regras.um_tipo_de_guia_por_lote,
        "envio_parcial": regras.envio_parcial,
        "cancela_lote_enviado": regras.cancela_lote_enviado,
        "tipos_guia": regras.tipos_guia,
        "campos_obrigatorios": dict(regras.campos_obrigatorios),
        "assinatura_exigida": regras.exige_assinatura,
        "regras": (*REGRAS_PROPRIAS, *(rule.name for rule in regras.rules)),
    }


def _regras_do_manual(key: str) -> OperadoraRules:
    if key not in OPERADORAS:
        raise _Invalid(f"operadora {key!r} sem regras em adapters/rules.py (OPERADORAS); "
                       f"conhecidas: {', '.join(OPERADORAS)}")
    return OPERADORAS[key]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _build(cls: type, table: Any, path: str, extra: Mapping[str, Any] | None = None) -> Any:
    """A dataclass from a TOML table: unknown keys refused, each value checked against its type."""
    if not isinstance(table, Mapping):
        raise _Invalid(f"{path or 'raiz'} deve ser uma tabela TOML")
    hints = get_type_hints(cls)
    allowed = [f.name for f in fields(cls) if f.metadata.get("toml", True)]
    problem = unknown_key(table, allowed, path)
    if problem:
        raise _Invalid(problem)
    values = dict(extra or {})
    for f in fields(cls):
        if f.name in values:
            continue
        if f.name in table:
            values[f.name] = _convert(table[f.name], hints[f.name], _join(path, f.name))
        elif f.default is MISSING and f.default_factory is MISSING:
            raise _Invalid(f"{_join(path, f.name)} é obrigatório")
    return cls(**values)


_TYPE_NAMES = {str: "um texto não vazio", int: "um número inteiro", float: "um número", bool: "true ou false"}


def _convert(value: Any, hint: Any, path: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):  # X | None: TOML has no null, so the value is an X
        (inner,) = [a for a in get_args(hint) if a is not type(None)]
        return _convert(value, inner, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise _Invalid(f"{path} deve ser uma lista")
        item = get_args(hint)[0]
        return tuple(_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, Mapping):
            raise _Invalid(f"{path} deve ser uma tabela TOML")
        item = get_args(hint)[1]
        return {str(k): _convert(v, item, _join(path, str(k))) for k, v in value.items()}
    if isinstance(hint, type) and is_dataclass(hint):
        return _build(hint, value, path)
    return _scalar(value, hint, path)


def _scalar(value: Any, hint: type, path: str) -> Any:
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str) and bool(value.strip()),
    }[hint]
    if not ok:
        raise _Invalid(f"{path} deve ser {_TYPE_NAMES[hint]} (veio {value!r})")
    return float(value) if hint is float else value


# --- semantic checks -----------------------------------------------------------------------------

def _validate(p: Profile) -> None:
    _check_identity(p)
    _check_transport(p)
    _check_lote(p)
    _check_flow(p)
    _check_demonstrativos(p)
    _check_glosa(p.glosa)
    _check_codes(p)
    _check_prestadores(p)


def _check_identity(p: Profile) -> None:
    if not _REGISTRO_ANS.fullmatch(p.registro_ans):
        raise _Invalid(f"registro_ans deve ter 6 dígitos (veio {p.registro_ans!r})")
    if not cnpj_valido(p.cnpj):
        raise _Invalid(f"cnpj {p.cnpj!r} inválido (14 caracteres, dígitos verificadores)")


def _check_transport(p: Profile) -> None:
    if not p.versoes or len(set(p.versoes)) != len(p.versoes):
        raise _Invalid("versoes deve listar versões do Padrão TISS sem repetir")
    for versao in p.versoes:
        if versao not in VERSIONS:
            raise _Invalid(f"versoes: versão {versao!r} não suportada ({', '.join(VERSIONS)})")
    for key, name in [("hash_variante", p.hash_variante), *(("hash_aceito", v) for v in p.hash_aceito)]:
        if name not in hashing.VARIANTS:
            raise _Invalid(f"{key}: variante de hash desconhecida {name!r}; "
                           f"conhecidas: {', '.join(hashing.VARIANTS)}")
    if not 1024 <= p.max_bytes <= 1024 * MiB:
        raise _Invalid(f"max_bytes deve estar entre 1024 e {1024 * MiB} (veio {p.max_bytes})")
    limite = _regras_do_manual(p.key).max_bytes
    if limite is not None and p.max_bytes < limite:
        raise _Invalid(f"max_bytes {p.max_bytes} abaixo do tamanho máximo de arquivo do manual da operadora "
                       f"({limite} bytes, adapters/rules.py): ela recusaria o que o gateway envia")


def _check_lote(p: Profile) -> None:
    from simulator.rules import REGRAS  # rules import this module for typing only

    for nome in p.regras:
        if nome not in REGRAS:
            raise _Invalid(f"regras: a regra {nome!r} de adapters/rules.py não tem implementação em "
                           f"simulator/rules.py; implementadas: {', '.join(REGRAS)}")
    if not set(_FORMATO_CAMPOS).issuperset(_placeholders(p.formato_critica)):
        raise _Invalid(f"formato_critica só pode usar {{codigo}}, {{descricao}} e {{detalhe}}: "
                       f"{p.formato_critica!r}")


def _placeholders(formato: str) -> set[str]:
    try:
        return {name for _text, name, _spec, _conv in string.Formatter().parse(formato) if name is not None}
    except ValueError as exc:
        raise _Invalid(f"formato_critica inválido: {exc}") from None


def _check_etapa(etapa: Etapa, path: str, p: Profile) -> None:
    if not 1 <= etapa.status_tiss <= 10:
        raise _Invalid(f"{path}: status_tiss {etapa.status_tiss} fora de dm_statusProtocolo (1 a 10)")
    if etapa.status_tiss == 10 and "4.01.00" in p.versoes:
        raise _Invalid(f"{path}: status 10 (Bloqueio judicial) não existe na 4.01.00")
    if etapa.apos_horas < 0:
        raise _Invalid(f"{path}: apos_horas não pode ser negativo")


def _check_flow(p: Profile) -> None:
    if not p.status:
        raise _Invalid("status: o fluxo da operadora está vazio")
    for i, etapa in enumerate(p.status):
        _check_etapa(etapa, f"status[{i}] ({etapa.nome})", p)
        if etapa.status_tiss in _FORA_DO_FLUXO:
            raise _Invalid(f"status[{i}] ({etapa.nome}): status {etapa.status_tiss} não faz parte do fluxo "
                           "de um lote aceito (4 vai em status_glosa_total, 7 em status_recusa)")
        if i and etapa.apos_horas <= p.status[i - 1].apos_horas:
            raise _Invalid(f"status[{i}] ({etapa.nome}): apos_horas deve crescer ao longo do fluxo "
                           f"({etapa.apos_horas} após {p.status[i - 1].apos_horas})")
    first, last = p.status[0], p.status[-1]
    if first.apos_horas != 0 or first.status_tiss != RECEBIDO:
        raise _Invalid("status[0] deve ser o recebimento: status_tiss 1 com apos_horas 0")
    present = {e.status_tiss for e in p.status}
    for needed in (EM_ANALISE, LIBERADO_PARA_PAGAMENTO):
        if needed not in present:
            raise _Invalid(f"status: o fluxo deve passar pelo status {needed}")
    if last.status_tiss != PAGAMENTO_EFETUADO:
        raise _Invalid(f"status: o fluxo deve terminar em 6 (Pagamento efetuado), não em {last.status_tiss}")
    if [e.status_tiss for e in p.status].count(PAGAMENTO_EFETUADO) != 1:
        raise _Invalid("status: 6 (Pagamento efetuado) só pode aparecer no fim do fluxo")
    total = p.status_glosa_total
    _check_etapa(total, "status_glosa_total", p)
    if total.status_tiss != ENCERRADO_SEM_PAGAMENTO:
        raise _Invalid("status_glosa_total.status_tiss deve ser 4 (Encerrado sem pagamento)")
    if total.apos_horas != p.horas_analise:
        raise _Invalid(f"status_glosa_total.apos_horas deve ser o fim da análise ({p.horas_analise}): "
                       "a glosa total aparece quando a análise termina")
    _check_etapa(p.status_recusa, "status_recusa", p)
    if p.status_recusa.status_tiss != NAO_LOCALIZADO or p.status_recusa.apos_horas != 0:
        raise _Invalid("status_recusa deve ter status_tiss 7 (sem protocolo) e apos_horas 0")


def _check_demonstrativos(p: Profile) -> None:
    if not p.demonstrativos or not set(p.demonstrativos) <= {PAGAMENTO, ANALISE_CONTA, PAGAMENTO_ODONTOLOGIA}:
        raise _Invalid("demonstrativos deve listar tipos de dm_tipoDemonstrativo (1, 2, 3)")
    present = {e.status_tiss for e in p.status}
    if (ANALISE_CONTA in p.demonstrativos) != (p.demonstrativo_analise_desde is not None):
        raise _Invalid("demonstrativo_analise_desde é obrigatório se e somente se demonstrativos inclui 2")
    if p.demonstrativo_analise_desde is not None and p.demonstrativo_analise_desde not in ANALISADOS:
        raise _Invalid("demonstrativo_analise_desde deve ser um status de lote analisado (3, 5 ou 6)")
    for key, status in (("demonstrativo_analise_desde", p.demonstrativo_analise_desde),
                        ("demonstrativo_pagamento_desde", p.demonstrativo_pagamento_desde)):
        if status is not None and status not in present:
            raise _Invalid(f"{key}: o status {status} não está no fluxo")


def _check_glosa(g: GlosaConfig) -> None:
    for key, value in (("taxa_parcial", g.taxa_parcial), ("taxa_total", g.taxa_total)):
        if not 0 <= value <= 1:
            raise _Invalid(f"glosa.{key} deve estar entre 0 e 1 (veio {value})")
    if g.taxa_parcial + g.taxa_total > 1:
        raise _Invalid("glosa.taxa_parcial + glosa.taxa_total não pode passar de 1")
    if not 0 < g.fracao_parcial < 1:
        raise _Invalid(f"glosa.fracao_parcial deve estar entre 0 e 1, exclusive (veio {g.fracao_parcial})")
    if not g.codigos:
        raise _Invalid("glosa.codigos não pode ser vazio")


def _check_codes(p: Profile) -> None:
    """Every Table 38 code the profile can emit exists in dm_tipoGlosa of every version it takes."""
    from simulator.rules import REGRAS

    codes = [("glosa.codigos", c) for c in p.glosa.codigos]
    codes += [(f"elegibilidade[{i}].codigo", r.codigo) for i, r in enumerate(p.elegibilidade)]
    codes += [(f"autorizacao.negados.{proc}", motivo) for proc, motivo in p.autorizacao.negados.items()]
    codes += [(f"regras ({nome})", c) for nome in p.regras for c in REGRAS[nome].codigos]
    for versao in p.versoes:
        known = codigos_glosa(versao)
        for path, code in codes:
            if code not in known:
                raise _Invalid(f"{path}: código {code!r} não está na tabela 38 (dm_tipoGlosa) "
                               f"da versão {versao}")
    for i, regra in enumerate(p.elegibilidade):
        if not regra.sufixo.isalnum():
            raise _Invalid(f"elegibilidade[{i}].sufixo deve ser alfanumérico (veio {regra.sufixo!r})")
    for proc in (*p.autorizacao.negados, *p.autorizacao.em_analise):
        if not _PROCEDIMENTO.fullmatch(proc):
            raise _Invalid(f"autorizacao: código de procedimento inválido {proc!r} (st_texto10)")
    if set(p.autorizacao.negados) & set(p.autorizacao.em_analise):
        raise _Invalid("autorizacao: um procedimento não pode estar em negados e em em_analise")
    if p.autorizacao.horas_em_analise <= 0:
        raise _Invalid("autorizacao.horas_em_analise deve ser positivo")


def _check_prestadores(p: Profile) -> None:
    if not p.prestadores:
        raise _Invalid("prestadores: a operadora deve conhecer ao menos um prestador")
    seen: dict[str, set[str]] = {"documento": set(), "login": set(), "codigo_na_operadora": set()}
    for i, prestador in enumerate(p.prestadores):
        path = f"prestadores[{i}]"
        documento = prestador.documento
        valido = cnpj_valido(documento) or cpf_valido(documento)
        if normaliza_documento(documento) != documento or not valido:
            raise _Invalid(f"{path}.documento {documento!r} não é CNPJ/CPF válido "
                           "(só dígitos, sem pontuação)")
        if len(prestador.login) > 20 or any(c.isspace() for c in prestador.login):
            raise _Invalid(f"{path}.login deve ter até 20 caracteres, sem espaços (loginPrestador)")
        if len(prestador.codigo_na_operadora) > 14:
            raise _Invalid(f"{path}.codigo_na_operadora tem no máximo 14 caracteres (st_texto14)")
        for key, used in seen.items():
            value = getattr(prestador, key)
            if value in used:
                raise _Invalid(f"{path}.{key} {value!r} repetido")
            used.add(value)
