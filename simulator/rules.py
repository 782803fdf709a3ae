"""The críticas a simulated operator raises on a lote de guias.

The rules of the operators' manuals are defined once, in :mod:`adapters.rules` (the gateway's
adapters check the same ones before sending), and a profile's ``regras`` are derived from them
(:mod:`simulator.profile`). Here each rule is registered by name (:func:`regra`) with the Table
38 codes it may emit, so loading a profile checks them against dm_tipoGlosa of each version the
operator takes; :func:`check_lote` runs a profile's rules on a schema-valid ``loteGuiasWS`` (or a
``mensagemTISS`` with a loteGuias) and words every crítica the way the operator's portal does
(``Profile.formato_critica``).

Two checks need what only the operator knows, and are the simulator's own:
- ``prestador_conhecido``: the sender is one of its providers (PASA's crítica "1206 CPF / CNPJ
  INVÁLIDO Detalhes: prestador não localizado na operadora" on
  ``cabeçalho/origem/identificacaoPrestador/CNPJ``);
- in ``honorarios_matricula``, the receiver's matrícula is one it knows (IPASGO: 1203).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from lxml import etree

from adapters.guias import Guia, ans_path, guias_do_lote, lote_guias, numero_do_lote
from adapters.rules import (
    EXECUTANTE_SADT,
    GUIA_COMPLETA,
    MATRICULA_HONORARIOS,
    MAX_GUIAS_LOTE,
    RECEBEDOR_HONORARIOS,
    TIPO_DE_GUIA_ACEITO,
    UM_TIPO_DE_GUIA,
    OperadoraIdentity,
    Violation,
    check_executante_sadt,
    check_guia_completa,
    check_matricula_honorarios,
    check_max_guias,
    check_tipos_aceitos,
    check_um_tipo,
    matricula_recebedor,
)
from gateway.message.findings import REMETENTE_NAO_IDENTIFICADO, tabela38

if TYPE_CHECKING:
    from simulator.profile import Profile

# Table 38 codes of the simulator's own checks (descriptions are the ANS terms).
CODIGO_PRESTADOR_INVALIDO = "1203"
CPF_CNPJ_INVALIDO = "1206"
# tabela38.json lacks a few descriptions; these are the ANS terms.
_DESCRICOES = {CODIGO_PRESTADOR_INVALIDO: "CÓDIGO PRESTADOR INVÁLIDO"}
_ORIGEM = "cabecalho/origem/identificacaoPrestador"


@dataclass(frozen=True)
class Critica:
    codigo: str  # Table 38 code present in dm_tipoGlosa of the message's version
    mensagem: str  # Portuguese, as the operator's portal would word it
    guia: str | None = None  # numeroGuiaPrestador it points at; None = the lote/file
    rejeita_lote: bool = True  # False: only that guide is refused (IPASGO partial sending)
    campo: str | None = None  # element path it points at, relative to the message root


@dataclass(frozen=True)
class Lote:
    """The parts of a lote the rules look at."""

    root: etree._Element  # loteGuiasWS or mensagemTISS
    version: str
    numero: str
    guias: tuple[Guia, ...]


Funcao = Callable[["Profile", Lote], Iterable[Critica]]


@dataclass(frozen=True)
class Regra:
    nome: str
    funcao: Funcao
    codigos: tuple[str, ...]  # every Table 38 code the rule may emit


REGRAS: dict[str, Regra] = {}


def regra(nome: str, *codigos: str) -> Callable[[Funcao], Funcao]:
    """Register a rule under ``nome``, declaring the Table 38 codes it emits."""
    def register(funcao: Funcao) -> Funcao:
        if nome in REGRAS:
            raise ValueError(f"regra {nome!r} registrada duas vezes")
        REGRAS[nome] = Regra(nome, funcao, codigos)
        return funcao
    return register


def check_lote(profile: Profile, root: etree._Element, version: str) -> list[Critica]:
    """The críticas of ``profile``'s rules on a lote, in rule order.

    With ``envio_parcial`` a crítica that names a guide refuses only that guide; críticas about
    the lote or file refuse it whole.
    """
    lote = ler_lote(root, version)
    criticas = [c for nome in profile.regras for c in REGRAS[nome].funcao(profile, lote)]
    if profile.envio_parcial:
        criticas = [replace(c, rejeita_lote=False) if c.guia is not None else c for c in criticas]
    return criticas


def lote_recusado(criticas: Iterable[Critica]) -> bool:
    return any(c.rejeita_lote for c in criticas)


def guias_recusadas(criticas: Iterable[Critica]) -> frozenset[str]:
    """Guides refused one by one (partial sending); the others of the lote are accepted."""
    return frozenset(c.guia for c in criticas if not c.rejeita_lote and c.guia is not None)


def ler_lote(root: etree._Element, version: str) -> Lote:
    lote = lote_guias(root)
    if lote is None:
        raise ValueError("a mensagem não tem loteGuias")
    return Lote(root, version, numero_do_lote(lote), tuple(guias_do_lote(lote)))


def critica(profile: Profile, codigo: str, detalhe: str, guia: str | None = None,
            campo: str | None = None) -> Critica:
    """A crítica worded with the operator's ``formato_critica``."""
    descricao = tabela38().get(codigo) or _DESCRICOES.get(codigo) or ""
    mensagem = profile.formato_critica.format(codigo=codigo, descricao=descricao, detalhe=detalhe)
    return Critica(codigo, mensagem, guia, True, campo)


def _criticas(profile: Profile, violations: Iterable[Violation]) -> Iterator[Critica]:
    """A manual's rule broken, worded by the operator's portal."""
    for v in violations:
        yield critica(profile, v.rule.code, v.detalhe, v.guia.numero if v.guia is not None else None, v.campo)


def _identity(profile: Profile) -> OperadoraIdentity:
    return OperadoraIdentity(profile.nome, profile.registro_ans, profile.cnpj, profile.codigos_proprios)


# --- the operator's own --------------------------------------------------------------------------

@regra("prestador_conhecido", REMETENTE_NAO_IDENTIFICADO, CPF_CNPJ_INVALIDO, CODIGO_PRESTADOR_INVALIDO)
def prestador_conhecido(profile: Profile, lote: Lote) -> Iterator[Critica]:
    """The sender (cabecalho/origem) is a provider of the operator: by CNPJ/CPF (1206) or code (1203)."""
    origem = lote.root.find(ans_path(_ORIGEM))
    element = next(origem.iterchildren(etree.Element), None) if origem is not None else None
    if element is None:
        yield critica(profile, REMETENTE_NAO_IDENTIFICADO, "cabeçalho sem a identificação do prestador",
                      campo="cabecalho/origem")
        return
    name = etree.QName(element).localname
    value = (element.text or "").strip()
    if name in ("CNPJ", "CPF"):
        if profile.prestador_por_documento(value) is None:
            yield critica(profile, CPF_CNPJ_INVALIDO, "prestador não localizado na operadora",
                          campo=f"{_ORIGEM}/{name}")
    elif profile.prestador_por_codigo(value) is None:
        yield critica(profile, CODIGO_PRESTADOR_INVALIDO,
                      f"código {value!r} não localizado como prestador na operadora",
                      campo=f"{_ORIGEM}/{name}")


# --- the manuals' rules (adapters.rules) ---------------------------------------------------------

@regra(MAX_GUIAS_LOTE.name, MAX_GUIAS_LOTE.code)
def max_guias_lote(profile: Profile, lote: Lote) -> Iterator[Critica]:
    return _criticas(profile, check_max_guias(lote.numero, lote.guias, profile.max_guias_lote))


@regra(UM_TIPO_DE_GUIA.name, UM_TIPO_DE_GUIA.code)
def um_tipo_de_guia(profile: Profile, lote: Lote) -> Iterator[Critica]:
    return _criticas(profile, check_um_tipo(lote.guias))


@regra(TIPO_DE_GUIA_ACEITO.name, TIPO_DE_GUIA_ACEITO.code)
def tipo_de_guia_aceito(profile: Profile, lote: Lote) -> Iterator[Critica]:
    return _criticas(profile, check_tipos_aceitos(lote.guias, profile.tipos_guia))


@regra(EXECUTANTE_SADT.name, EXECUTANTE_SADT.code)
def executante_sadt(profile: Profile, lote: Lote) -> Iterator[Critica]:
    return _criticas(profile, check_executante_sadt(lote.guias, _identity(profile)))


@regra(GUIA_COMPLETA.name, GUIA_COMPLETA.code)
def guia_completa(profile: Profile, lote: Lote) -> Iterator[Critica]:
    return _criticas(profile, check_guia_completa(lote.guias, profile.campos_obrigatorios))


@regra(MATRICULA_HONORARIOS.name, MATRICULA_HONORARIOS.code, CODIGO_PRESTADOR_INVALIDO)
def honorarios_matricula(profile: Profile, lote: Lote) -> Iterator[Critica]:
    """The receiver's matrícula is filled (the manual's rule) and known to the operator: a
    provider's code there or a professional's (``Profile.matriculas``). The guide alone is
    refused (IPASGO takes guides one by one)."""
    known = {p.codigo_na_operadora for p in profile.prestadores} | set(profile.matriculas)
    for guia in lote.guias:
        if guia.tipo != "honorarios":
            continue
        sem_matricula = list(_criticas(profile, check_matricula_honorarios([guia])))
        matricula = matricula_recebedor(guia)
        if sem_matricula:
            found = sem_matricula[0]
        elif matricula not in known:
            found = critica(profile, CODIGO_PRESTADOR_INVALIDO,
                            f"guia de honorários {guia.numero}: matrícula {matricula} de quem receberá os "
                            "honorários não localizada", guia.numero, RECEBEDOR_HONORARIOS)
        else:
            continue
        yield replace(found, rejeita_lote=False)
