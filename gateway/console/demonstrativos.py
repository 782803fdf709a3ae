"""The main figures of a stored demonstrativo (the operator's demonstrativoRetornoWS as received):
its header, one row per protocol it covers and its totals, read generically enough for the three
kinds (análise de conta, pagamento, pagamento odontológico) in 4.01-4.03."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from lxml import etree

from gateway.console import stored
from gateway.message.services import ANS_NS
from gateway.message.tables import STATUS_PROTOCOLO

_A = f"{{{ANS_NS}}}"
TIPOS = {"1": "Pagamento", "2": "Análise de conta", "3": "Pagamento odontológico"}
_KINDS = {"demonstrativoAnaliseConta": "2", "demonstrativoPagamento": "1",
          "demonstrativoPagamentoOdonto": "3"}
# The entries that stand for one protocol in each kind, and where their totals are.
_ENTRADAS = ("dadosProtocolo", "relacaoProtocolos", "protocolos")
_TOTAIS = ("totaisDemonstrativo",)
_ROTULOS = {
    "registroANS": "Registro ANS", "numeroDemonstrativo": "Número do demonstrativo",
    "nomeOperadora": "Operadora", "numeroCNPJ": "CNPJ da operadora", "cnpjOper": "CNPJ da operadora",
    "dataEmissao": "Emissão", "datainicio": "Início do período", "datafim": "Fim do período",
    "numeroLotePrestador": "Lote", "numeroLote": "Lote", "numeroProtocolo": "Protocolo",
    "dataProtocolo": "Data do protocolo", "situacaoProtocolo": "Situação",
}


@dataclass(frozen=True)
class Linha:
    """One protocol: its identifying fields and its values (label, Decimal)."""

    campos: tuple[tuple[str, str], ...]
    valores: tuple[tuple[str, Decimal], ...]
    numero_protocolo: str | None = None


@dataclass(frozen=True)
class Figuras:
    tipo: str  # dm_tipoDemonstrativo
    cabecalho: tuple[tuple[str, str], ...]
    protocolos: tuple[Linha, ...]
    totais: tuple[tuple[str, Decimal], ...]
    observacao: str | None = None
    erro: tuple[str, str] | None = None  # mensagemErro (code, text) instead of a demonstrativo
    colunas: tuple[str, ...] = field(default=())  # value labels of the protocol rows


def rotulo(name: str) -> str:
    """``valorInformadoGeral`` -> ``Valor informado geral``."""
    if name in _ROTULOS:
        return _ROTULOS[name]
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).lower().split()
    return " ".join(words).capitalize() if words else name


def texto(name: str, value: str) -> str:
    """A field as the page shows it: dates dd/mm/aaaa, a dm_statusProtocolo with its name."""
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return f"{value[8:10]}/{value[5:7]}/{value[:4]}"
    if name.startswith("situacao") and value.isdigit():
        return f"{value} {STATUS_PROTOCOLO.get(int(value), '')}".strip()
    return value


def _leaves(element: etree._Element) -> list[etree._Element]:
    return [c for c in element if isinstance(c.tag, str) and len(c) == 0]


def figuras(corpo: bytes | None) -> list[Figuras] | None:
    """One Figuras per demonstrativo in the answer (an análise answer may hold up to 30); None when
    the body is gone (pruned) or is not a demonstrativo answer."""
    message = stored.message(corpo, "demonstrativoRetornoWS")
    body = message.root.find(f"{_A}demonstrativoRetorno") if message is not None else None
    if body is None:
        return None
    erro = body.find(f"{_A}mensagemErro")
    if erro is not None:
        return [Figuras("", (), (), (), erro=((erro.findtext(f"{_A}codigoGlosa") or "").strip(),
                                              (erro.findtext(f"{_A}descricaoGlosa") or "").strip()))]
    return [_figuras(dem) for dem in body
            if isinstance(dem.tag, str) and etree.QName(dem).localname in _KINDS]


def _figuras(dem: etree._Element) -> Figuras:
    header = dem[0] if len(dem) else None
    cabecalho = []
    for leaf in header.iter() if header is not None else ():
        if isinstance(leaf.tag, str) and len(leaf) == 0 and (leaf.text or "").strip():
            name = etree.QName(leaf).localname
            cabecalho.append((rotulo(name), texto(name, leaf.text.strip())))
    linhas = [_linha(e) for name in _ENTRADAS for e in dem.iter(f"{_A}{name}")]
    totais = [(rotulo(etree.QName(e).localname), v) for e in _leaves(dem)
              if (v := stored.decimal(e.text)) is not None and etree.QName(e).localname.startswith("valor")]
    for name in _TOTAIS:
        for container in dem.iterfind(f"{_A}{name}"):
            totais += [(rotulo(etree.QName(e).localname), v) for e in container.iter()
                       if isinstance(e.tag, str) and len(e) == 0
                       and "debitosCreditos" not in _path(e, container)  # each debit: not a total
                       and (v := stored.decimal(e.text)) is not None]
    colunas = tuple(dict.fromkeys(label for linha in linhas for label, _v in linha.valores))
    return Figuras(_KINDS[etree.QName(dem).localname], tuple(cabecalho), tuple(linhas), tuple(totais),
                   (dem.findtext(f"{_A}observacao") or "").strip() or None, colunas=colunas)


def _path(element: etree._Element, top: etree._Element) -> str:
    names = []
    while element is not None and element is not top:
        names.append(etree.QName(element).localname)
        element = element.getparent()
    return "/".join(reversed(names))


def _linha(entrada: etree._Element) -> Linha:
    campos, valores = [], []
    for leaf in _leaves(entrada):
        name = etree.QName(leaf).localname
        text = (leaf.text or "").strip()
        if name.startswith("valor"):
            value = stored.decimal(text)
            if value is not None:
                valores.append((rotulo(name), value))
        elif text:
            campos.append((rotulo(name), texto(name, text)))
    totais = entrada.find(f"{_A}totaisPorProtocolo")
    for leaf in _leaves(totais) if totais is not None else ():
        value = stored.decimal(leaf.text)
        if value is not None:
            valores.append((rotulo(etree.QName(leaf).localname), value))
    numero = (entrada.findtext(f"{_A}numeroProtocolo") or "").strip() or None
    return Linha(tuple(campos), tuple(valores), numero)
