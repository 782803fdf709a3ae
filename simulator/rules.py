"""Operator rules that need code: the críticas a simulated operator raises on a lote de guias.

Each rule is a function registered by name (:func:`regra`); a profile's ``regras`` list picks the
ones its operator applies. :func:`check_lote` runs them on a schema-valid ``loteGuiasWS`` (or a
``mensagemTISS`` with a loteGuias) and words every crítica the way the operator's portal does
(``Profile.formato_critica``). Every code a rule may emit is declared with it, so loading a
profile checks them against dm_tipoGlosa of each version the operator takes (all codes here are
below 3169, present in 4.01.00 to 4.03.00).

Where each rule comes from (manuals in shared/seeds):
- ``prestador_conhecido``: PASA's crítica "1206 CPF / CNPJ INVÁLIDO Detalhes: prestador não
  localizado na operadora" on ``cabeçalho/origem/identificacaoPrestador/CNPJ``.
- ``max_guias_lote``: PASA "máximo de 100 guias", CASSEMS "no máximo 50 autorizações".
- ``um_tipo_de_guia``: Unimed/Amplimed sends one XML per guide type (consulta, SP/SADT).
- ``tipo_de_guia_aceito``: CASSEMS' lotes are "Tipo Guia, sendo somente Odontológica".
- ``executante_sadt``: Unimed, "campo 30 preenchido com o nome do médico executante [...] Caso
  esteja como Unimed São José dos Campos [...] não fará o envio".
- ``guia_completa``: CASSEMS, only guides with status "completo" (all asterisk fields) enter a lote.
- ``honorarios_matricula``: IPASGO, honorários need "a matrícula de quem receberá o mesmo".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from lxml import etree

from gateway.message.findings import tabela38
from gateway.message.lote import GUIDE_KINDS
from gateway.message.services import ANS_NS

if TYPE_CHECKING:
    from simulator.profile import Profile

NS = {"ans": ANS_NS}

# Table 38 codes the rules use (descriptions are the ANS terms).
REMETENTE_NAO_IDENTIFICADO = "5005"
CODIGO_PRESTADOR_INVALIDO = "1203"
CPF_CNPJ_INVALIDO = "1206"
TIPO_DE_GUIA_INVALIDO = "1301"
PRESTADOR_EXECUTANTE_NAO_INFORMADO = "1311"
CAMPO_CONDICIONADO = "3111"
GUIAS_ACIMA_DO_MAXIMO = "5015"
# tabela38.json lacks a few descriptions; these are the ANS terms.
_DESCRICOES = {CODIGO_PRESTADOR_INVALIDO: "CÓDIGO PRESTADOR INVÁLIDO"}

NOMES_TIPO = {"consulta": "consulta", "sp-sadt": "SP/SADT", "odonto": "tratamento odontológico",
              "honorarios": "honorários", "resumo-internacao": "resumo de internação"}


@dataclass(frozen=True)
class Critica:
    codigo: str  # Table 38 code present in dm_tipoGlosa of the message's version
    mensagem: str  # Portuguese, as the operator's portal would word it
    guia: str | None = None  # numeroGuiaPrestador it points at; None = the lote/file
    rejeita_lote: bool = True  # False: only that guide is refused (IPASGO partial sending)
    campo: str | None = None  # element path it points at, relative to the message root


@dataclass(frozen=True)
class Guia:
    elemento: etree._Element
    tipo: str  # consulta | sp-sadt | odonto | honorarios | resumo-internacao
    numero: str  # numeroGuiaPrestador


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


# --- reading ------------------------------------------------------------------------------------

_LOTE_GUIAS = etree.XPath("ans:loteGuias | ans:prestadorParaOperadora/ans:loteGuias", namespaces=NS)
_NUMERO_GUIA = etree.XPath(
    "string((ans:cabecalhoGuia | ans:cabecalhoConsulta)/ans:numeroGuiaPrestador | ans:numeroGuiaPrestador)",
    namespaces=NS)


def ler_lote(root: etree._Element, version: str) -> Lote:
    found = _LOTE_GUIAS(root)
    if not found:
        raise ValueError("a mensagem não tem loteGuias")
    lote = found[0]
    guias = lote.find("ans:guiasTISS", NS)
    items = [] if guias is None else [g for g in guias if isinstance(g.tag, str)]
    return Lote(root, version, (lote.findtext("ans:numeroLote", "", NS) or "").strip(),
                tuple(Guia(g, _tipo(g), _NUMERO_GUIA(g).strip()) for g in items))


def _tipo(guia: etree._Element) -> str:
    name = etree.QName(guia).localname
    return GUIDE_KINDS[name][0] if name in GUIDE_KINDS else name


def _texto(element: etree._Element, path: str) -> str:
    return "".join(element.xpath(f"{path}//text()", namespaces=NS)).strip()


def _primeiro_filho(parent: etree._Element | None) -> etree._Element | None:
    """The chosen element of a choice (ct_contratadoDados, ct_prestadorIdentificacao)."""
    if parent is None:
        return None
    return next((e for e in parent if isinstance(e.tag, str)), None)


def _ans(path: str) -> str:
    return "/".join(f"ans:{step}" for step in path.split("/"))


def critica(profile: Profile, codigo: str, detalhe: str, guia: str | None = None,
            campo: str | None = None) -> Critica:
    """A crítica worded with the operator's ``formato_critica``."""
    descricao = tabela38().get(codigo) or _DESCRICOES.get(codigo) or ""
    mensagem = profile.formato_critica.format(codigo=codigo, descricao=descricao, detalhe=detalhe)
    return Critica(codigo, mensagem, guia, True, campo)


# --- the rules ----------------------------------------------------------------------------------

@regra("prestador_conhecido", REMETENTE_NAO_IDENTIFICADO, CPF_CNPJ_INVALIDO, CODIGO_PRESTADOR_INVALIDO)
def prestador_conhecido(profile: Profile, lote: Lote) -> Iterator[Critica]:
    """The sender (cabecalho/origem) is a provider of the operator: by CNPJ/CPF (1206) or code (1203)."""
    base = "cabecalho/origem/identificacaoPrestador"
    element = _primeiro_filho(lote.root.find(_ans(base), NS))
    if element is None:
        yield critica(profile, REMETENTE_NAO_IDENTIFICADO, "cabeçalho sem a identificação do prestador",
                      campo="cabecalho/origem")
        return
    name = etree.QName(element).localname
    value = (element.text or "").strip()
    if name in ("CNPJ", "CPF"):
        if profile.prestador_por_documento(value) is None:
            yield critica(profile, CPF_CNPJ_INVALIDO, "prestador não localizado na operadora",
                          campo=f"{base}/{name}")
    elif profile.prestador_por_codigo(value) is None:
        yield critica(profile, CODIGO_PRESTADOR_INVALIDO,
                      f"código {value!r} não localizado como prestador na operadora", campo=f"{base}/{name}")


@regra("max_guias_lote", GUIAS_ACIMA_DO_MAXIMO)
def max_guias_lote(profile: Profile, lote: Lote) -> Iterator[Critica]:
    total = len(lote.guias)
    if total > profile.max_guias_lote:
        yield critica(profile, GUIAS_ACIMA_DO_MAXIMO,
                      f"o lote {lote.numero} tem {total} guias; o limite máximo permitido por lote é de "
                      f"{profile.max_guias_lote} guias", campo="loteGuias/guiasTISS")


@regra("um_tipo_de_guia", TIPO_DE_GUIA_INVALIDO)
def um_tipo_de_guia(profile: Profile, lote: Lote) -> Iterator[Critica]:
    """One guide type per lote. ctm_guiaLote already imposes it, so this catches a tree that
    skipped validation; it is Unimed's explicit rule (one XML for consulta, one for SP/SADT)."""
    tipos = list(dict.fromkeys(g.tipo for g in lote.guias))
    if len(tipos) > 1:
        nomes = " e ".join(NOMES_TIPO.get(t, t) for t in tipos)
        yield critica(profile, TIPO_DE_GUIA_INVALIDO,
                      f"o lote mistura guias de {nomes}; envie um arquivo XML para cada tipo de guia",
                      campo="loteGuias/guiasTISS")


@regra("tipo_de_guia_aceito", TIPO_DE_GUIA_INVALIDO)
def tipo_de_guia_aceito(profile: Profile, lote: Lote) -> Iterator[Critica]:
    recusados = list(dict.fromkeys(g.tipo for g in lote.guias if g.tipo not in profile.tipos_guia))
    if recusados:
        aceitos = ", ".join(NOMES_TIPO.get(t, t) for t in profile.tipos_guia)
        yield critica(profile, TIPO_DE_GUIA_INVALIDO,
                      f"guias de {', '.join(NOMES_TIPO.get(t, t) for t in recusados)} não são aceitas neste "
                      f"canal; tipos aceitos: {aceitos}", campo="loteGuias/guiasTISS")


_EXECUTANTE_SADT = "dadosExecutante/contratadoExecutante"


@regra("executante_sadt", PRESTADOR_EXECUTANTE_NAO_INFORMADO)
def executante_sadt(profile: Profile, lote: Lote) -> Iterator[Critica]:
    """Unimed, SP/SADT field 30 "Nome do Contratado" (executante; 29 is its code na operadora).

    Since 4.00.00 the name left the XML (ct_contratadoDados keeps codigoPrestadorNaOperadora |
    cpfContratado | cnpjContratado), so ``dadosExecutante/contratadoExecutante`` carries field
    29/30: it must identify the executor, and not as the operator itself (its CNPJ or one of
    its own codes, ``Profile.codigos_proprios``).
    """
    for guia in lote.guias:
        if guia.tipo != "sp-sadt":
            continue
        ident = _primeiro_filho(guia.elemento.find(_ans(_EXECUTANTE_SADT), NS))
        value = (ident.text or "").strip() if ident is not None else ""
        if not value:
            yield critica(profile, PRESTADOR_EXECUTANTE_NAO_INFORMADO,
                          f"guia SP/SADT {guia.numero} sem o contratado executante (campo 30): informe o "
                          "médico executante do procedimento", guia.numero, _EXECUTANTE_SADT)
        elif _e_a_operadora(profile, etree.QName(ident).localname, value):
            yield critica(profile, PRESTADOR_EXECUTANTE_NAO_INFORMADO,
                          f"guia SP/SADT {guia.numero} com a própria operadora ({profile.nome}) como "
                          "contratado executante (campo 30): informe o médico executante do procedimento",
                          guia.numero, _EXECUTANTE_SADT)


def _e_a_operadora(profile: Profile, kind: str, value: str) -> bool:
    if kind == "cnpjContratado":
        return value == profile.cnpj
    return kind == "codigoPrestadorNaOperadora" and value in {profile.registro_ans, *profile.codigos_proprios}


@regra("guia_completa", CAMPO_CONDICIONADO)
def guia_completa(profile: Profile, lote: Lote) -> Iterator[Critica]:
    """CASSEMS: a guide enters a lote only when "completo": every ``campos_obrigatorios`` path of
    its type is filled. A path ``a/b`` requires ``b`` in every ``a`` and at least one ``a``."""
    for guia in lote.guias:
        campos = profile.campos_obrigatorios.get(guia.tipo, ())
        faltando = [c for c in campos if not _preenchido(guia.elemento, c)]
        if faltando:
            yield critica(profile, CAMPO_CONDICIONADO, f"guia {guia.numero} incompleta; preencha os "
                          f"campos obrigatórios: {', '.join(faltando)}", guia.numero, faltando[0])


def _preenchido(guia: etree._Element, caminho: str) -> bool:
    parent_path, _, leaf = caminho.rpartition("/")
    parents = guia.xpath(_ans(parent_path), namespaces=NS) if parent_path else [guia]
    return bool(parents) and all(_texto(p, f"ans:{leaf}") for p in parents)


_RECEBEDOR_HONORARIOS = "dadosContratadoExecutante/codigonaOperadora"


@regra("honorarios_matricula", PRESTADOR_EXECUTANTE_NAO_INFORMADO, CODIGO_PRESTADOR_INVALIDO)
def honorarios_matricula(profile: Profile, lote: Lote) -> Iterator[Critica]:
    """IPASGO: honorários carry "a matrícula de quem receberá". In ctm_honorarioIndividualGuia who
    receives is the contratado executante, ``dadosContratadoExecutante/codigonaOperadora`` (its
    código na operadora, i.e. the IPASGO matrícula): it must be filled and known to the operator.
    The guide alone is refused (IPASGO takes guides one by one)."""
    known = {p.codigo_na_operadora for p in profile.prestadores} | set(profile.matriculas)
    for guia in lote.guias:
        if guia.tipo != "honorarios":
            continue
        matricula = _texto(guia.elemento, _ans(_RECEBEDOR_HONORARIOS))
        if not matricula:
            found = critica(profile, PRESTADOR_EXECUTANTE_NAO_INFORMADO, f"guia de honorários "
                            f"{guia.numero} sem a matrícula de quem receberá os honorários",
                            guia.numero, _RECEBEDOR_HONORARIOS)
        elif matricula not in known:
            found = critica(profile, CODIGO_PRESTADOR_INVALIDO,
                            f"guia de honorários {guia.numero}: matrícula {matricula} de quem receberá os "
                            "honorários não localizada", guia.numero, _RECEBEDOR_HONORARIOS)
        else:
            continue
        yield replace(found, rejeita_lote=False)
