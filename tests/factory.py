"""Builds realistic, schema-valid TISS messages for tests and benchmarks.

Every message is deterministic (same arguments, same bytes), carries accented Portuguese text (so
that its ISO-8859-1 and UTF-8 hashes differ) and has its hash stamped with
``gateway.message.hashing`` for the encoding it declares.

Element order, required elements and domain values follow the official XSDs 4.01.00, 4.02.00 and
4.03.00. Version differences the builders handle (guide types and request bodies built here):

- 4.03.00 adds the required ``dadosInternacao/caraterAtendimento`` in ``guiaHonorarios``;
- 4.03.00 adds the optional ``centroConsumo`` to ``ct_procedimentoExecutadoInt`` (resumo de
  internação), ``ct_procedimentoExecutadoOutras`` (outras despesas) and to the items of a recurso
  de glosa: emitted for 4.03.00 only;
- 4.01.00 caps most item values at ``st_decimal8-2`` (999999.99; 4.02.00 widened them to
  decimal10-2) and 4.02.00 narrowed the odonto ``qtdUS`` to decimal7-2: values stay well below;
- 4.03.00 lets a CNPJ be alphanumeric (``[A-Z0-9]{12}[0-9]{2}``): numeric CNPJs are valid in all.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from lxml import etree

from gateway.message import hashing
from gateway.message.services import ANS_NS, SERVICES, SOAP11_NS
from simulator import lifecycle
from simulator.profile import Profile

GUIDE_TYPES = ("consulta", "sp-sadt", "odonto", "honorarios", "resumo-internacao")
VERSIONS = ("4.01.00", "4.02.00", "4.03.00")
REQUEST_KINDS: tuple[str, ...] = tuple(s.request for s in SERVICES)
ENCODINGS = ("ISO-8859-1", "UTF-8")

# Request kinds whose body carries free text (names, justificativas, observações): their
# ISO-8859-1 and UTF-8 hashes differ. The others carry only codes, numbers and dates.
TEXT_REQUEST_KINDS = frozenset({"loteGuiasWS", "solicitacaoProcedimentoWS", "loteAnexoWS",
                                "loteRecursoGlosaWS", "envioDocumentoWS"})

# dm_tipoTransacao of each request (the enumeration is the same in the three versions).
TIPO_TRANSACAO = {
    "loteGuiasWS": "ENVIO_LOTE_GUIAS",
    "solicitacaoStatusProtocoloWS": "SOLIC_STATUS_PROTOCOLO",
    "solicitacaoDemonstrativoRetornoWS": "SOLIC_DEMONSTRATIVO_RETORNO",
    "pedidoElegibilidadeWS": "VERIFICA_ELEGIBILIDADE",
    "solicitacaoProcedimentoWS": "SOLICITACAO_PROCEDIMENTOS",
    "solicitacaoStatusAutorizacaoWS": "SOLICITA_STATUS_AUTORIZACAO",
    "cancelaGuiaWS": "CANCELA_GUIA",
    "loteAnexoWS": "ENVIO_ANEXO",
    "loteRecursoGlosaWS": "RECURSO_GLOSA",
    "solicitacaoStatusRecursoGlosaWS": "SOLIC_STATUS_RECURSO_GLOSA",
    "comunicacaoBeneficiarioWS": "COMUNICACAO_BENEFICIARIO",
    "envioDocumentoWS": "ENVIO_DOCUMENTO",
}

# The body element of each *WS request (names differ from mensagemTISS's; "envioDOcumento" is
# spelled so in the official tissWebServices XSDs of all three versions).
BODY_ELEMENT = {
    "loteGuiasWS": "loteGuias",
    "solicitacaoStatusProtocoloWS": "solicitacaoStatusProtocolo",
    "solicitacaoDemonstrativoRetornoWS": "solicitacaoDemonstrativoRetorno",
    "pedidoElegibilidadeWS": "pedidoElegibilidade",
    "solicitacaoProcedimentoWS": "solicitacaoProcedimento",
    "solicitacaoStatusAutorizacaoWS": "solicitacaoStatusAutorizacao",
    "cancelaGuiaWS": "cancelaGuia",
    "loteAnexoWS": "loteAnexo",
    "loteRecursoGlosaWS": "loteRecurso",
    "solicitacaoStatusRecursoGlosaWS": "solicitacaoStatusProtocoloRecurso",
    "comunicacaoBeneficiarioWS": "comunicacaoBeneficiario",
    "envioDocumentoWS": "envioDOcumento",
}

GUIDE_ELEMENT = {
    "consulta": "guiaConsulta",
    "sp-sadt": "guiaSP-SADT",
    "odonto": "guiaOdonto",
    "honorarios": "guiaHonorarios",
    "resumo-internacao": "guiaResumoInternacao",
}

# Default transaction moment per version: inside each version's validity, fixed (deterministic).
DEFAULT_WHEN = {
    "4.01.00": datetime(2024, 9, 16, 10, 15, 30),
    "4.02.00": datetime(2025, 8, 18, 10, 15, 30),
    "4.03.00": datetime(2026, 1, 19, 10, 15, 30),
}

MAX_GUIDE_DIGITS = 5  # numeroGuiaPrestador = numero_lote + index on 5 digits


@dataclass
class Party:
    """Who sends: the provider (prestador) and the operator it sends to."""

    cnpj: str = "11222333000181"
    codigo_na_operadora: str | None = None
    login: str | None = "demo"
    senha: str = "demo"
    registro_ans: str = "331988"

    @property
    def senha_md5(self) -> str:
        return hashlib.md5(self.senha.encode("utf-8"), usedforsecurity=False).hexdigest()

    @property
    def codigo_prestador(self) -> str:
        """The provider's code at the operator (elements that require one even for CNPJ senders)."""
        return self.codigo_na_operadora or "10203040"


# --------------------------------------------------------------------------------------------
# Check digits and identifiers


def cnpj_check_digits(base12: str) -> str:
    digits = [int(c) for c in base12]
    for weights in ([5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2], [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]):
        rest = sum(w * d for w, d in zip(weights, digits, strict=True)) % 11
        digits.append(0 if rest < 2 else 11 - rest)
    return base12 + "".join(str(d) for d in digits[12:])


def cpf_with_check_digits(base9: str) -> str:
    digits = [int(c) for c in base9]
    for size in (9, 10):
        total = sum((size + 1 - i) * d for i, d in enumerate(digits[:size]))
        digits.append(total * 10 % 11 % 10)
    return "".join(str(d) for d in digits)


def _mod11(number: str) -> str:
    total = sum((i % 8 + 2) * int(c) for i, c in enumerate(reversed(number)))
    rest = 11 - total % 11
    return "0" if rest >= 10 else str(rest)


def numero_carteira(registro_ans: str, rng: random.Random) -> str:
    """A 16-digit card number: operator registry, 9-digit sequence, mod-11 check digit."""
    body = f"{registro_ans}{rng.randrange(10**9):09d}"
    return body + _mod11(body)


def numero_guia_prestador(numero_lote: str, index: int) -> str:
    """The provider's guide number of the ``index``-th guide (1-based) of a lote."""
    return f"{numero_lote}{index:0{MAX_GUIDE_DIGITS}d}"


def glosas_drawn(profile: Profile, numero_lote: str, n: int, seed: int) -> list[str]:
    """How the simulated operator glosa each of the ``n`` guides of lote ``numero_lote``
    (lifecycle.GLOSA_*): its own seeded draw, so the same numbers give the same glosas."""
    return [lifecycle.decidir_glosa(
        profile.glosa, seed=seed, registro_ans=profile.registro_ans, numero_lote=numero_lote,
        numero_guia=numero_guia_prestador(numero_lote, g), valores_itens=[Decimal(100)]).tipo
        for g in range(1, n + 1)]


# --------------------------------------------------------------------------------------------
# Realistic pools (Latin-1 characters only: every text must be encodable in ISO-8859-1)

BENEFICIARIOS = (
    "João da Conceição", "Antônia Araújo", "José Ribeiro Simões", "Maria Conceição Gonçalves",
    "Sebastião Nóbrega", "Luís Antônio Magalhães", "Inês Brandão Falcão", "Açucena Guimarães",
    "Joaquim Estêvão Peçanha", "Lúcia Helena Assunção",
)

# (name, conselho (dm_conselhoProfissional), CBO (dm_CBOS, present in 4.01-4.03))
MEDICOS = (
    ("Dra. Antônia Araújo Leão", "06", "225125"),  # médico clínico
    ("Dr. Sérgio Conceição Brandão", "06", "225120"),  # cardiologista
    ("Dra. Mônica Gonçalves Simões", "06", "225250"),  # ginecologista e obstetra
    ("Dr. João Batista Magalhães", "06", "225124"),  # pediatra
    ("Dr. André Luís Peçanha", "06", "225170"),  # clínico geral
)
CIRURGIOES = (
    ("Dr. Estêvão Guimarães Tavares", "06", "225225"),  # cirurgião geral
    ("Dra. Cecília Ramalho Assunção", "06", "225225"),
    ("Dr. Otávio Nóbrega Antunes", "06", "225270"),  # ortopedista
)
ANESTESISTAS = (
    ("Dr. Márcio Falcão Rebouças", "06", "225151"),
    ("Dra. Letícia Brandão Simões", "06", "225151"),
)
DENTISTAS = (
    ("Dra. Ângela Conceição Lima", "08", "223208"),  # cirurgião-dentista clínico geral
    ("Dr. Rogério Peçanha Araújo", "08", "223208"),
)
UFS = ("35", "33", "31", "41", "43", "53")  # SP RJ MG PR RS DF

CLINICAS = ("Clínica São Lucas Diagnósticos", "Centro Médico Santa Luzia", "Clínica Imaculada Conceição")
HOSPITAIS = (
    (cnpj_check_digits("456789120001"), "Hospital São José da Conceição", "2077485"),
    (cnpj_check_digits("603958350001"), "Hospital Santa Cecília", "2078015"),
)
CNES_PRESTADOR = "2079798"

OBSERVACOES = (
    "Beneficiário {nome}: avaliação clínica concluída, evolução sem intercorrências; "
    "orientação sobre medicação contínua e retorno após três semanas.",
    "Atendimento de {nome} em caráter eletivo; paciente refere melhora da dispneia e da "
    "hipertensão crônica. Não há reação adversa registrada.",
    "Paciente {nome} com histórico de alergia à dipirona; solicitação de exames de rotina para "
    "avaliação pré-operatória (coração, função renal).",
    "{nome}: cobrança conforme tabela negociada, sem acréscimo; autorização obtida por telefone "
    "com a central de regulação.",
)

OBSERVACOES_ODONTO = (
    "Beneficiário {nome}: tratamento concluído, orientação de higiene bucal e retorno em seis meses.",
    "{nome} relata sensibilidade ao frio; restauração refeita após avaliação clínica e radiográfica.",
    "Paciente {nome} em tratamento ortodôntico; exodontia indicada pelo ortodontista responsável.",
)

INDICACOES = (
    "Investigação de anemia e controle de diabetes mellitus tipo 2 (glicemia elevada).",
    "Avaliação pré-operatória: hipertensão arterial crônica, função renal e coração.",
    "Dor abdominal há três dias, náuseas; suspeita de colecistite. Solicitação de ultrassonografia.",
    "Check-up anual: paciente assintomático, história familiar de doença cardíaca e tireoide.",
)

CONSULTAS = (
    ("10101012", "Consulta em consultório (no horário normal ou preestabelecido)"),
)
VALORES_CONSULTA = (15000, 18000, 22000, 25000, 30000)  # cents

# (TUSS code, description, unit price in cents)
EXAMES = (
    ("40304361", "Hemograma com contagem de plaquetas ou frações (eritrograma, leucograma, plaquetas)",
     1250),
    ("40301630", "Glicose - pesquisa e/ou dosagem", 560),
    ("40302040", "Creatinina - pesquisa e/ou dosagem", 620),
    ("40302580", "Ureia - pesquisa e/ou dosagem", 590),
    ("40316521", "Tireoestimulante, hormônio (TSH) - pesquisa e/ou dosagem", 2790),
    ("40101010", "ECG convencional de até 12 derivações", 4500),
    ("40805026", "RX - Tórax - 2 incidências", 6200),
    ("40901122", "US - Abdome total (abdome superior, rins, bexiga, aorta, veia cava inferior e "
     "adrenais)", 18500),
)
CIRURGIAS = (
    ("31003079", "Apendicectomia", 85000, "K358"),
    ("31005497", "Colecistectomia sem colangiografia por videolaparoscopia", 120000, "K802"),
    ("30912016", "Herniorrafia inguinal - unilateral", 78000, "K409"),
)
VISITA_HOSPITALAR = ("10102019", "Visita hospitalar (paciente internado)", 9500)
PROCEDIMENTOS_ODONTO = (
    # (code, description, cents, needs tooth, face)
    ("81000065", "Consulta odontológica inicial", 9000, False, None),
    ("84000090", "Profilaxia: polimento coronário", 7000, False, None),
    ("85100099", "Restauração em resina fotopolimerizável 1 face", 12000, True, "O"),
    ("85100102", "Restauração em resina fotopolimerizável 2 faces", 16500, True, "MO"),
    ("82000174", "Exodontia simples de permanente", 14000, True, None),
    ("81000421", "Radiografia periapical", 3500, True, None),
)
DENTES = ("11", "14", "16", "21", "25", "26", "36", "37", "46", "47")

# Outras despesas: (codigoDespesa, tabela, code, description, unidadeMedida, unit cents, centroConsumo)
MATERIAIS = (
    ("03", "19", "70021512", "Seringa descartável 5 ml com agulha 25x7", "036", 180, "2"),
    ("03", "19", "70124826", "Cateter intravenoso periférico 22G", "036", 520, "2"),
    ("03", "19", "70302580", "Luva de procedimento não estéril (par)", "048", 95, "6"),
    ("03", "19", "70510094", "Fio de sutura nylon 3-0 com agulha", "036", 1430, "6"),
)
MEDICAMENTOS = (
    ("02", "20", "90153707", "Dipirona sódica 500 mg/ml solução injetável 2 ml", "001", 310, "2"),
    ("02", "20", "90005787", "Cloreto de sódio 0,9% solução injetável 500 ml", "004", 640, "2"),
    ("02", "20", "90287991", "Ceftriaxona 1 g pó para solução injetável", "014", 2890, "3"),
    ("02", "20", "90059720", "Omeprazol 40 mg pó liofilizado injetável", "014", 1870, "3"),
)
DIARIAS = (
    ("05", "18", "60000775", "Diária de apartamento standard", "036", 65000, "3"),
    ("05", "18", "60000732", "Diária de enfermaria com 2 leitos", "036", 42000, "2"),
)
TAXAS = (
    ("07", "18", "60023112", "Taxa de sala cirúrgica - porte anestésico 3", "036", 58000, "6"),
    ("07", "18", "60033045", "Taxa de uso de bisturi elétrico", "036", 9500, "6"),
)
GASES = (("01", "18", "60031015", "Oxigênio - por hora", "036", 1250, "5"),)
VALOR_TOTAL_FIELD = {"01": "valorGasesMedicinais", "02": "valorMedicamentos", "03": "valorMateriais",
                     "05": "valorDiarias", "07": "valorTaxasAlugueis", "08": "valorOPME"}

OPMES = (
    ("70755027", "Tela de polipropileno para hérnia 15x15 cm", "Cirúrgica Fernandes Ltda.", 98000),
    ("70612545", "Grampeador linear cortante 60 mm", "Médica São Paulo Comércio Ltda.", 215000),
)

# A tiny but well-formed PDF, for envioDocumento.
_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>"
        b"endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


# --------------------------------------------------------------------------------------------
# Formatting helpers


def money(cents: int) -> str:
    """Cents as a TISS decimal with 2 places."""
    return f"{cents // 100}.{cents % 100:02d}"


def _d(day: date) -> str:
    return day.isoformat()


def _t(moment: time) -> str:
    return moment.strftime("%H:%M:%S")


# Messages are built as a light tree of [tag, text, children] lists (an lxml SubElement costs
# ~2.5 us, a list ~0.3 us), rendered to text with the "ans" prefix, then parsed once by lxml so
# that gateway.message.hashing computes the hash on the very tree a receiver will parse.
Node = list  # [tag: str, text: str | None, children: list[Node]]


def _e(parent: Node, tag: str, text: str | None = None) -> Node:
    node = [tag, text, []]
    parent[2].append(node)
    return node


def _root(tag: str) -> Node:
    return [tag, None, []]


def _escape(text: str) -> str:
    if "&" in text or "<" in text or ">" in text:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def _render(node: Node, out: list[str]) -> None:
    tag, text, children = node
    if children:
        out.append(f"<ans:{tag}>")
        for child in children:
            _render(child, out)
        out.append(f"</ans:{tag}>")
    elif text:
        out.append(f"<ans:{tag}>{_escape(text)}</ans:{tag}>")
    else:
        out.append(f"<ans:{tag}/>")


def _norm_encoding(encoding: str) -> str:
    upper = encoding.upper().replace("_", "-")
    if upper in ("ISO-8859-1", "LATIN-1", "LATIN1"):
        return "ISO-8859-1"
    if upper in ("UTF-8", "UTF8"):
        return "UTF-8"
    raise ValueError(f"encoding must be one of {ENCODINGS}, not {encoding!r}")


def _check_version(version: str) -> None:
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, not {version!r}")


_HASH_SLOT = "<ans:hash/>"
_PARSER = etree.XMLParser(huge_tree=True)  # documents in base64 can exceed libxml2's 10 MB text limit


def _serialise(root: Node, encoding: str, hash_variant: str) -> bytes:
    """Render, parse with lxml, stamp the hash computed by gateway.message.hashing, encode."""
    out = [f'<ans:{root[0]} xmlns:ans="{ANS_NS}">']
    for child in root[2]:
        _render(child, out)
    out.append(f"</ans:{root[0]}>")
    text = "".join(out)
    parsed = etree.fromstring(text.encode("utf-8"), _PARSER)
    digest = hashing.compute(parsed, encoding, hash_variant)
    head, slot, tail = text.rpartition(_HASH_SLOT)
    assert slot, "message without a hash element"
    text = f'<?xml version="1.0" encoding="{encoding}"?>\n{head}<ans:hash>{digest}</ans:hash>{tail}'
    return text.encode(encoding, "xmlcharrefreplace")


# --------------------------------------------------------------------------------------------
# Shared pieces


@dataclass
class _Ctx:
    version: str
    party: Party
    when: datetime

    @property
    def v403(self) -> bool:
        return self.version >= "4.03.00"


def _cabecalho(parent: Node, ctx: _Ctx, tipo: str, sequencial: str) -> None:
    cab = _e(parent, "cabecalho")
    ident = _e(cab, "identificacaoTransacao")
    _e(ident, "tipoTransacao", tipo)
    _e(ident, "sequencialTransacao", sequencial)
    _e(ident, "dataRegistroTransacao", _d(ctx.when.date()))
    _e(ident, "horaRegistroTransacao", _t(ctx.when.time()))
    origem = _e(_e(cab, "origem"), "identificacaoPrestador")
    if ctx.party.codigo_na_operadora:
        _e(origem, "codigoPrestadorNaOperadora", ctx.party.codigo_na_operadora)
    else:
        _e(origem, "CNPJ", ctx.party.cnpj)
    _e(_e(cab, "destino"), "registroANS", ctx.party.registro_ans)
    _e(cab, "Padrao", ctx.version)
    if ctx.party.login is not None:
        login = _e(cab, "loginSenhaPrestador")
        _e(login, "loginPrestador", ctx.party.login)
        _e(login, "senhaPrestador", ctx.party.senha_md5)


def _contratado(parent: Node, tag: str, party: Party) -> Node:
    """ct_contratadoDados: the provider, by its code at the operator or its CNPJ."""
    element = _e(parent, tag)
    if party.codigo_na_operadora:
        _e(element, "codigoPrestadorNaOperadora", party.codigo_na_operadora)
    else:
        _e(element, "cnpjContratado", party.cnpj)
    return element


def _beneficiario(parent: Node, tag: str, carteira: str, rn: bool = False) -> None:
    element = _e(parent, tag)
    _e(element, "numeroCarteira", carteira)
    _e(element, "atendimentoRN", "S" if rn else "N")


def _profissional(parent: Node, tag: str, prof: tuple[str, str, str], numero: str,
                  uf: str) -> None:
    """ct_contratadoProfissionalDados."""
    element = _e(parent, tag)
    _e(element, "nomeProfissional", prof[0])
    _e(element, "conselhoProfissional", prof[1])
    _e(element, "numeroConselhoProfissional", numero)
    _e(element, "UF", uf)
    _e(element, "CBOS", prof[2])


def _procedimento(parent: Node, tag: str, tabela: str, codigo: str, descricao: str) -> None:
    """ct_procedimentoDados."""
    element = _e(parent, tag)
    _e(element, "codigoTabela", tabela)
    _e(element, "codigoProcedimento", codigo)
    _e(element, "descricaoProcedimento", descricao)


def _outras_despesas(despesas: Node, ctx: _Ctx, rng: random.Random, pool: tuple, count: int,
                     day: date, totals: dict[str, int]) -> None:
    """Adds ``count`` ct_outrasDespesas/despesa items drawn from ``pool``; sums into ``totals``."""
    start_seq = len(despesas[2]) + 1
    for k, item in enumerate(rng.sample(pool, min(count, len(pool)))):
        codigo_despesa, tabela, codigo, descricao, unidade, unit, centro = item
        quantidade = rng.randint(1, 4) if codigo_despesa != "05" else rng.randint(1, 3)
        total = unit * quantidade
        despesa = _e(despesas, "despesa")
        _e(despesa, "sequencialItem", str(start_seq + k))
        _e(despesa, "codigoDespesa", codigo_despesa)
        serv = _e(despesa, "servicosExecutados")
        _e(serv, "dataExecucao", _d(day))
        _e(serv, "codigoTabela", tabela)
        _e(serv, "codigoProcedimento", codigo)
        _e(serv, "quantidadeExecutada", f"{quantidade}.0000")
        _e(serv, "unidadeMedida", unidade)
        _e(serv, "reducaoAcrescimo", "1.00")
        _e(serv, "valorUnitario", money(unit))
        _e(serv, "valorTotal", money(total))
        if ctx.v403:
            _e(serv, "centroConsumo", centro)
        _e(serv, "descricaoProcedimento", descricao)
        field = VALOR_TOTAL_FIELD[codigo_despesa]
        totals[field] = totals.get(field, 0) + total


_VALOR_TOTAL_ORDER = ("valorProcedimentos", "valorDiarias", "valorTaxasAlugueis", "valorMateriais",
                      "valorMedicamentos", "valorOPME", "valorGasesMedicinais")


def _valor_total(parent: Node, totals: dict[str, int]) -> None:
    """ct_guiaValorTotal: the category sums present, then valorTotalGeral = their sum."""
    element = _e(parent, "valorTotal")
    for field in _VALOR_TOTAL_ORDER:
        if field in totals:
            _e(element, field, money(totals[field]))
    _e(element, "valorTotalGeral", money(sum(totals.values())))


# --------------------------------------------------------------------------------------------
# Guides. Each takes the guiasTISS element, the context, a per-guide rng and the guide number.


def _guide_dates(ctx: _Ctx, rng: random.Random, span: int = 0) -> date:
    """A first service day 3 to 40 days before the transaction, leaving ``span`` days after it."""
    return ctx.when.date() - timedelta(days=span + rng.randint(3, 40))


def _guia_consulta(guias: Node, ctx: _Ctx, rng: random.Random, numero: str) -> None:
    party = ctx.party
    guia = _e(guias, "guiaConsulta")
    cab = _e(guia, "cabecalhoConsulta")
    _e(cab, "registroANS", party.registro_ans)
    _e(cab, "numeroGuiaPrestador", numero)
    if rng.random() < 0.5:
        _e(guia, "numeroGuiaOperadora", f"{rng.randrange(10**8, 10**9)}")
    nome = rng.choice(BENEFICIARIOS)
    _beneficiario(guia, "dadosBeneficiario", numero_carteira(party.registro_ans, rng))
    executante = _contratado(guia, "contratadoExecutante", party)
    _e(executante, "CNES", CNES_PRESTADOR)
    _profissional(guia, "profissionalExecutante", rng.choice(MEDICOS), f"{rng.randint(10000, 199999)}",
                  rng.choice(UFS))
    _e(guia, "indicacaoAcidente", "9")
    atendimento = _e(guia, "dadosAtendimento")
    _e(atendimento, "regimeAtendimento", "01")
    _e(atendimento, "dataAtendimento", _d(_guide_dates(ctx, rng)))
    _e(atendimento, "tipoConsulta", rng.choice("12"))
    proc = _e(atendimento, "procedimento")
    codigo, _descricao = CONSULTAS[0]
    _e(proc, "codigoTabela", "22")
    _e(proc, "codigoProcedimento", codigo)
    _e(proc, "valorProcedimento", money(rng.choice(VALORES_CONSULTA)))
    _e(guia, "observacao", rng.choice(OBSERVACOES).format(nome=nome))


def _guia_sadt(guias: Node, ctx: _Ctx, rng: random.Random, numero: str) -> None:
    party = ctx.party
    guia = _e(guias, "guiaSP-SADT")
    cab = _e(guia, "cabecalhoGuia")
    _e(cab, "registroANS", party.registro_ans)
    _e(cab, "numeroGuiaPrestador", numero)
    execucao = _guide_dates(ctx, rng)
    solicitacao = execucao - timedelta(days=rng.randint(1, 10))
    autorizacao = _e(guia, "dadosAutorizacao")
    _e(autorizacao, "numeroGuiaOperadora", f"{rng.randrange(10**8, 10**9)}")
    _e(autorizacao, "dataAutorizacao", _d(solicitacao))
    _e(autorizacao, "senha", f"{rng.randrange(10**7, 10**8)}")
    _e(autorizacao, "dataValidadeSenha", _d(solicitacao + timedelta(days=30)))
    nome = rng.choice(BENEFICIARIOS)
    _beneficiario(guia, "dadosBeneficiario", numero_carteira(party.registro_ans, rng))
    solicitante = _e(guia, "dadosSolicitante")
    _contratado(solicitante, "contratadoSolicitante", party)
    _e(solicitante, "nomeContratadoSolicitante", rng.choice(CLINICAS))
    uf = rng.choice(UFS)
    _profissional(solicitante, "profissionalSolicitante", rng.choice(MEDICOS),
                  f"{rng.randint(10000, 199999)}", uf)
    dados_solicitacao = _e(guia, "dadosSolicitacao")
    _e(dados_solicitacao, "dataSolicitacao", _d(solicitacao))
    _e(dados_solicitacao, "caraterAtendimento", "1")
    _e(dados_solicitacao, "indicacaoClinica", rng.choice(INDICACOES))
    executante = _e(guia, "dadosExecutante")
    _contratado(executante, "contratadoExecutante", party)
    _e(executante, "CNES", CNES_PRESTADOR)
    atendimento = _e(guia, "dadosAtendimento")
    _e(atendimento, "tipoAtendimento", "23")  # Exame (05 is no longer in dm_tipoAtendimento)
    _e(atendimento, "indicacaoAcidente", "9")
    _e(atendimento, "regimeAtendimento", "01")
    procedimentos = _e(guia, "procedimentosExecutados")
    total_proc = 0
    for seq, (codigo, descricao, unit) in enumerate(rng.sample(EXAMES, rng.randint(1, 4)), 1):
        quantidade = 1
        proc = _e(procedimentos, "procedimentoExecutado")
        _e(proc, "sequencialItem", str(seq))
        _e(proc, "dataExecucao", _d(execucao))
        _e(proc, "horaInicial", f"{8 + seq:02d}:00:00")
        _e(proc, "horaFinal", f"{8 + seq:02d}:20:00")
        _procedimento(proc, "procedimento", "22", codigo, descricao)
        _e(proc, "quantidadeExecutada", str(quantidade))
        _e(proc, "reducaoAcrescimo", "1.00")
        _e(proc, "valorUnitario", money(unit))
        _e(proc, "valorTotal", money(unit * quantidade))
        total_proc += unit * quantidade
        if seq == 1:
            equipe = _e(proc, "equipeSadt")
            _e(equipe, "grauPart", "12")
            _e(_e(equipe, "codProfissional"), "cpfContratado",
               cpf_with_check_digits(f"{rng.randrange(10**8, 10**9)}"))
            prof = rng.choice(MEDICOS)
            _e(equipe, "nomeProf", prof[0])
            _e(equipe, "conselho", prof[1])
            _e(equipe, "numeroConselhoProfissional", f"{rng.randint(10000, 199999)}")
            _e(equipe, "UF", uf)
            _e(equipe, "CBOS", prof[2])
    totals = {"valorProcedimentos": total_proc}
    if rng.random() < 0.5:
        _outras_despesas(_e(guia, "outrasDespesas"), ctx, rng, MATERIAIS, rng.randint(1, 2), execucao,
                         totals)
    _e(guia, "observacao", rng.choice(OBSERVACOES).format(nome=nome))
    _valor_total(guia, totals)


def _guia_odonto(guias: Node, ctx: _Ctx, rng: random.Random, numero: str) -> None:
    party = ctx.party
    guia = _e(guias, "guiaOdonto")
    _e(guia, "registroANS", party.registro_ans)
    _e(guia, "numeroGuiaPrestador", numero)
    inicio = _guide_dates(ctx, rng, span=21)
    _e(guia, "dataAutorizacao", _d(inicio - timedelta(days=2)))
    _e(guia, "senhaAutorizacao", f"{rng.randrange(10**7, 10**8)}")
    _e(guia, "validadeSenha", _d(inicio + timedelta(days=60)))
    nome = rng.choice(BENEFICIARIOS)
    _beneficiario(guia, "dadosBeneficiario", numero_carteira(party.registro_ans, rng))
    _e(guia, "planoBeneficiario", rng.choice(("Odonto Essencial Família", "Plano Odontológico Pró")))
    _e(guia, "nomeEmpresa", "Associação dos Servidores Públicos")
    prof = _e(guia, "dadosProfissionaisResponsaveis")
    dentista = rng.choice(DENTISTAS)
    uf = rng.choice(UFS)
    cro = f"{rng.randint(10000, 99999)}"
    _e(prof, "nomeProfSolic", dentista[0])
    _e(prof, "croSolic", cro)
    _e(prof, "ufSolic", uf)
    _e(prof, "cbosSolic", dentista[2])
    _e(prof, "codigoProfExec", party.codigo_prestador)
    _e(prof, "croExec", cro)
    _e(prof, "ufExec", uf)
    _e(prof, "cnesExec", CNES_PRESTADOR)
    _e(prof, "cbosExec2", dentista[2])
    total = 0
    last = inicio
    for seq, (codigo, descricao, unit, dente, face) in enumerate(
            rng.sample(PROCEDIMENTOS_ODONTO, rng.randint(1, 4)), 1):
        day = inicio + timedelta(days=(seq - 1) * 7)
        last = max(last, day)
        item = _e(guia, "procedimentosExecutados")
        _e(item, "sequencialItem", str(seq))
        _procedimento(item, "procSolic", "22", codigo, descricao)
        if dente:
            _e(_e(item, "denteRegiao"), "codDente", rng.choice(DENTES))
        if face:
            _e(item, "denteFace", face)
        _e(item, "qtdProc", "1")
        _e(item, "qtdUS", money(unit // 10))
        _e(item, "valorProc", money(unit))
        _e(item, "autorizado", "true")
        _e(item, "dataRealizacao", _d(day))
        total += unit
    _e(guia, "dataTerminoTrat", _d(last))
    _e(guia, "tipoAtendimento", "1")
    _e(guia, "tipoFaturamento", "4")
    _e(guia, "valorTotalProc", money(total))
    _e(guia, "observacao", rng.choice(OBSERVACOES_ODONTO).format(nome=nome))


def _equipe_cirurgica(rng: random.Random) -> list[tuple[str, tuple[str, str, str]]]:
    return [("00", rng.choice(CIRURGIOES)), ("01", rng.choice(CIRURGIOES)), ("06", rng.choice(ANESTESISTAS))]


def _guia_honorarios(guias: Node, ctx: _Ctx, rng: random.Random, numero: str) -> None:
    party = ctx.party
    guia = _e(guias, "guiaHonorarios")
    cab = _e(guia, "cabecalhoGuia")
    _e(cab, "registroANS", party.registro_ans)
    _e(cab, "numeroGuiaPrestador", numero)
    _e(guia, "guiaSolicInternacao", f"{rng.randrange(10**8, 10**9)}")
    _e(guia, "senha", f"{rng.randrange(10**7, 10**8)}")
    nome = rng.choice(BENEFICIARIOS)
    beneficiario = _e(guia, "beneficiario")
    _e(beneficiario, "numeroCarteira", numero_carteira(party.registro_ans, rng))
    _e(beneficiario, "atendimentoRN", "N")
    hospital_cnpj, hospital_nome, hospital_cnes = rng.choice(HOSPITAIS)
    local = _e(guia, "localContratado")
    _e(_e(local, "codigoContratado"), "cnpjLocalExecutante", hospital_cnpj)
    _e(local, "nomeContratado", hospital_nome)
    _e(local, "cnes", hospital_cnes)
    executante = _e(guia, "dadosContratadoExecutante")
    _e(executante, "codigonaOperadora", party.codigo_prestador)
    _e(executante, "cnesContratadoExecutante", CNES_PRESTADOR)
    inicio = _guide_dates(ctx, rng, span=4)
    fim = inicio + timedelta(days=rng.randint(1, 4))
    internacao = _e(guia, "dadosInternacao")
    _e(internacao, "dataInicioFaturamento", _d(inicio))
    _e(internacao, "dataFimFaturamento", _d(fim))
    if ctx.v403:  # required from 4.03.00 on, absent before
        _e(internacao, "caraterAtendimento", rng.choice("12"))
    realizados = _e(guia, "procedimentosRealizados")
    codigo, descricao, unit, _cid = rng.choice(CIRURGIAS)
    items = [(codigo, descricao, unit, inicio, _equipe_cirurgica(rng))]
    visitas = rng.randint(0, 2)
    for k in range(visitas):
        items.append((*VISITA_HOSPITALAR, inicio + timedelta(days=k + 1), [("12", rng.choice(MEDICOS))]))
    total = 0
    uf = rng.choice(UFS)
    for seq, (codigo, descricao, unit, day, equipe) in enumerate(items, 1):
        proc = _item_cirurgico(realizados, "procedimentoRealizado", seq, codigo, descricao, unit, day)
        total += unit
        for grau, prof in equipe:
            profissional = _e(proc, "profissionais")
            _e(profissional, "grauParticipacao", grau)
            _e(_e(profissional, "codProfissional"), "cpfContratado",
               cpf_with_check_digits(f"{rng.randrange(10**8, 10**9)}"))
            _e(profissional, "nomeProfissional", prof[0])
            _e(profissional, "conselhoProfissional", prof[1])
            _e(profissional, "numeroConselhoProfissional", f"{rng.randint(10000, 199999)}")
            _e(profissional, "UF", uf)
            _e(profissional, "CBO", prof[2])
    _e(guia, "observacao", rng.choice(OBSERVACOES).format(nome=nome))
    _e(guia, "valorTotalHonorarios", money(total))
    _e(guia, "dataEmissaoGuia", _d(fim))


def _item_cirurgico(parent: Node, tag: str, seq: int, codigo: str, descricao: str, unit: int,
                    day: date) -> Node:
    """A surgical/visit item, shared by honorários and resumo de internação (same leading fields)."""
    proc = _e(parent, tag)
    _e(proc, "sequencialItem", str(seq))
    _e(proc, "dataExecucao", _d(day))
    _e(proc, "horaInicial", "07:30:00")
    _e(proc, "horaFinal", "09:10:00")
    _procedimento(proc, "procedimento", "22", codigo, descricao)
    _e(proc, "quantidadeExecutada", "1")
    _e(proc, "viaAcesso", "1")
    _e(proc, "tecnicaUtilizada", "1")
    _e(proc, "reducaoAcrescimo", "1.00")
    _e(proc, "valorUnitario", money(unit))
    _e(proc, "valorTotal", money(unit))
    return proc


def _guia_resumo(guias: Node, ctx: _Ctx, rng: random.Random, numero: str) -> None:
    party = ctx.party
    guia = _e(guias, "guiaResumoInternacao")
    cab = _e(guia, "cabecalhoGuia")
    _e(cab, "registroANS", party.registro_ans)
    _e(cab, "numeroGuiaPrestador", numero)
    _e(guia, "numeroGuiaSolicitacaoInternacao", f"{rng.randrange(10**8, 10**9)}")
    inicio = _guide_dates(ctx, rng, span=4)
    dias = rng.randint(1, 4)
    fim = inicio + timedelta(days=dias)
    autorizacao = _e(guia, "dadosAutorizacao")
    _e(autorizacao, "numeroGuiaOperadora", f"{rng.randrange(10**8, 10**9)}")
    _e(autorizacao, "dataAutorizacao", _d(inicio - timedelta(days=1)))
    _e(autorizacao, "senha", f"{rng.randrange(10**7, 10**8)}")
    _e(autorizacao, "dataValidadeSenha", _d(inicio + timedelta(days=30)))
    nome = rng.choice(BENEFICIARIOS)
    _beneficiario(guia, "dadosBeneficiario", numero_carteira(party.registro_ans, rng))
    executante = _e(guia, "dadosExecutante")
    _contratado(executante, "contratadoExecutante", party)
    _e(executante, "CNES", CNES_PRESTADOR)
    internacao = _e(guia, "dadosInternacao")
    _e(internacao, "caraterAtendimento", rng.choice("12"))
    _e(internacao, "tipoFaturamento", "4")
    _e(internacao, "dataInicioFaturamento", _d(inicio))
    _e(internacao, "horaInicioFaturamento", "06:40:00")
    _e(internacao, "dataFinalFaturamento", _d(fim))
    _e(internacao, "horaFinalFaturamento", "11:00:00")
    _e(internacao, "tipoInternacao", "2")
    _e(internacao, "regimeInternacao", "1")
    codigo, descricao, unit, cid = rng.choice(CIRURGIAS)
    saida = _e(guia, "dadosSaidaInternacao")
    _e(saida, "diagnostico", cid)
    _e(saida, "indicadorAcidente", "9")
    _e(saida, "motivoEncerramento", rng.choice(("11", "12")))
    executados = _e(guia, "procedimentosExecutados")
    items = [(codigo, descricao, unit, inicio, "6", _equipe_cirurgica(rng))]
    for k in range(rng.randint(0, min(2, dias))):
        items.append((*VISITA_HOSPITALAR, inicio + timedelta(days=k + 1), "3", [("12", rng.choice(MEDICOS))]))
    total_proc = 0
    uf = rng.choice(UFS)
    for seq, (codigo, descricao, unit, day, centro, equipe) in enumerate(items, 1):
        proc = _item_cirurgico(executados, "procedimentoExecutado", seq, codigo, descricao, unit, day)
        if ctx.v403:
            _e(proc, "centroConsumo", centro)
        total_proc += unit
        for grau, prof in equipe:
            ident = _e(_e(proc, "identEquipe"), "identificacaoEquipe")
            _e(ident, "grauPart", grau)
            _e(_e(ident, "codProfissional"), "cpfContratado",
               cpf_with_check_digits(f"{rng.randrange(10**8, 10**9)}"))
            _e(ident, "nomeProf", prof[0])
            _e(ident, "conselho", prof[1])
            _e(ident, "numeroConselhoProfissional", f"{rng.randint(10000, 199999)}")
            _e(ident, "UF", uf)
            _e(ident, "CBOS", prof[2])
    totals = {"valorProcedimentos": total_proc}
    # outrasDespesas follows valorTotal in the XSD sequence but feeds it: build it detached first.
    despesas = ["outrasDespesas", None, []]
    for pool, count in ((DIARIAS, 1), (TAXAS, rng.randint(1, 2)), (MATERIAIS, rng.randint(1, 3)),
                        (MEDICAMENTOS, rng.randint(1, 3)), (GASES, rng.randint(0, 1))):
        _outras_despesas(despesas, ctx, rng, pool, count, inicio, totals)
    _valor_total(guia, totals)
    guia[2].append(despesas)
    _e(guia, "observacao", rng.choice(OBSERVACOES).format(nome=nome))


_GUIDE_BUILDERS = {
    "consulta": _guia_consulta,
    "sp-sadt": _guia_sadt,
    "odonto": _guia_odonto,
    "honorarios": _guia_honorarios,
    "resumo-internacao": _guia_resumo,
}


def _lote_guias(parent: Node, tag: str, ctx: _Ctx, guide_type: str, n: int, numero_lote: str,
                seed: int, first_guide: int) -> None:
    if guide_type not in _GUIDE_BUILDERS:
        raise ValueError(f"guide_type must be one of {GUIDE_TYPES}, not {guide_type!r}")
    if n < 0:
        raise ValueError("n must be >= 0")
    lote = _e(parent, tag)
    _e(lote, "numeroLote", numero_lote)
    guias = _e(lote, "guiasTISS")
    build = _GUIDE_BUILDERS[guide_type]
    for index in range(first_guide, first_guide + n):
        rng = random.Random(f"{seed}:{guide_type}:{index}")
        build(guias, ctx, rng, numero_guia_prestador(numero_lote, index))


def _context(version: str, party: Party | None, when: datetime | None) -> _Ctx:
    _check_version(version)
    return _Ctx(version, party or Party(), when or DEFAULT_WHEN[version])


# --------------------------------------------------------------------------------------------
# Public API


def build_lote(guide_type: str, n: int, *, version: str = "4.03.00", encoding: str = "ISO-8859-1",
               envelope: bool = False, numero_lote: str = "1", sequencial: str = "1",
               party: Party | None = None, seed: int = 0, when: datetime | None = None,
               first_guide: int = 1, hash_variant: str = hashing.DECLARED) -> bytes:
    """A ``loteGuiasWS`` with ``n`` guides of ``guide_type``, hash stamped.

    Guide ``i`` (1-based, counting from ``first_guide``) has numeroGuiaPrestador
    ``numero_guia_prestador(numero_lote, i)`` and content that depends only on
    (seed, guide_type, i, version, party, when): a lote of 7 starts with the guide of a lote of 1.
    ``n`` above 100 builds (the schema rejects it). ``when`` is the transaction moment (guide
    dates precede it); ``hash_variant`` stamps another hashing variant (negative tests).
    """
    encoding = _norm_encoding(encoding)
    ctx = _context(version, party, when)
    root = _root("loteGuiasWS")
    _cabecalho(root, ctx, TIPO_TRANSACAO["loteGuiasWS"], sequencial)
    _lote_guias(root, "loteGuias", ctx, guide_type, n, numero_lote, seed, first_guide)
    _e(root, "hash")
    data = _serialise(root, encoding, hash_variant)
    return _soap_envelope(data) if envelope else data


def build_mensagem_tiss(guide_type: str, n: int, *, version: str = "4.03.00", encoding: str = "ISO-8859-1",
                        numero_lote: str = "1", sequencial: str = "1", party: Party | None = None,
                        seed: int = 0, when: datetime | None = None, first_guide: int = 1,
                        hash_variant: str = hashing.DECLARED) -> bytes:
    """The file/batch form: mensagemTISS / prestadorParaOperadora / loteGuias, epilogo/hash."""
    encoding = _norm_encoding(encoding)
    ctx = _context(version, party, when)
    root = _root("mensagemTISS")
    _cabecalho(root, ctx, TIPO_TRANSACAO["loteGuiasWS"], sequencial)
    body = _e(root, "prestadorParaOperadora")
    _lote_guias(body, "loteGuias", ctx, guide_type, n, numero_lote, seed, first_guide)
    _e(_e(root, "epilogo"), "hash")
    return _serialise(root, encoding, hash_variant)


_REQUEST_FIELDS = frozenset({
    "numero_protocolo", "numero_lote", "numero_carteira", "numero_guia_prestador",
    "numero_guia_operadora", "cancelamento", "tipo_guia", "demonstrativo", "competencia",
    "tipo_evento", "documento", "numero_documento", "seed", "guide_type", "n", "first_guide",
})


def build_request(kind: str, *, version: str = "4.03.00", encoding: str = "ISO-8859-1",
                  envelope: bool = False, sequencial: str = "1", party: Party | None = None,
                  when: datetime | None = None, hash_variant: str = hashing.DECLARED,
                  **fields) -> bytes:
    """Any of the 12 request kinds (``REQUEST_KINDS``), hash stamped.

    Fields (all optional):
      numero_protocolo  "123456789" (status, demonstrativo de análise, recurso, cancelamento, envio
                        de documento; digits only for recurso: st_numerico12 there)
      numero_lote       "1"
      numero_carteira   a card number derived from the operator's registro ANS
      numero_guia_prestador  guide 1 of lote ``numero_lote`` (what build_lote numbers it)
      numero_guia_operadora  None (omitted), else emitted where the schema has it
      cancelamento      "guia" | "lote"            (cancelaGuiaWS)
      tipo_guia         "2" faturamento            (cancelaGuiaWS, envioDocumentoWS: dm_tipoGuia)
      demonstrativo     "analise" | "pagamento"    (solicitacaoDemonstrativoRetornoWS)
      competencia       "YYYYMM" of the previous month (demonstrativo de pagamento)
      tipo_evento       "I" internação | "A" alta  (comunicacaoBeneficiarioWS)
      documento         bytes of the document, a small PDF by default (envioDocumentoWS)
      numero_documento  "DOC" + numero_guia_prestador (envioDocumentoWS)
      seed              0, varies names and values
      guide_type, n, first_guide: for loteGuiasWS ("sp-sadt", 1, 1)
    """
    unknown = set(fields) - _REQUEST_FIELDS
    if unknown:
        raise TypeError(f"unknown request fields: {sorted(unknown)}")
    if kind not in TIPO_TRANSACAO:
        raise ValueError(f"kind must be one of {REQUEST_KINDS}, not {kind!r}")
    if kind == "loteGuiasWS":
        return build_lote(fields.get("guide_type", "sp-sadt"), fields.get("n", 1), version=version,
                          encoding=encoding, envelope=envelope, numero_lote=fields.get("numero_lote", "1"),
                          sequencial=sequencial, party=party, seed=fields.get("seed", 0), when=when,
                          first_guide=fields.get("first_guide", 1), hash_variant=hash_variant)
    encoding = _norm_encoding(encoding)
    ctx = _context(version, party, when)
    seed = fields.get("seed", 0)
    rng = random.Random(f"{seed}:{kind}")
    numero_lote = fields.get("numero_lote", "1")
    values = {
        "numero_protocolo": fields.get("numero_protocolo", "123456789"),
        "numero_lote": numero_lote,
        "numero_carteira": fields.get("numero_carteira") or numero_carteira(ctx.party.registro_ans, rng),
        "numero_guia_prestador": fields.get("numero_guia_prestador", numero_guia_prestador(numero_lote, 1)),
        "numero_guia_operadora": fields.get("numero_guia_operadora"),
    }
    root = _root(kind)
    _cabecalho(root, ctx, TIPO_TRANSACAO[kind], sequencial)
    body = _e(root, BODY_ELEMENT[kind])
    _REQUEST_BODIES[kind](body, ctx, rng, values, fields)
    _e(root, "hash")
    data = _serialise(root, encoding, hash_variant)
    return _soap_envelope(data) if envelope else data


_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>\s*")
_FIRST_TAG = re.compile(rb"<(?:[\w.-]+:)?([\w.-]+)[\s/>]")


def envelope(body: bytes) -> bytes:
    """Wrap a bare ``*WS`` document in a SOAP 1.1 Envelope/Body, keeping its declaration and bytes.

    The wrapper is ASCII, so it is valid in the body's encoding (ISO-8859-1 or UTF-8); the *WS
    element and its hash are left byte for byte as they were.
    """
    return _soap_envelope(body)


def _soap_envelope(body: bytes) -> bytes:
    match = _DECLARATION.match(body)
    declaration, rest = (match.group(0).rstrip(), body[match.end():]) if match else (b"", body)
    first = _FIRST_TAG.search(rest)
    if first is None or not first.group(1).endswith(b"WS"):
        raise ValueError("envelope() wraps a bare *WS document")
    head = (f'<soapenv:Envelope xmlns:soapenv="{SOAP11_NS}"><soapenv:Header/><soapenv:Body>'
            .encode("ascii"))
    tail = b"</soapenv:Body></soapenv:Envelope>"
    return (declaration + b"\n" if declaration else b"") + head + rest.rstrip() + tail


# --------------------------------------------------------------------------------------------
# Request bodies: (body element, ctx, rng, common values, raw fields)


def _req_status_protocolo(body, ctx, rng, values, fields) -> None:
    _contratado(body, "dadosPrestador", ctx.party)
    _e(body, "numeroProtocolo", values["numero_protocolo"])


def _req_demonstrativo(body, ctx, rng, values, fields) -> None:
    kind = fields.get("demonstrativo", "analise")
    today = ctx.when.date()
    if kind == "analise":
        analise = _e(body, "demonstrativoAnalise")
        _contratado(analise, "dadosPrestador", ctx.party)
        _e(analise, "dataSolicitacao", _d(today))
        _e(_e(analise, "protocolos"), "numeroProtocolo", values["numero_protocolo"])
    elif kind == "pagamento":
        pagamento = _e(body, "demonstrativoPagamento")
        _contratado(pagamento, "dadosPrestador", ctx.party)
        _e(pagamento, "dataSolicitacao", _d(today))
        _e(pagamento, "tipoDemonstrativo", "1")
        previous = today.replace(day=1) - timedelta(days=1)
        _e(_e(pagamento, "periodo"), "competencia", fields.get("competencia", previous.strftime("%Y%m")))
    else:
        raise ValueError("demonstrativo must be 'analise' or 'pagamento'")


def _req_elegibilidade(body, ctx, rng, values, fields) -> None:
    _contratado(body, "dadosPrestador", ctx.party)
    _e(body, "numeroCarteira", values["numero_carteira"])
    _e(body, "validadeCarteira", _d(date(ctx.when.year + 1, 12, 31)))


def _req_solicitacao_procedimento(body, ctx, rng, values, fields) -> None:
    party = ctx.party
    guia = _e(body, "solicitacaoSP-SADT")
    cab = _e(guia, "cabecalhoSolicitacao")
    _e(cab, "registroANS", party.registro_ans)
    _e(cab, "numeroGuiaPrestador", values["numero_guia_prestador"])
    _e(guia, "tipoEtapaAutorizacao", "1")
    _beneficiario(guia, "dadosBeneficiario", values["numero_carteira"])
    solicitante = _e(guia, "dadosSolicitante")
    _contratado(solicitante, "contratadoSolicitante", party)
    _e(solicitante, "nomeContratadoSolicitante", rng.choice(CLINICAS))
    _profissional(solicitante, "profissionalSolicitante", rng.choice(MEDICOS),
                  f"{rng.randint(10000, 199999)}", rng.choice(UFS))
    _e(guia, "caraterAtendimento", "1")
    _e(guia, "dataSolicitacao", _d(ctx.when.date()))
    _e(guia, "indicacaoClinica", rng.choice(INDICACOES))
    for codigo, descricao, _unit in rng.sample(EXAMES, rng.randint(1, 3)):
        solicitado = _e(guia, "procedimentosSolicitados")
        _procedimento(solicitado, "procedimento", "22", codigo, descricao)
        _e(solicitado, "quantidadeSolicitada", "1")
    executante = _e(guia, "dadosExecutante")
    _e(executante, "codigonaOperadora", party.codigo_prestador)
    _e(executante, "CNES", CNES_PRESTADOR)
    _e(guia, "observacao", rng.choice(OBSERVACOES).format(nome=rng.choice(BENEFICIARIOS)))


def _req_status_autorizacao(body, ctx, rng, values, fields) -> None:
    ident = _e(body, "identificacaoSolicitacao")
    _e(ident, "registroANS", ctx.party.registro_ans)
    _e(ident, "numeroGuiaPrestador", values["numero_guia_prestador"])
    _beneficiario(body, "dadosBeneficiario", values["numero_carteira"])
    _contratado(body, "dadosContratado", ctx.party)


def _req_cancela_guia(body, ctx, rng, values, fields) -> None:
    _contratado(body, "dadosPrestador", ctx.party)
    tipo = _e(body, "tipoCancelamento")
    how = fields.get("cancelamento", "guia")
    if how == "guia":
        guia = _e(tipo, "tipoCancelamentoGuia")
        _e(guia, "tipoGuia", fields.get("tipo_guia", "2"))
        _e(guia, "numeroGuiaPrestador", values["numero_guia_prestador"])
        if values["numero_guia_operadora"]:
            _e(guia, "numeroGuiaOperadora", values["numero_guia_operadora"])
        if "numero_protocolo" in fields:
            _e(guia, "numeroProtocolo", values["numero_protocolo"])
    elif how == "lote":
        lote = _e(tipo, "tipoCancelamentoLote")
        _e(lote, "numeroLote", values["numero_lote"])
        if "numero_protocolo" in fields:
            _e(lote, "numeroProtocolo", values["numero_protocolo"])
    else:
        raise ValueError("cancelamento must be 'guia' or 'lote'")


def _req_lote_anexo(body, ctx, rng, values, fields) -> None:
    party = ctx.party
    _e(body, "numeroLote", values["numero_lote"])
    anexo = _e(_e(body, "AnexosGuiasTISS"), "anexoSolicitacaoOPME")
    cab = _e(anexo, "cabecalhoAnexo")
    _e(cab, "registroANS", party.registro_ans)
    _e(cab, "numeroGuiaAnexo", f"A{values['numero_guia_prestador']}")
    _e(cab, "numeroGuiaReferenciada", values["numero_guia_prestador"])
    if values["numero_guia_operadora"]:
        _e(cab, "numeroGuiaOperadora", values["numero_guia_operadora"])
    _e(cab, "dataSolicitacao", _d(ctx.when.date()))
    _beneficiario(anexo, "dadosBeneficiario", values["numero_carteira"])
    solicitante = _e(anexo, "profissionalSolicitante")
    _e(solicitante, "nomeProfissional", rng.choice(CIRURGIOES)[0])
    _e(solicitante, "telefoneProfissional", f"11{rng.randrange(10**8, 10**9)}")
    _e(solicitante, "emailProfissional", "cirurgia@clinicasaolucas.com.br")
    _e(anexo, "justificativaTecnica",
       "Hérnia inguinal recidivada com falha da aponeurose; indicação de reparo com tela para "
       "reduzir o risco de nova recidiva. Paciente sem contraindicação anestésica.")
    solicitadas = _e(anexo, "opmeSolicitadas")
    for codigo, descricao, fabricante, cents in OPMES:
        opme = _e(solicitadas, "opmeSolicitada")
        _procedimento(opme, "identificacaoOPME", "19", codigo, descricao)
        _e(opme, "opcaoFabricante", "1")
        _e(opme, "quantidadeSolicitada", "1")
        _e(opme, "valorSolicitado", money(cents))
        _e(opme, "registroANVISA", f"{rng.randrange(10**10, 10**11)}")
        _e(opme, "codigoRefFabricante", f"REF-{codigo[-4:]}")
        _e(opme, "autorizacaoFuncionamento", fabricante[:30])
    _e(anexo, "Observacao", "Solicitação urgente: cirurgia agendada para a próxima semana.")


def _req_recurso_glosa(body, ctx, rng, values, fields) -> None:
    party = ctx.party
    numero_protocolo = values["numero_protocolo"]
    if not numero_protocolo.isdigit():
        raise ValueError("the recurso de glosa numeroProtocolo is st_numerico12 (digits only)")
    recurso = _e(body, "guiaRecursoGlosa")
    _e(recurso, "registroANS", party.registro_ans)
    _e(recurso, "numeroGuiaRecGlosaPrestador", f"R{values['numero_guia_prestador']}")
    _e(recurso, "nomeOperadora", "Caixa de Assistência à Saúde - Operadora São Paulo")
    _e(recurso, "objetoRecurso", "2")
    _contratado(recurso, "dadosContratado", party)
    _e(recurso, "numeroLote", values["numero_lote"])
    _e(recurso, "numeroProtocolo", numero_protocolo)
    guia = _e(_e(recurso, "opcaoRecurso"), "recursoGuia")
    _e(guia, "numeroGuiaOrigem", values["numero_guia_prestador"])
    if values["numero_guia_operadora"]:
        _e(guia, "numeroGuiaOperadora", values["numero_guia_operadora"])
    itens = _e(guia, "opcaoRecursoGuia")
    day = ctx.when.date() - timedelta(days=45)
    total = 0
    for seq, (codigo, descricao, unit) in enumerate(rng.sample(EXAMES, 2), 1):
        item = _e(itens, "itensGuia")
        _e(item, "sequencialItem", str(seq))
        _e(item, "dataInicio", _d(day))
        _procedimento(item, "procRecurso", "22", codigo, descricao)
        if ctx.v403:
            _e(item, "centroConsumo", "9")
        _e(item, "codGlosaItem", "1705")  # valor apresentado a maior (present in 4.01-4.03)
        _e(item, "valorRecursado", money(unit))
        _e(item, "justificativaItem",
           "Valor cobrado conforme tabela contratual vigente; solicitação de revisão da glosa.")
        total += unit
    _e(recurso, "valorTotalRecursado", money(total))
    _e(recurso, "dataRecurso", _d(ctx.when.date()))


def _req_status_recurso(body, ctx, rng, values, fields) -> None:
    _contratado(body, "dadosPrestador", ctx.party)
    _e(body, "numeroProtocolo", values["numero_protocolo"])


def _req_comunicacao(body, ctx, rng, values, fields) -> None:
    evento = fields.get("tipo_evento", "I")
    if evento not in ("I", "A"):
        raise ValueError("tipo_evento must be 'I' or 'A'")
    _beneficiario(body, "dadosBeneficiario", values["numero_carteira"])
    _e(body, "dataEvento", _d(ctx.when.date()))
    _e(body, "tipoEvento", evento)
    internacao = _e(body, "dadosInternacao")
    if evento == "I":
        _e(internacao, "tipoInternacao", "2")
    else:
        _e(internacao, "motivoEncerramento", "12")


def _req_envio_documento(body, ctx, rng, values, fields) -> None:
    _e(body, "numeroLote", values["numero_lote"])
    if "numero_protocolo" in fields:
        _e(body, "numeroProtocolo", values["numero_protocolo"])
    _e(body, "numeroGuiaPrestador", values["numero_guia_prestador"])
    if values["numero_guia_operadora"]:
        _e(body, "numeroGuiaOperadora", values["numero_guia_operadora"])
    _e(body, "numeroDocumento", fields.get("numero_documento", f"DOC{values['numero_guia_prestador']}"))
    _e(body, "naturezaGuia", fields.get("tipo_guia", "2"))
    _e(body, "formatoDocumento", "02")  # PDF
    _e(body, "documento", base64.b64encode(fields.get("documento", _PDF)).decode("ascii"))
    _e(body, "tipoDocumento", "04")  # relatório do profissional de saúde
    _e(body, "observacao", "Relatório médico anexado à guia, conforme solicitação da auditoria.")


_REQUEST_BODIES = {
    "solicitacaoStatusProtocoloWS": _req_status_protocolo,
    "solicitacaoDemonstrativoRetornoWS": _req_demonstrativo,
    "pedidoElegibilidadeWS": _req_elegibilidade,
    "solicitacaoProcedimentoWS": _req_solicitacao_procedimento,
    "solicitacaoStatusAutorizacaoWS": _req_status_autorizacao,
    "cancelaGuiaWS": _req_cancela_guia,
    "loteAnexoWS": _req_lote_anexo,
    "loteRecursoGlosaWS": _req_recurso_glosa,
    "solicitacaoStatusRecursoGlosaWS": _req_status_recurso,
    "comunicacaoBeneficiarioWS": _req_comunicacao,
    "envioDocumentoWS": _req_envio_documento,
}
