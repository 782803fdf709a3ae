"""The operators' lote rules, once: what each manual (shared/seeds) says a lote de guias must be,
as data (:class:`OperadoraRules`, one per operator in :data:`OPERADORAS`), and the checks that
read it.

Both sides use them: the adapters check them when a lote is accepted (and meet the limits on a
lote's size and guide types by splitting it); the simulated operators (``simulator/rules.py``,
``simulator/profile.py``) refuse a lote that breaks them. A change in a manual is made here only.

Each rule (:class:`Rule`) has its Table 38 code and the words of its crítica; a check gives
:class:`Violation` values, which each side words its own way (the adapter adds the operator's
name, a simulated operator its portal's format).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from lxml import etree

from adapters.guias import MAX_GUIAS_PADRAO, TIPOS_GUIA, Guia, ans_path, nome_tipo
from gateway.message.findings import GUIAS_ACIMA_DO_MAXIMO
from gateway.message.identificacao import normaliza_documento

# Table 38 (dm_tipoGlosa) codes of the rules; all are in the 4.01.00-4.03.00 enumerations.
TIPO_DE_GUIA_INVALIDO = "1301"
PRESTADOR_EXECUTANTE_NAO_INFORMADO = "1311"
CAMPO_CONDICIONADO = "3111"  # CAMPO CONDICIONADO NÃO PREENCHIDO OU INCORRETO
CODIGO_PRESTADOR_INVALIDO = "1203"
CPF_CNPJ_INVALIDO = "1206"
# The sender is not a provider of the operator: PASA's words ("1206 CPF / CNPJ INVÁLIDO Detalhes:
# prestador não localizado na operadora", seed 001), the simulated operators' prestador_conhecido.
PRESTADOR_NAO_LOCALIZADO = "prestador não localizado na operadora"
ORIGEM_PRESTADOR = "cabecalho/origem/identificacaoPrestador"  # who sends: code, CNPJ or CPF

MB = 1000 * 1000
_LOTE = "loteGuias/guiasTISS"  # where a crítica about the whole lote points
_EXECUTANTE_SADT = "dadosExecutante/contratadoExecutante"
RECEBEDOR_HONORARIOS = "dadosContratadoExecutante/codigonaOperadora"  # who receives honorários
_CAMINHO = re.compile(r"[A-Za-z][\w-]*(/[A-Za-z][\w-]*)*")


@dataclass(frozen=True)
class Rule:
    """One rule of the manuals: the Table 38 code of its crítica and the crítica's words."""

    name: str  # as the simulated operators' profiles name it
    code: str
    text: str  # the crítica's detail, a str.format template (lower-case first: each side words it)
    by_split: bool = False  # the gateway meets it by splitting the lote; the operator refuses

    def detalhe(self, **valores: object) -> str:
        return self.text.format(**valores)


MAX_GUIAS_LOTE = Rule(
    "max_guias_lote", GUIAS_ACIMA_DO_MAXIMO,
    "o lote {numero} tem {total} guias; o limite máximo permitido por lote é de {maximo} guias",
    by_split=True)
UM_TIPO_DE_GUIA = Rule(
    "um_tipo_de_guia", TIPO_DE_GUIA_INVALIDO,
    "o lote mistura guias de {tipos}; envie um arquivo XML para cada tipo de guia", by_split=True)
TIPO_DE_GUIA_ACEITO = Rule(
    "tipo_de_guia_aceito", TIPO_DE_GUIA_INVALIDO,
    "guias de {recusados} não são aceitas neste canal; tipos aceitos: {aceitos}")
GUIA_COMPLETA = Rule(
    "guia_completa", CAMPO_CONDICIONADO,
    "guia {numero} incompleta; preencha os campos obrigatórios: {campos}")
EXECUTANTE_SADT = Rule(
    "executante_sadt", PRESTADOR_EXECUTANTE_NAO_INFORMADO,
    "guia SP/SADT {numero} {problema} (campo 30): informe o médico executante do procedimento")
MATRICULA_HONORARIOS = Rule(
    "honorarios_matricula", PRESTADOR_EXECUTANTE_NAO_INFORMADO,
    "guia de honorários {numero} sem a matrícula de quem receberá os honorários")
RULES: tuple[Rule, ...] = (MAX_GUIAS_LOTE, UM_TIPO_DE_GUIA, TIPO_DE_GUIA_ACEITO, GUIA_COMPLETA,
                           EXECUTANTE_SADT, MATRICULA_HONORARIOS)


@dataclass(frozen=True)
class OperadoraRules:
    """What one operator's manual says a lote must be; the defaults are the Padrão's."""

    max_guias_lote: int | None = None  # None: only the Padrão's 100
    max_bytes: int | None = None  # per XML file; None: the manual sets none
    um_tipo_de_guia_por_lote: bool = True  # ctm_guiaLote holds one guide type
    tipos_guia: tuple[str, ...] = TIPOS_GUIA  # the guide types its channel takes
    # Per guide type, paths ("a/b": b filled in every a, and at least one a) the XSD leaves optional
    # but the operator requires.
    campos_obrigatorios: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    executante_sadt: bool = False  # an SP/SADT names its executante, and not the operator itself
    matricula_honorarios: bool = False  # honorários name who receives them
    envio_parcial: bool = False  # a guide's crítica refuses only that guide
    exige_assinatura: bool = False  # takes only signed (XMLDSig) messages
    # Takes lotes only from the providers it has credentialed (each has its code there): every
    # operator pays only those, and every simulated operator checks it (prestador_conhecido).
    prestador_cadastrado: bool = True
    cancela_lote_enviado: bool = True  # tissCancelaGuia may cancel a lote (or its guides) once sent

    def __post_init__(self) -> None:
        object.__setattr__(self, "campos_obrigatorios", MappingProxyType(dict(self.campos_obrigatorios)))
        self._check()

    @property
    def limite_guias(self) -> int:
        """Guides a lote may hold: the manual's limit, or the Padrão's."""
        return self.max_guias_lote or MAX_GUIAS_PADRAO

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules this manual sets, in the order their críticas are given."""
        aplica = {MAX_GUIAS_LOTE: True, UM_TIPO_DE_GUIA: self.um_tipo_de_guia_por_lote,
                  TIPO_DE_GUIA_ACEITO: set(self.tipos_guia) != set(TIPOS_GUIA),
                  GUIA_COMPLETA: bool(self.campos_obrigatorios), EXECUTANTE_SADT: self.executante_sadt,
                  MATRICULA_HONORARIOS: self.matricula_honorarios}
        return tuple(rule for rule in RULES if aplica[rule])

    def _check(self) -> None:
        if self.max_guias_lote is not None and not 1 <= self.max_guias_lote <= MAX_GUIAS_PADRAO:
            raise ValueError(f"max_guias_lote deve estar entre 1 e {MAX_GUIAS_PADRAO} (ctm_guiaLote; "
                             f"veio {self.max_guias_lote})")
        if self.max_bytes is not None and self.max_bytes < 1024:
            raise ValueError(f"max_bytes deve ser de ao menos 1024 (veio {self.max_bytes})")
        if not self.tipos_guia:
            raise ValueError("tipos_guia não pode ser vazio")
        for tipo in (*self.tipos_guia, *self.campos_obrigatorios):
            if tipo not in TIPOS_GUIA:
                raise ValueError(f"tipo de guia desconhecido {tipo!r}; conhecidos: {', '.join(TIPOS_GUIA)}")
        for tipo, caminhos in self.campos_obrigatorios.items():
            for caminho in caminhos:
                if not _CAMINHO.fullmatch(caminho):
                    raise ValueError(f"campos_obrigatorios.{tipo}: caminho inválido {caminho!r} "
                                     "(nomes de elementos separados por /, relativos à guia)")


# --------------------------------------------------------------------------------- the manuals

# Capital Prev, "Manual Operacional – Faturamento – Envio de XML" (seeds/000_*): no guide limit,
# file size, version or signature is stated; the lote list has one "Tipo" per lote.
CAPITALPREV = OperadoraRules()

# PASA, "Treinamento: Conecta" (seeds/001_*).
PASA = OperadoraRules(
    # "Os Lotes de Pagamentos com a situação de Enviado à Operadora não poderão ser cancelados. Em
    # caso de necessidade, entre em contato com a Operadora." (seed 001, observação 2)
    cancela_lote_enviado=False,
    max_guias_lote=100,  # "Esse arquivo XML deverá conter um máximo de 100 guias"
    max_bytes=15 * MB,  # "respeitando o tamanho máximo informado de 15MB": the smaller reading
)

# Unimed São José dos Campos, "AMPLIMED – Faturamento" (seeds/002_*): one XML per guide type
# ("foram gerados 2 XML's, 1 de consulta e um de SADT"); "Todas as guias SADT's devem estar com o
# campo 30 preenchido com o nome do médico executante do procedimento. Caso esteja como Unimed São
# José dos Campos [...] não fará o envio". Field 30 is the contratado executante: since 4.00.00
# ``dadosExecutante/contratadoExecutante`` (code na operadora, CPF or CNPJ) identifies it.
UNIMED = OperadoraRules(executante_sadt=True)

# CASSEMS, Faturamento Digital (seeds/003_*).
CASSEMS = OperadoraRules(
    max_guias_lote=50,  # "Cada lote deve conter no máximo 50 autorizações"
    tipos_guia=("odonto",),  # "Tipo Guia, sendo somente Odontológica", "Consultar Lotes Odonto"
    # "busca somente as autorizações com status completo, ou seja, todos os campos obrigatórios
    # da autorização preenchidos" (the fields with an asterisk): optional in cto_guiaOdontologia,
    # always in an e-Autorizador authorization.
    campos_obrigatorios={"odonto": (
        "dataAutorizacao",  # the guide comes from an authorization: its date, senha and validity
        "senhaAutorizacao",
        "validadeSenha",
        "dadosProfissionaisResponsaveis/nomeProfSolic",  # who asked for it
        "dadosProfissionaisResponsaveis/croSolic",
        "dadosProfissionaisResponsaveis/ufSolic",
        "dadosProfissionaisResponsaveis/cbosSolic",
        "dataTerminoTrat",  # only "concluídas ou abandonadas" authorizations are loaded
    )},
)

# IPASGO, "Emissão de guias / Faturas eletrônicas web" (seeds/004_*).
IPASGO = OperadoraRules(
    # "Nos casos das guias de GTA que tenha que digitar honorários [...] colocar a matrícula de
    # quem receberá o mesmo": in ctm_honorarioIndividualGuia, dadosContratadoExecutante/codigonaOperadora.
    matricula_honorarios=True,
    envio_parcial=True,  # "O envio pode ser feito parcialmente, não sendo necessário o envio único"
    # The manual says nothing of signatures: agreed with the operator (TISS items 110-113, XMLDSig
    # with an ICP-Brasil certificate), the one operator whose guides go one by one.
    exige_assinatura=True,
)

OPERADORAS: Mapping[str, OperadoraRules] = MappingProxyType({
    "capitalprev": CAPITALPREV, "pasa": PASA, "unimed": UNIMED, "cassems": CASSEMS, "ipasgo": IPASGO})


# --------------------------------------------------------------------------------- the checks


@dataclass(frozen=True)
class OperadoraIdentity:
    """How the operator itself shows in a guide (a contratado that is the operator is refused)."""

    nome: str
    registro_ans: str
    cnpj: str | None = None
    codigos_proprios: tuple[str, ...] = ()  # its own codes as a prestador (its own network)


@dataclass(frozen=True)
class Violation:
    """A rule broken by a lote, before either side words the crítica."""

    rule: Rule
    detalhe: str
    guia: Guia | None  # the guide it is about; None: the lote
    campo: str  # element path, relative to the guide (or to the message root when guia is None)
    elemento: etree._Element | None = None  # where it is in the message (its line)


def violations(regras: OperadoraRules, guias: Sequence[Guia],
               operadora: OperadoraIdentity) -> Iterator[Violation]:
    """The breaches of ``regras`` that refuse a lote as it is, in rule order (not the ones the
    gateway meets by splitting: see :attr:`Rule.by_split`)."""
    for rule in regras.rules:
        if rule is TIPO_DE_GUIA_ACEITO:
            yield from check_tipos_aceitos(guias, regras.tipos_guia)
        elif rule is GUIA_COMPLETA:
            yield from check_guia_completa(guias, regras.campos_obrigatorios)
        elif rule is EXECUTANTE_SADT:
            yield from check_executante_sadt(guias, operadora)
        elif rule is MATRICULA_HONORARIOS:
            yield from check_matricula_honorarios(guias)


def check_max_guias(numero_lote: str, guias: Sequence[Guia], maximo: int) -> Iterator[Violation]:
    if len(guias) > maximo:
        yield Violation(MAX_GUIAS_LOTE, MAX_GUIAS_LOTE.detalhe(numero=numero_lote, total=len(guias),
                                                               maximo=maximo), None, _LOTE)


def check_um_tipo(guias: Sequence[Guia]) -> Iterator[Violation]:
    """ctm_guiaLote already holds one guide type: this catches a tree that skipped validation."""
    tipos = list(dict.fromkeys(g.tipo for g in guias))
    if len(tipos) > 1:
        yield Violation(UM_TIPO_DE_GUIA, UM_TIPO_DE_GUIA.detalhe(tipos=" e ".join(map(nome_tipo, tipos))),
                        None, _LOTE)


def check_tipos_aceitos(guias: Sequence[Guia], aceitos: Sequence[str]) -> Iterator[Violation]:
    recusados = list(dict.fromkeys(g.tipo for g in guias if g.tipo not in aceitos))
    if recusados:
        primeira = next(g for g in guias if g.tipo in recusados)
        detalhe = TIPO_DE_GUIA_ACEITO.detalhe(recusados=", ".join(map(nome_tipo, recusados)),
                                              aceitos=", ".join(map(nome_tipo, aceitos)))
        yield Violation(TIPO_DE_GUIA_ACEITO, detalhe, None, _LOTE, primeira.elemento)


def check_guia_completa(guias: Sequence[Guia],
                        campos_obrigatorios: Mapping[str, Sequence[str]]) -> Iterator[Violation]:
    for guia in guias:
        faltando = [c for c in campos_obrigatorios.get(guia.tipo, ()) if not preenchido(guia.elemento, c)]
        if faltando:
            detalhe = GUIA_COMPLETA.detalhe(numero=guia.numero, campos=", ".join(faltando))
            yield Violation(GUIA_COMPLETA, detalhe, guia, faltando[0], guia.elemento)


def check_executante_sadt(guias: Sequence[Guia], operadora: OperadoraIdentity) -> Iterator[Violation]:
    for guia in guias:
        if guia.tipo != "sp-sadt":
            continue
        contratado = guia.elemento.find(ans_path(_EXECUTANTE_SADT))
        ident = next(contratado.iterchildren(etree.Element), None) if contratado is not None else None
        valor = (ident.text or "").strip() if ident is not None else ""
        if not valor:
            problema, elemento = "sem o contratado executante", contratado
        elif ident is not None and e_a_operadora(operadora, etree.QName(ident).localname, valor):
            problema = f"com a própria operadora ({operadora.nome}) como contratado executante"
            elemento = ident
        else:
            continue
        yield Violation(EXECUTANTE_SADT, EXECUTANTE_SADT.detalhe(numero=guia.numero, problema=problema),
                        guia, _EXECUTANTE_SADT, elemento)


def check_matricula_honorarios(guias: Sequence[Guia]) -> Iterator[Violation]:
    for guia in guias:
        if guia.tipo == "honorarios" and not matricula_recebedor(guia):
            elemento = guia.elemento.find(ans_path(RECEBEDOR_HONORARIOS))
            yield Violation(MATRICULA_HONORARIOS, MATRICULA_HONORARIOS.detalhe(numero=guia.numero), guia,
                            RECEBEDOR_HONORARIOS, elemento if elemento is not None else guia.elemento)


def matricula_recebedor(guia: Guia) -> str:
    """Who receives an honorários guide's payment (its code at the operator); "" when blank."""
    return _texto(guia.elemento.find(ans_path(RECEBEDOR_HONORARIOS)))


def e_a_operadora(operadora: OperadoraIdentity, kind: str, valor: str) -> bool:
    """A contratado identified as ``kind`` (ct_contratadoDados' choice) ``valor`` is the operator."""
    if kind == "cnpjContratado":
        cnpj = operadora.cnpj
        return cnpj is not None and normaliza_documento(valor) == normaliza_documento(cnpj)
    proprios = {operadora.registro_ans, *operadora.codigos_proprios}
    return kind == "codigoPrestadorNaOperadora" and valor in proprios


def preenchido(guia: etree._Element, caminho: str) -> bool:
    """``caminho`` ("a/b") is filled in ``guia``: b has text in every a, and there is an a."""
    pai, _, folha = caminho.rpartition("/")
    pais = guia.findall(ans_path(pai)) if pai else [guia]
    return bool(pais) and all(any(_texto(f) for f in p.findall(ans_path(folha))) for p in pais)


def _texto(element: etree._Element | None) -> str:
    return "".join(element.itertext()).strip() if element is not None else ""


def codigo_prestador_nao_localizado(identificacao: str) -> str:
    """Table 38 code of a sender the operator does not have, by the element of
    cabecalho/origem/identificacaoPrestador that names it: its code there (1203) or its CNPJ/CPF (1206)."""
    return CODIGO_PRESTADOR_INVALIDO if identificacao == "codigoPrestadorNaOperadora" else CPF_CNPJ_INVALIDO
