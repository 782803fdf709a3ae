"""Version conversion: "re-stamp, then validate".

The TISS 4.01.00, 4.02.00 and 4.03.00 schemas differ only by added/removed elements and
narrowed/widened types (see :func:`criticas_de_conversao`), so a message valid in one version is
sent in another by changing ``Padrao``, as long as the target's schema accepts it. When it does
not, the schema's complaint becomes a crítica naming the element, the guides and both versions.
Also here: the *WS form a message is sent in (a mensagemTISS lote becomes a loteGuiasWS) and the
cabeçalho of each transaction sent (:func:`stamp`).
"""

from __future__ import annotations

import copy
import re
from datetime import datetime
from functools import cache
from pathlib import Path

from lxml import etree

from adapters.errors import AdapterError, Refused
from adapters.guias import guias_do_lote, lote_guias
from gateway.message import findings as f
from gateway.message.findings import Finding
from gateway.message.reader import TissMessage
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, DSIG_NS
from gateway.message.validation import schema_findings

_A = f"{{{ANS_NS}}}"
_XS = {"xs": "http://www.w3.org/2001/XMLSchema"}
_SIGNATURE_TAGS = frozenset({f"{_A}Signature", f"{_A}Signatures", f"{{{DSIG_NS}}}Signature"})

_ERRO = re.compile(r"Element '(?:\{[^}]*\})?(?P<elemento>[^']+)': (?P<detalhe>.*)", re.S)
_FALTANDO = re.compile(r"Missing child element\(s\)\. Expected is (?:one of )?\( (?P<lista>[^)]*) \)")
_NAO_ESPERADO = re.compile(r"This element is not expected\.")
_GUIA_NO_CAMINHO = re.compile(r"/(?:[\w.-]+:)?guiasTISS/(?:[\w.-]+:)?guia[\w-]+(?:\[(\d+)\])?")
_MAX_GUIAS_CITADAS = 10


# --------------------------------------------------------------------------------- the *WS form


def lote_ws(mensagem: etree._Element) -> etree._Element:
    """mensagemTISS/prestadorParaOperadora/loteGuias as a loteGuiasWS (same cabecalhoTransacao and
    ctm_guiaLote types; the hash moves from epilogo to the root)."""
    lote = mensagem.find(f"{_A}prestadorParaOperadora/{_A}loteGuias")
    cabecalho = mensagem.find(f"{_A}cabecalho")
    if lote is None or cabecalho is None:
        raise Refused(f.error(f.MENSAGEM_FORA_DO_PADRAO, "Só o lote de guias da mensagemTISS é enviado "
                              "por web service; as demais transações vão no *WS do serviço.",
                              "mensagemTISS/prestadorParaOperadora"))
    ws = etree.Element(f"{_A}loteGuiasWS", nsmap={k: v for k, v in mensagem.nsmap.items() if v != DSIG_NS})
    ws.append(copy.deepcopy(cabecalho))
    ws.append(copy.deepcopy(lote))
    etree.SubElement(ws, f"{_A}hash")
    return ws


def remove_signatures(root: etree._Element) -> None:
    """The provider's signature goes: the cabeçalho changes, it would no longer verify."""
    for child in [c for c in root.iterchildren(etree.Element) if c.tag in _SIGNATURE_TAGS]:
        root.remove(child)


# --------------------------------------------------------------------------------- stamping


def stamp_padrao(root: etree._Element, versao: str) -> None:
    padrao = root.find(f"{_A}cabecalho/{_A}Padrao")
    if padrao is not None:
        padrao.text = versao


def stamp(root: etree._Element, versao: str, sequencial: str, agora: datetime) -> None:
    """The cabeçalho of a new transaction: its sequencial, its moment, the version sent."""
    ident = root.find(f"{_A}cabecalho/{_A}identificacaoTransacao")
    if ident is None:
        raise AdapterError("mensagem sem cabecalho/identificacaoTransacao")
    for name, value in (("sequencialTransacao", sequencial),
                        ("dataRegistroTransacao", agora.date().isoformat()),
                        ("horaRegistroTransacao", agora.strftime("%H:%M:%S"))):
        ident.find(f"{_A}{name}").text = value
    stamp_padrao(root, versao)


def version_key(versao: str) -> tuple[int, ...]:
    """Orders Padrão versions ("4.10.00" after "4.03.00")."""
    return tuple(int(p) if p.isdigit() else -1 for p in versao.split("."))


# --------------------------------------------------------------------------------- validation


def schema_criticas(registry: SchemaRegistry, root: etree._Element, versao: str,
                    encoding: str) -> list[Finding]:
    """What the schema of ``versao`` says of the *WS document ``root``."""
    kind = etree.QName(root).localname
    schema = registry.schema(versao, kind)
    parte = TissMessage(b"", etree.ElementTree(root), root, kind, versao, encoding, False)
    return schema_findings(schema, parte)


def criticas_de_conversao(erros: list[Finding], origem: str, destino: str, operadora: str,
                          root: etree._Element) -> list[Finding]:
    """Schema errors of a message re-stamped from ``origem`` to ``destino`` as críticas (5001)
    naming the element, the guides and both versions; one crítica per element and problem.

    What differs between the versions (official XSDs 4.01.00, 4.02.00, 4.03.00):
    - 4.03.00 adds the required ``dadosInternacao/caraterAtendimento`` to guiaHonorarios
      (ctm_honorarioIndividualGuia): a 4.01/4.02 honorários guide cannot become 4.03.00;
    - 4.03.00 adds optional ``centroConsumo`` (resumo de internação, outras despesas, recurso,
      demonstrativo) and ``observacao`` (demonstrativo); 4.02.00 adds optional
      ``coberturaEspecial`` (autorização) and ``observacao`` (demonstrativo): fine upwards,
      refused downwards when present;
    - 4.02.00 widens most values from decimal8-2 to decimal10-2 but narrows the odonto ``qtdUS``
      to decimal7-2; 4.03.00 lets a CNPJ be alphanumeric (st_CNPJ) and narrows CPF-or-CNPJ to
      11 or 14 characters (st_CNPJCPFPadrao); dm_CBOS (223575, 4.02.00), dm_statusProtocolo (10,
      4.02.00) and dm_tipoGlosa (3169-3312, 4.03.00) grow. Everything else is equal: ``Padrao`` is
      re-stamped as is.
    """
    grupos: dict[tuple[str, str, str], list[Finding]] = {}
    for erro in erros:
        texto = erro.message.removeprefix(f"Mensagem fora do schema {destino}: ")
        grupos.setdefault(_classifica(texto, erro.location or ""), []).append(erro)
    guias = [g.numero for g in guias_do_lote(lote_guias(root))]
    return [_critica_de_conversao(chave, itens, guias, origem, destino, operadora)
            for chave, itens in grupos.items()]


def _classifica(texto: str, caminho: str) -> tuple[str, str, str]:
    """(kind of problem, element, detail): faltando / nao-esperado / valor."""
    match = _ERRO.match(texto)
    if match is None:
        return ("outro", "", texto)
    elemento, detalhe = match["elemento"], match["detalhe"].strip()
    faltando = _FALTANDO.search(detalhe)
    if faltando:
        nomes = ", ".join(re.sub(r"\{[^}]*\}", "", n).strip() for n in faltando["lista"].split(","))
        return ("faltando", nomes, elemento)
    if _NAO_ESPERADO.search(detalhe):
        pai = caminho.rsplit("/", 2)[-2] if caminho.count("/") >= 2 else ""
        return ("nao-esperado", elemento, re.sub(r"^[\w.-]+:|\[\d+\]$", "", pai))
    return ("valor", elemento, re.sub(r"\{[^}]*\}", "", detalhe))


def _critica_de_conversao(chave: tuple[str, str, str], erros: list[Finding], guias: list[str],
                          origem: str, destino: str, operadora: str, *, resposta: bool = False) -> Finding:
    problema, elemento, detalhe = chave
    onde = _guias_citadas(erros, guias)
    if problema == "faltando":
        texto = (f"O elemento {elemento}, obrigatório em {detalhe} na versão {destino}, não consta "
                 f"da {'resposta' if resposta else 'mensagem'}{onde}")
    elif problema == "nao-esperado":
        de = f" de {detalhe}" if detalhe else ""
        texto = f"O elemento {elemento}{de}{onde} não existe na versão {destino}"
    elif problema == "valor":
        texto = f"Valor de {elemento}{onde} inválido na versão {destino}: {detalhe}"
    else:
        texto = f"Mensagem fora do schema {destino}: {detalhe}"
    if resposta:
        texto += f" (resposta da operadora {operadora} na versão {origem})"
    elif origem and origem != destino:
        como = {"faltando": f" com {elemento} preenchido", "nao-esperado": f" sem {elemento}"}
        texto += (f". A operadora {operadora} não aceita a versão {origem} e a mensagem seria enviada "
                  f"na {destino}: envie-a na versão {destino}{como.get(problema, '')}")
    return f.error(f.MENSAGEM_FORA_DO_PADRAO, texto + ".", erros[0].location, erros[0].line)


def _guias_citadas(erros: list[Finding], guias: list[str]) -> str:
    numeros = []
    for erro in erros:
        match = _GUIA_NO_CAMINHO.search(erro.location or "")
        if match is None:
            continue
        posicao = int(match[1] or 1)
        if posicao <= len(guias) and guias[posicao - 1] not in numeros:
            numeros.append(guias[posicao - 1])
    if not numeros:
        return ""
    citadas = ", ".join(numeros[:_MAX_GUIAS_CITADAS])
    resto = f" e mais {len(numeros) - _MAX_GUIAS_CITADAS}" if len(numeros) > _MAX_GUIAS_CITADAS else ""
    return f" ({'guia' if len(numeros) == 1 else 'guias'} {citadas}{resto})"


# --------------------------------------------------------------------------------- answers

# An operator's refusal code the provider's version lacks (dm_tipoGlosa grows: 3169-3312 came with
# 4.03.00) -> the code older versions give the same refusal; any other such code becomes 5002 with
# the operator's description (what the gateway answers for a refusal it cannot code otherwise).
CODIGO_EQUIVALENTE = {"3291": "3162",  # protocolo não localizado
                      "3268": "1308"}  # lote já informado / guia já apresentada
CODIGO_SEM_EQUIVALENTE = "5002"
_CODIGOS_DE_RECUSA = etree.XPath(
    "//ans:mensagemErro/ans:codigoGlosa | /*/ans:respostaElegibilidade/ans:codigoGlosa/ans:codigoGlosa",
    namespaces={"ans": ANS_NS})


def resposta_na_versao(registry: SchemaRegistry, root: etree._Element, origem: str, destino: str,
                       encoding: str, operadora: str) -> list[Finding]:
    """Convert an operator's answer ``root`` (a ``*WS`` in ``origem``, the operator's version) in
    place for a provider that asked in ``destino``: ``Padrao`` re-stamped, the answer's refusal
    codes the provider's version lacks recoded, then validated against ``destino``'s schema.
    Returns what does not fit (críticas naming the element), [] when the answer is valid there."""
    stamp_padrao(root, destino)
    if origem != destino:
        codigos = codigos_tipo_glosa(registry, destino)
        for element in _CODIGOS_DE_RECUSA(root):
            codigo = (element.text or "").strip()
            if codigos and codigo not in codigos:
                equivalente = CODIGO_EQUIVALENTE.get(codigo, CODIGO_SEM_EQUIVALENTE)
                element.text = equivalente if equivalente in codigos else CODIGO_SEM_EQUIVALENTE
    erros = schema_criticas(registry, root, destino, encoding)
    grupos: dict[tuple[str, str, str], list[Finding]] = {}
    for erro in erros:
        texto = erro.message.removeprefix(f"Mensagem fora do schema {destino}: ")
        grupos.setdefault(_classifica(texto, erro.location or ""), []).append(erro)
    return [_critica_de_conversao(chave, itens, [], origem, destino, operadora, resposta=True)
            for chave, itens in grupos.items()]


# --------------------------------------------------------------------------------- tables


def codigos_tipo_glosa(registry: SchemaRegistry, versao: str) -> frozenset[str]:
    """The dm_tipoGlosa enumeration of ``versao``, read from its installed schema set (it grows
    between versions: the codes a crítica may carry depend on the message's)."""
    schema_set = registry.get(versao)
    if schema_set is None:
        return frozenset()
    return _tipo_glosa(schema_set.directory / f"tissSimpleTypesV{schema_set.tag}.xsd")


@cache
def _tipo_glosa(path: Path) -> frozenset[str]:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    tree = etree.parse(str(path), parser)
    return frozenset(tree.xpath("//xs:simpleType[@name='dm_tipoGlosa']//xs:enumeration/@value",
                                namespaces=_XS))
