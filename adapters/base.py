"""The shared base of the operator adapters: what the gateway does to an accepted message so that
one operator takes it, and what that operator would say about it.

An adapter is a subclass of :class:`Adapter` whose class attributes are the facts of its
operator's manual (shared/seeds, quoted in each module); :class:`Destino` is what the gateway's
configuration says about the operator (versions its web service takes, hash variant, signing key).

The work, in order:

- ``criticas`` (at accept time, answered to the provider at once): the operator's own rules, the
  service it takes, and whether the message survives the version conversion;
- ``preparar`` (at send time): one ``*WS`` document per ``Envio``. A lote is split into parts
  (the operator's guide limit, the Padrão's 100, one guide type per lote, the operator's file
  size), each part re-stamped (sequencialTransacao, data/hora, ``Padrao`` = the version the
  operator takes), checked against that version's schema, hashed in the operator's variant and
  signed when the operator requires it or a key is configured.

Version conversion is "re-stamp, then validate": the TISS 4.01.00, 4.02.00 and 4.03.00 schemas
differ only by added/removed elements and narrowed/widened types (see the module docstring of
:func:`criticas_de_conversao`), so a message valid in one version is sent in another by changing
``Padrao``, as long as the target's schema accepts it. When it does not, the schema's complaint is
turned into a crítica naming the element, the guides and both versions.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

from lxml import etree

from gateway.message import findings as f
from gateway.message import hashing
from gateway.message.findings import Finding, tabela38
from gateway.message.lote import GUIDE_KINDS
from gateway.message.reader import TissMessage
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, DSIG_NS, MENSAGEM_TISS, SERVICE_BY_REQUEST, SERVICES
from gateway.message.validation import schema_findings

if TYPE_CHECKING:
    from gateway.config import Operadora

_A = f"{{{ANS_NS}}}"
_NS = {"ans": ANS_NS}
_XS = {"xs": "http://www.w3.org/2001/XMLSchema"}

MAX_GUIAS_PADRAO = 100  # ctm_guiaLote: every guide element has maxOccurs="100" (4.01.00-4.03.00)
ST_TEXTO12 = 12  # numeroLote and sequencialTransacao are st_texto12
TODAS_OPERACOES: frozenset[str] = frozenset(s.name for s in SERVICES)

# Table 38 (dm_tipoGlosa) codes the adapters emit; all are in the 4.01.00-4.03.00 enumerations.
TIPO_DE_GUIA_INVALIDO = "1301"
PRESTADOR_EXECUTANTE_NAO_INFORMADO = "1311"
CAMPO_CONDICIONADO = "3111"  # CAMPO CONDICIONADO NÃO PREENCHIDO OU INCORRETO
ARQUIVO_ACIMA_DO_TAMANHO = "3166"  # ARQUIVO ENVIADO EXCEDE O TAMANHO MÁXIMO PERMITIDO
_CODIGOS_BASE = frozenset({f.MENSAGEM_FORA_DO_PADRAO, f.XML_NAO_VALIDADO, f.VERSAO_INVALIDA,
                           ARQUIVO_ACIMA_DO_TAMANHO})

# dm_statusProtocolo, by its ANS names: every operator also answers in the Padrão's terms.
STATUS_TISS: Mapping[str, int] = MappingProxyType({
    "Recebido": 1,
    "Em análise": 2,
    "Liberado para pagamento": 3,
    "Encerrado sem pagamento": 4,
    "Analisado e aguardando liberação para pagamento": 5,
    "Pagamento efetuado": 6,
    "Não localizado": 7,
    "Aguardando informação complementar": 8,
    "Cancelado": 9,
    "Bloqueio judicial": 10,
})

# Room left in a part for what changes after it is measured: cabeçalho values, the hash, the
# signature (its certificates are added on top when the part is signed).
_MARGEM_BYTES = 8 * 1024
_SIGNATURE_TAGS = frozenset({f"{_A}Signature", f"{_A}Signatures", f"{{{DSIG_NS}}}Signature"})
_NOMES_TIPO = {"consulta": "consulta", "sp-sadt": "SP/SADT", "odonto": "tratamento odontológico",
               "honorarios": "honorários", "resumo-internacao": "resumo de internação"}


class AdapterError(Exception):
    """The adapter cannot do what was asked: a configuration error or a caller's mistake
    (not something to tell the provider: those are :meth:`Adapter.criticas`)."""


@dataclass(frozen=True)
class Destino:
    """What the gateway's configuration says about one operator."""

    registro_ans: str
    versoes: tuple[str, ...]  # TISS versions the operator's web service accepts
    hash_variante: str = hashing.DECLARED  # gateway.message.hashing.VARIANTS name to emit
    chave_pem: bytes | None = field(default=None, repr=False)  # signing key, when signing
    cadeia_pem: tuple[bytes, ...] = field(default=(), repr=False)  # its certificate first, then ACs
    # The operator's own identifiers, for rules that refuse it as a contratado (Unimed's "campo 30").
    cnpj: str | None = None
    codigos_proprios: tuple[str, ...] = ()

    @classmethod
    def de_operadora(cls, operadora: Operadora, *, chave_pem: bytes | None = None,
                     cadeia_pem: Sequence[bytes] = (), cnpj: str | None = None,
                     codigos_proprios: Sequence[str] = ()) -> Destino:
        """From a ``gateway.config.Operadora``: the versions its web service takes
        (``versoes_envio`` where the configuration has it), the hash it emits, and the signing
        key and certificate files it names, unless given here."""
        versoes = getattr(operadora, "versoes_envio", None) or operadora.versoes
        chave_arquivo = getattr(operadora, "assinatura_chave", None)
        certificados_arquivo = getattr(operadora, "assinatura_certificados", None)
        if chave_pem is None and chave_arquivo is not None:
            chave_pem = Path(chave_arquivo).read_bytes()
        if not cadeia_pem and certificados_arquivo is not None:
            cadeia_pem = _certificados_pem(Path(certificados_arquivo).read_bytes())
        return cls(operadora.registro_ans, tuple(versoes), operadora.hash_emitido, chave_pem,
                   tuple(cadeia_pem), cnpj, tuple(codigos_proprios))


def _certificados_pem(data: bytes) -> tuple[bytes, ...]:
    """Each certificate of a PEM bundle (leaf first, as written)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return tuple(c.public_bytes(Encoding.PEM) for c in x509.load_pem_x509_certificates(data))


@dataclass(frozen=True)
class Envio:
    """One message ready for the operator."""

    servico: str  # TISS service name, e.g. "tissLoteGuias"
    corpo: bytes  # the *WS document (no SOAP envelope), in the message's declared encoding
    numero_lote: str | None  # lote parts: the part's numeroLote
    guias: tuple[str, ...]  # lote parts: numeroGuiaPrestador of its guides, in order
    sequencial: str  # its sequencialTransacao
    versao: str  # its Padrao (the operator's endpoint for that version receives it)


@dataclass(frozen=True)
class Guia:
    """One guide of a lote, as the rules see it."""

    elemento: etree._Element
    tipo: str  # consulta | sp-sadt | odonto | honorarios | resumo-internacao
    numero: str  # numeroGuiaPrestador
    posicao: int  # 1-based, in guiasTISS

    @property
    def local(self) -> str:
        return f"loteGuias/guiasTISS/{etree.QName(self.elemento).localname}[{self.posicao}]"


@dataclass
class _Documento:
    """The standalone *WS copy being prepared (never the received tree)."""

    root: etree._Element
    servico: str
    lote: bool


@dataclass
class _Parte:
    root: etree._Element
    numero_lote: str | None
    guias: tuple[str, ...]


class _Recusa(Exception):
    def __init__(self, finding: Finding):
        super().__init__(finding.message)
        self.finding = finding


# --------------------------------------------------------------------------------- the base


class Adapter:
    """One operator. Subclasses set the class attributes from their manual and may add rules
    (:meth:`regras_lote`); everything else is shared."""

    nome: ClassVar[str] = ""
    max_guias_lote: ClassVar[int | None] = None  # None: only the Padrão's 100
    max_bytes: ClassVar[int | None] = None  # per XML file; None: the manual sets none
    um_tipo_de_guia_por_lote: ClassVar[bool] = True
    exige_assinatura: ClassVar[bool] = False
    envio_parcial: ClassVar[bool] = False  # a guide's crítica refuses only that guide
    operacoes: ClassVar[frozenset[str]] = TODAS_OPERACOES  # TISS service names it takes
    STATUS: ClassVar[Mapping[str, int]] = STATUS_TISS  # operator's status names -> dm_statusProtocolo
    CRITICAS: ClassVar[Mapping[str, str]] = MappingProxyType({})  # operator's crítica codes/texts -> Table 38
    CRITICA_PADRAO: ClassVar[str] = f.XML_NAO_VALIDADO  # an operator crítica nothing maps
    CODIGOS_REGRAS: ClassVar[frozenset[str]] = frozenset()  # Table 38 codes regras_lote may emit

    def __init__(self, destino: Destino, registry: SchemaRegistry):
        if not destino.versoes:
            raise AdapterError(f"{self.nome}: nenhuma versão do Padrão TISS configurada")
        if destino.hash_variante not in hashing.VARIANTS:
            raise AdapterError(f"{self.nome}: variante de hash desconhecida {destino.hash_variante!r}")
        if destino.chave_pem is not None and not destino.cadeia_pem:
            raise AdapterError(f"{self.nome}: chave de assinatura sem o certificado (cadeia_pem)")
        self.destino = destino
        self.registry = registry
        self._status = {_normaliza(nome): codigo for nome, codigo in self.STATUS.items()}
        self._criticas = sorted(((_normaliza(k), v) for k, v in self.CRITICAS.items()),
                                key=lambda item: -len(item[0]))
        self._check_codigos()

    @property
    def assina(self) -> bool:
        return self.exige_assinatura or self.destino.chave_pem is not None

    def suporta(self, servico: str) -> bool:
        return servico in self.operacoes

    def versao_destino(self, versao: str) -> str:
        """The version to send in: the message's own if the operator takes it, else its newest."""
        if versao in self.destino.versoes:
            return versao
        return max(self.destino.versoes, key=_chave_versao)

    # ---------------------------------------------------------------------- at accept time

    def criticas(self, message: TissMessage) -> list[Finding]:
        """What the operator would refuse in ``message``, said now: its rules, the service, the
        version conversion and the file size. Codes are in dm_tipoGlosa of the message's version."""
        try:
            alvo = self._versao_alvo(message)
            if alvo == message.version and message.kind in SERVICE_BY_REQUEST and self._cabe(message):
                return self._criticas_sem_conversao(message)
            documento = self._documento(message)
        except _Recusa as exc:
            return [exc.finding]
        found: list[Finding] = []
        if documento.lote:
            found.extend(self.regras_lote(guias_do_lote(_lote_guias(message.root))))
        try:
            partes = self._partes(documento, message.encoding)
        except _Recusa as exc:
            return [*found, exc.finding]
        for parte in partes:
            _carimbar_padrao(parte.root, alvo)
            erros = self._validar(parte.root, alvo, message.encoding)
            found.extend(criticas_de_conversao(erros, message.version or "", alvo, self.nome,
                                               parte.root))
        return found

    def _criticas_sem_conversao(self, message: TissMessage) -> list[Finding]:
        """The common case, read from the message as it is: same version, a file that fits. The
        parts a split makes have the structure the whole message was validated with, so there
        is no copy to make and nothing to validate again: only the operator's own rules."""
        servico = SERVICE_BY_REQUEST[message.kind].name
        if servico not in self.operacoes:
            raise _Recusa(f.error(f.MENSAGEM_FORA_DO_PADRAO,
                                  f"A operadora {self.nome} não recebe {servico} pelo web service.",
                                  message.kind))
        if servico != "tissLoteGuias":
            return []
        return list(self.regras_lote(guias_do_lote(_lote_guias(message.root))))

    def _cabe(self, message: TissMessage) -> bool:
        """The received bytes (envelope included) already fit the operator's file limit."""
        if self.max_bytes is None:
            return True
        margem = _MARGEM_BYTES + (sum(len(p) for p in self.destino.cadeia_pem) if self.assina else 0)
        return len(message.data) + margem <= self.max_bytes

    def regras_lote(self, guias: Sequence[Guia]) -> Iterable[Finding]:
        """The operator's own rules on a lote's guides (none by default)."""
        return ()

    # ---------------------------------------------------------------------- at send time

    def preparar(self, message: TissMessage, *, sequenciais: Callable[[int], list[str]] | list[str],
                 agora: datetime) -> list[Envio]:
        """The messages to send for ``message`` (one, or one per lote part), in order.

        ``sequenciais``: the sequencialTransacao of each (a list, or a function given how many
        are needed); ``agora``: the transaction moment stamped in every cabeçalho.
        Raises AdapterError if something :meth:`criticas` would refuse reaches here.
        """
        if self.assina and self.destino.chave_pem is None:
            raise AdapterError(f"A operadora {self.nome} exige assinatura digital: configure a chave "
                               "e o certificado do gateway para ela.")
        try:
            documento = self._documento(message)
            alvo = self._versao_alvo(message)
            partes = self._partes(documento, message.encoding)
        except _Recusa as exc:
            raise AdapterError(f"mensagem não enviável a {self.nome}: {exc.finding.message}") from None
        numeros = _sequenciais(sequenciais, len(partes))
        return [self._envio(documento.servico, parte, alvo, numero, agora, message.encoding)
                for parte, numero in zip(partes, numeros, strict=True)]

    def _envio(self, servico: str, parte: _Parte, versao: str, sequencial: str, agora: datetime,
               encoding: str) -> Envio:
        root = parte.root
        _carimbar(root, versao, sequencial, agora)
        tree = etree.ElementTree(root)
        corpo = hashing.rewrite(tree, root, self.destino.hash_variante, encoding)
        if self.assina:
            from gateway.security import xmldsig  # signxml is loaded only by adapters that sign

            xmldsig.sign(root, self.destino.chave_pem or b"", list(self.destino.cadeia_pem))
            corpo = etree.tostring(tree, encoding=encoding, xml_declaration=True)
        erros = self._validar(root, versao, encoding)
        if erros:
            raise AdapterError(f"{self.nome}: a parte {parte.numero_lote or ''} não valida no schema "
                               f"{versao} (criticas() deveria tê-lo dito): {erros[0].message}")
        if self.max_bytes is not None and len(corpo) > self.max_bytes:
            raise AdapterError(f"{self.nome}: parte com {len(corpo)} bytes excede {self.max_bytes}")
        return Envio(servico, corpo, parte.numero_lote, parte.guias, sequencial, versao)

    # ---------------------------------------------------------------------- the operator's words

    def status_tiss(self, status_operadora: str | int) -> int:
        """dm_statusProtocolo of a status as the operator shows it (its name, or a number that
        already is dm_statusProtocolo, as in Capital Prev's "02 em análise")."""
        if isinstance(status_operadora, int) and not isinstance(status_operadora, bool):
            if 1 <= status_operadora <= max(STATUS_TISS.values()):
                return status_operadora
            raise ValueError(f"{self.nome}: status {status_operadora} fora de dm_statusProtocolo")
        texto = _normaliza(str(status_operadora))
        if texto in self._status:
            return self._status[texto]
        numerado = re.fullmatch(r"0*(\d{1,2})(?: (.*))?", texto)
        if numerado and 1 <= int(numerado[1]) <= max(STATUS_TISS.values()):
            codigo = int(numerado[1])
            if self._status.get(numerado[2] or "", codigo) == codigo:
                return codigo
        raise ValueError(f"{self.nome}: status da operadora desconhecido: {status_operadora!r}")

    def critica_tiss(self, codigo_operadora: str) -> str:
        """The Table 38 code of a crítica as the operator gives it: its own code or text
        (``CRITICAS``), or a Table 38 code it quotes; ``CRITICA_PADRAO`` when nothing matches."""
        texto = _normaliza(codigo_operadora)
        for chave, codigo in self._criticas:
            if chave == texto:
                return codigo
        citado = _codigo_citado(codigo_operadora)
        if citado is not None:
            return citado
        for chave, codigo in self._criticas:
            if chave and chave in texto:
                return codigo
        return self.CRITICA_PADRAO

    # ---------------------------------------------------------------------- helpers for rules

    def critica(self, codigo: str, texto: str, local: str | None = None,
                elemento: etree._Element | None = None) -> Finding:
        """A crítica as the operator would give it (the code must be in ``CODIGOS_REGRAS``)."""
        if codigo not in self.CODIGOS_REGRAS | _CODIGOS_BASE:
            raise AdapterError(f"{self.nome}: código {codigo} não declarado em CODIGOS_REGRAS")
        linha = elemento.sourceline if elemento is not None else None
        return f.error(codigo, f"{texto} (regra da operadora {self.nome})", local, linha)

    # ---------------------------------------------------------------------- internals

    def _check_codigos(self) -> None:
        """Every code this adapter may give exists in dm_tipoGlosa of every installed version."""
        codigos = _CODIGOS_BASE | self.CODIGOS_REGRAS | set(self.CRITICAS.values()) | {self.CRITICA_PADRAO}
        for versao in self.registry.versions():
            faltando = codigos - codigos_tipo_glosa(self.registry, versao)
            if faltando:
                raise AdapterError(f"{self.nome}: códigos {sorted(faltando)} ausentes de dm_tipoGlosa "
                                   f"da versão {versao}")

    def _versao_alvo(self, message: TissMessage) -> str:
        if not message.version:
            raise _Recusa(f.error(f.VERSAO_INVALIDA, "Versão do padrão (cabecalho/Padrao) não informada.",
                                  "cabecalho/Padrao"))
        alvo = self.versao_destino(message.version)
        if self.registry.get(alvo) is None:
            raise _Recusa(f.error(
                f.VERSAO_INVALIDA, f"A operadora {self.nome} aceita as versões "
                f"{', '.join(self.destino.versoes)}; a {alvo} não está instalada no gateway.",
                "cabecalho/Padrao"))
        return alvo

    def _documento(self, message: TissMessage) -> _Documento:
        """A standalone *WS copy of the request, without the provider's signature (the cabeçalho
        changes: it would no longer verify). A mensagemTISS lote becomes a loteGuiasWS."""
        if message.kind == MENSAGEM_TISS:
            root = _lote_ws(message.root)
        elif message.kind in SERVICE_BY_REQUEST:
            root = copy.deepcopy(message.root)
            root.tail = None
        else:
            raise _Recusa(f.error(f.MENSAGEM_FORA_DO_PADRAO,
                                  f"{message.kind} não é uma mensagem do prestador para a operadora.",
                                  message.kind))
        for child in [c for c in root.iterchildren(etree.Element) if c.tag in _SIGNATURE_TAGS]:
            root.remove(child)
        servico = SERVICE_BY_REQUEST[etree.QName(root).localname].name
        if servico not in self.operacoes:
            raise _Recusa(f.error(f.MENSAGEM_FORA_DO_PADRAO,
                                  f"A operadora {self.nome} não recebe {servico} pelo web service.",
                                  etree.QName(root).localname))
        return _Documento(root, servico, servico == "tissLoteGuias")

    def _partes(self, documento: _Documento, encoding: str) -> list[_Parte]:
        if not documento.lote:
            self._check_tamanho(documento.root, encoding)
            return [_Parte(documento.root, None, ())]
        root = documento.root
        lote = root.find(f"{_A}loteGuias")
        guias = guias_do_lote(lote)
        container = lote.find(f"{_A}guiasTISS")
        for guia in guias:
            container.remove(guia.elemento)
        grupos = list(self._agrupar(guias, root, encoding)) or [[]]
        numero = (lote.findtext(f"{_A}numeroLote") or "").strip()
        partes = []
        for indice, grupo in enumerate(grupos, 1):
            parte = root if len(grupos) == 1 else copy.deepcopy(root)
            destino = parte.find(f"{_A}loteGuias/{_A}guiasTISS")
            for guia in grupo:
                destino.append(guia.elemento)
            numero_parte = numero_lote_parte(numero, indice, len(grupos))
            parte.find(f"{_A}loteGuias/{_A}numeroLote").text = numero_parte
            partes.append(_Parte(parte, numero_parte, tuple(g.numero for g in grupo)))
        return partes

    def _agrupar(self, guias: list[Guia], esqueleto: etree._Element, encoding: str) -> Iterator[list[Guia]]:
        """Guides in order, grouped by type (first appearance first), then cut by count and size."""
        limite = min(self.max_guias_lote or MAX_GUIAS_PADRAO, MAX_GUIAS_PADRAO)
        grupos: dict[str, list[Guia]] = {}
        for guia in guias:
            grupos.setdefault(guia.tipo if self.um_tipo_de_guia_por_lote else "", []).append(guia)
        orcamento = self._orcamento(esqueleto, encoding)
        for grupo in grupos.values():
            yield from self._fatiar(grupo, limite, orcamento, encoding)

    def _fatiar(self, guias: list[Guia], limite: int, orcamento: int | None,
                encoding: str) -> Iterator[list[Guia]]:
        """Greedy, in order: a part takes guides until the next would pass the count or the size."""
        atual: list[Guia] = []
        usado = 0
        for guia in guias:
            tamanho = _tamanho(guia.elemento, encoding) if orcamento is not None else 0
            if orcamento is not None and tamanho > orcamento:
                raise _Recusa(f.error(
                    ARQUIVO_ACIMA_DO_TAMANHO, f"A guia {guia.numero} sozinha excede o tamanho máximo de "
                    f"arquivo da operadora {self.nome} ({self.max_bytes} bytes).", guia.local,
                    guia.elemento.sourceline))
            if atual and (len(atual) >= limite or (orcamento is not None and usado + tamanho > orcamento)):
                yield atual
                atual, usado = [], 0
            atual.append(guia)
            usado += tamanho
        if atual:
            yield atual

    def _orcamento(self, esqueleto: etree._Element, encoding: str) -> int | None:
        """Bytes left for guides in one file: the operator's limit less the rest of the message."""
        if self.max_bytes is None:
            return None
        margem = _MARGEM_BYTES + (sum(len(p) for p in self.destino.cadeia_pem) if self.assina else 0)
        return self.max_bytes - _tamanho(esqueleto, encoding) - margem

    def _check_tamanho(self, root: etree._Element, encoding: str) -> None:
        orcamento = self._orcamento(root, encoding)
        if orcamento is not None and orcamento < 0:
            raise _Recusa(f.error(ARQUIVO_ACIMA_DO_TAMANHO, f"A mensagem excede o tamanho máximo de "
                                  f"arquivo da operadora {self.nome} ({self.max_bytes} bytes).",
                                  etree.QName(root).localname))

    def _validar(self, root: etree._Element, versao: str, encoding: str) -> list[Finding]:
        kind = etree.QName(root).localname
        schema = self.registry.schema(versao, kind)
        parte = TissMessage(b"", etree.ElementTree(root), root, kind, versao, encoding, False)
        return schema_findings(schema, parte)


# --------------------------------------------------------------------------------- lotes


_LOTE_GUIAS = etree.XPath("ans:loteGuias | ans:prestadorParaOperadora/ans:loteGuias", namespaces=_NS)
_NUMERO_GUIA = etree.XPath(
    "string((ans:cabecalhoGuia | ans:cabecalhoConsulta)/ans:numeroGuiaPrestador | ans:numeroGuiaPrestador)",
    namespaces=_NS)


def _lote_guias(root: etree._Element) -> etree._Element | None:
    found = _LOTE_GUIAS(root)
    return found[0] if found else None


def guias_do_lote(lote: etree._Element | None) -> list[Guia]:
    """The guides of a loteGuias, in document order."""
    container = lote.find(f"{_A}guiasTISS") if lote is not None else None
    if container is None:
        return []
    guias = []
    for posicao, elemento in enumerate(container.iterchildren(etree.Element), 1):
        name = etree.QName(elemento).localname
        tipo = GUIDE_KINDS[name][0] if name in GUIDE_KINDS else name
        guias.append(Guia(elemento, tipo, _NUMERO_GUIA(elemento).strip(), posicao))
    return guias


def ans_path(path: str) -> str:
    """``"a/b"`` as the ElementPath ``"{ans}a/{ans}b"``."""
    return "/".join(f"{_A}{step}" for step in path.split("/"))


def nome_tipo(tipo: str) -> str:
    return _NOMES_TIPO.get(tipo, tipo)


def numero_lote_parte(numero_lote: str, parte: int, total: int) -> str:
    """numeroLote of part ``parte`` (1-based) of ``total``.

    One part keeps the provider's number. Several get ``<número>-<parte>`` ("1002270-1",
    "1002270-2", ...): distinct, the same for the same input, traceable to the provider's lote,
    and, with the hyphen, never one of the provider's own (numeric) numbers. It must fit
    st_texto12: a number too long keeps its rightmost characters (the sequential part of a lote
    number) before the suffix, e.g. "781500101296" part 2 -> "1500101296-2".
    """
    if total == 1:
        return numero_lote
    sufixo = f"-{parte}"
    return numero_lote[-(ST_TEXTO12 - len(sufixo)):] + sufixo


def _lote_ws(mensagem: etree._Element) -> etree._Element:
    """mensagemTISS/prestadorParaOperadora/loteGuias as a loteGuiasWS (same cabecalhoTransacao and
    ctm_guiaLote types; the hash moves from epilogo to the root)."""
    lote = mensagem.find(f"{_A}prestadorParaOperadora/{_A}loteGuias")
    cabecalho = mensagem.find(f"{_A}cabecalho")
    if lote is None or cabecalho is None:
        raise _Recusa(f.error(f.MENSAGEM_FORA_DO_PADRAO, "Só o lote de guias da mensagemTISS é enviado "
                              "por web service; as demais transações vão no *WS do serviço.",
                              "mensagemTISS/prestadorParaOperadora"))
    ws = etree.Element(f"{_A}loteGuiasWS", nsmap={k: v for k, v in mensagem.nsmap.items() if v != DSIG_NS})
    ws.append(copy.deepcopy(cabecalho))
    ws.append(copy.deepcopy(lote))
    etree.SubElement(ws, f"{_A}hash")
    return ws


# --------------------------------------------------------------------------------- stamping


def _carimbar_padrao(root: etree._Element, versao: str) -> None:
    padrao = root.find(f"{_A}cabecalho/{_A}Padrao")
    if padrao is not None:
        padrao.text = versao


def _carimbar(root: etree._Element, versao: str, sequencial: str, agora: datetime) -> None:
    """The cabeçalho of a new transaction: its sequencial, its moment, the version sent."""
    ident = root.find(f"{_A}cabecalho/{_A}identificacaoTransacao")
    if ident is None:
        raise AdapterError("mensagem sem cabecalho/identificacaoTransacao")
    for name, value in (("sequencialTransacao", sequencial),
                        ("dataRegistroTransacao", agora.date().isoformat()),
                        ("horaRegistroTransacao", agora.strftime("%H:%M:%S"))):
        ident.find(f"{_A}{name}").text = value
    _carimbar_padrao(root, versao)


def _sequenciais(sequenciais: Callable[[int], list[str]] | list[str], quantos: int) -> list[str]:
    numeros = list(sequenciais(quantos) if callable(sequenciais) else sequenciais)
    if len(numeros) != quantos:
        raise AdapterError(f"são necessários {quantos} sequenciais de transação; vieram {len(numeros)}")
    for numero in numeros:
        if not 1 <= len(numero) <= ST_TEXTO12:
            raise AdapterError(f"sequencialTransacao deve ter de 1 a {ST_TEXTO12} caracteres: {numero!r}")
    if len(set(numeros)) != quantos:
        raise AdapterError(f"sequenciais de transação repetidos: {numeros}")
    return numeros


def _tamanho(element: etree._Element, encoding: str) -> int:
    return len(etree.tostring(element, encoding=encoding, xml_declaration=False, with_tail=False))


# --------------------------------------------------------------------------------- conversion

_ERRO = re.compile(r"Element '(?:\{[^}]*\})?(?P<elemento>[^']+)': (?P<detalhe>.*)", re.S)
_FALTANDO = re.compile(r"Missing child element\(s\)\. Expected is (?:one of )?\( (?P<lista>[^)]*) \)")
_NAO_ESPERADO = re.compile(r"This element is not expected\.")
_GUIA_NO_CAMINHO = re.compile(r"/(?:[\w.-]+:)?guiasTISS/(?:[\w.-]+:)?guia[\w-]+(?:\[(\d+)\])?")
_MAX_GUIAS_CITADAS = 10


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
    guias = [g.numero for g in guias_do_lote(_lote_guias(root))]
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
                          origem: str, destino: str, operadora: str) -> Finding:
    problema, elemento, detalhe = chave
    onde = _guias_citadas(erros, guias)
    if problema == "faltando":
        texto = (f"O elemento {elemento}, obrigatório em {detalhe} na versão {destino}, não consta "
                 f"da mensagem{onde}")
    elif problema == "nao-esperado":
        de = f" de {detalhe}" if detalhe else ""
        texto = f"O elemento {elemento}{de}{onde} não existe na versão {destino}"
    elif problema == "valor":
        texto = f"Valor de {elemento}{onde} inválido na versão {destino}: {detalhe}"
    else:
        texto = f"Mensagem fora do schema {destino}: {detalhe}"
    if origem and origem != destino:
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


# --------------------------------------------------------------------------------- tables


def codigos_tipo_glosa(registry: SchemaRegistry, versao: str) -> frozenset[str]:
    """The dm_tipoGlosa enumeration of ``versao``, read from its installed schema set."""
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


def _normaliza(texto: str) -> str:
    """Case, accents, punctuation and spacing do not tell two status or crítica names apart."""
    sem_acento = unicodedata.normalize("NFKD", texto).encode("ascii", "ignore").decode("ascii")
    return " ".join(re.sub(r"[^\w]+", " ", sem_acento.casefold()).split())


def _codigo_citado(texto: str) -> str | None:
    """A Table 38 code quoted in an operator's crítica: the whole text, its first word, or a
    4-digit number next to its own Table 38 description ("1206 CPF / CNPJ INVÁLIDO ...")."""
    normalizado = _normaliza(texto)
    for match in re.finditer(r"(?<!\d)(\d{4})(?!\d)", texto):
        codigo = match[1]
        descricao = tabela38().get(codigo)
        if codigo not in tabela38():
            continue
        if normalizado == codigo or normalizado.startswith(codigo + " "):
            return codigo
        if descricao and _normaliza(descricao) in normalizado:
            return codigo
    return None


def _chave_versao(versao: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in versao.split("."))
