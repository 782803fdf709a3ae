"""The adapter API: what the gateway does to an accepted message so that one operator takes it,
and what that operator would say about it.

An adapter is a subclass of :class:`Adapter` naming its operator, the rules of its manual
(``rules``, from :mod:`adapters.rules`, the data the simulated operators use too) and the status
names its portal shows (``STATUS``); :class:`Destino` is what the gateway's configuration says
about the operator (versions its web service takes, hash variant, signing key).

The work, in order:

- ``criticas`` (at accept time, answered to the provider at once): the operator's rules, the
  service it takes, and whether the message survives the version conversion;
- ``preparar`` (at send time): one ``*WS`` document per ``Envio``. A lote is split into parts
  (:mod:`adapters.splitting`: the operator's guide limit, the Padrão's 100, one guide type per
  lote, the operator's file size), each part re-stamped (sequencialTransacao, data/hora,
  ``Padrao`` = the version the operator takes: :mod:`adapters.conversion`), checked against that
  version's schema, hashed in the operator's variant and signed when the operator requires it or
  a key is configured;
- ``resposta_para`` (real-time services): the operator's answer back in the provider's version.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

from lxml import etree

from adapters.conversion import (
    codigos_tipo_glosa,
    criticas_de_conversao,
    lote_ws,
    remove_signatures,
    resposta_na_versao,
    schema_criticas,
    stamp,
    stamp_padrao,
    version_key,
)
from adapters.errors import AdapterError, Refused
from adapters.guias import MAX_GUIAS_PADRAO, Guia, guias_do_lote, lote_guias
from adapters.rules import OperadoraIdentity, OperadoraRules, Violation, violations
from adapters.splitting import (
    ARQUIVO_ACIMA_DO_TAMANHO,
    MARGEM_BYTES,
    ST_TEXTO12,
    Limits,
    Part,
    split_lote,
    whole,
)
from gateway.message import findings as f
from gateway.message import hashing
from gateway.message.findings import Finding
from gateway.message.reader import TissMessage
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, MENSAGEM_TISS, SERVICE_BY_REQUEST, SERVICES
from gateway.message.tables import STATUS_PROTOCOLO

if TYPE_CHECKING:
    from gateway.config import Operadora

__all__ = ["STATUS_TISS", "TODAS_OPERACOES", "Adapter", "AdapterError", "Destino", "Envio"]

TODAS_OPERACOES: frozenset[str] = frozenset(s.name for s in SERVICES)
# Table 38 codes the adapter gives whatever its operator's rules.
_CODIGOS_BASE = frozenset({f.MENSAGEM_FORA_DO_PADRAO, f.XML_NAO_VALIDADO, f.VERSAO_INVALIDA,
                           ARQUIVO_ACIMA_DO_TAMANHO})

# dm_statusProtocolo, by its ANS names: every operator also answers in the Padrão's terms.
STATUS_TISS: Mapping[str, int] = MappingProxyType({nome: codigo for codigo, nome in STATUS_PROTOCOLO.items()})


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


@dataclass
class _Documento:
    """The standalone *WS copy being prepared (never the received tree)."""

    root: etree._Element
    servico: str
    lote: bool


class Adapter:
    """One operator. Subclasses name it and set its manual's ``rules`` and its ``STATUS`` names;
    everything else is shared."""

    nome: ClassVar[str] = ""
    rules: ClassVar[OperadoraRules] = OperadoraRules()  # its manual's (the default: the Padrão's)
    operacoes: ClassVar[frozenset[str]] = TODAS_OPERACOES  # TISS service names it takes
    STATUS: ClassVar[Mapping[str, int]] = STATUS_TISS  # operator's status names -> dm_statusProtocolo

    def __init__(self, destino: Destino, registry: SchemaRegistry):
        if not destino.versoes:
            raise AdapterError(f"{self.nome}: nenhuma versão do Padrão TISS configurada")
        if destino.hash_variante not in hashing.VARIANTS:
            raise AdapterError(f"{self.nome}: variante de hash desconhecida {destino.hash_variante!r}")
        if destino.chave_pem is not None and not destino.cadeia_pem:
            raise AdapterError(f"{self.nome}: chave de assinatura sem o certificado (cadeia_pem)")
        self.destino = destino
        self.registry = registry
        self.operadora = OperadoraIdentity(self.nome, destino.registro_ans, destino.cnpj,
                                           destino.codigos_proprios)
        self._status = {_normaliza(nome): codigo for nome, codigo in self.STATUS.items()}
        self._limits = Limits(self.nome, min(self.max_guias_lote or MAX_GUIAS_PADRAO, MAX_GUIAS_PADRAO),
                              self.um_tipo_de_guia_por_lote, self.max_bytes, MARGEM_BYTES + (
                                  sum(len(p) for p in destino.cadeia_pem) if self.assina else 0))
        self._check_codigos()

    # The facts of the manual the split and the sending read (a subclass may set one as a plain
    # class attribute, e.g. a smaller max_bytes).

    @property
    def max_guias_lote(self) -> int | None:
        return self.rules.max_guias_lote

    @property
    def max_bytes(self) -> int | None:
        return self.rules.max_bytes

    @property
    def um_tipo_de_guia_por_lote(self) -> bool:
        return self.rules.um_tipo_de_guia_por_lote

    @property
    def exige_assinatura(self) -> bool:
        return self.rules.exige_assinatura

    @property
    def envio_parcial(self) -> bool:
        """A guide's crítica refuses only that guide at the operator."""
        return self.rules.envio_parcial

    @property
    def codigos_regras(self) -> frozenset[str]:
        """Table 38 codes of the rules checked at acceptance (the others are met by the split)."""
        return frozenset(rule.code for rule in self.rules.rules if not rule.by_split)

    @property
    def assina(self) -> bool:
        return self.exige_assinatura or self.destino.chave_pem is not None

    def suporta(self, servico: str) -> bool:
        return servico in self.operacoes

    def versao_destino(self, versao: str) -> str:
        """The version to send in: the message's own if the operator takes it, else its newest."""
        if versao in self.destino.versoes:
            return versao
        return max(self.destino.versoes, key=version_key)

    # ---------------------------------------------------------------------- at accept time

    def criticas(self, message: TissMessage) -> list[Finding]:
        """What the operator would refuse in ``message``, said now: its rules, the service, the
        version conversion and the file size. Codes are in dm_tipoGlosa of the message's version."""
        try:
            alvo = self._versao_alvo(message)
            if (alvo == message.version and message.kind in SERVICE_BY_REQUEST
                    and self._limits.cabe(len(message.data))):
                return self._criticas_sem_conversao(message)
            documento = self._documento(message)
        except Refused as exc:
            return [exc.finding]
        found: list[Finding] = []
        if documento.lote:
            found.extend(self.regras_lote(guias_do_lote(lote_guias(message.root))))
        try:
            partes = self._partes(documento, message.encoding)
        except Refused as exc:
            return [*found, exc.finding]
        for parte in partes:
            stamp_padrao(parte.root, alvo)
            erros = schema_criticas(self.registry, parte.root, alvo, message.encoding)
            found.extend(criticas_de_conversao(erros, message.version or "", alvo, self.nome, parte.root))
        return found

    def _criticas_sem_conversao(self, message: TissMessage) -> list[Finding]:
        """The common case, read from the message as it is: same version, a file that fits. The
        parts a split makes have the structure the whole message was validated with, so there
        is no copy to make and nothing to validate again: only the operator's own rules."""
        servico = SERVICE_BY_REQUEST[message.kind].name
        if not self.suporta(servico):
            raise Refused(f.error(f.MENSAGEM_FORA_DO_PADRAO,
                                  f"A operadora {self.nome} não recebe {servico} pelo web service.",
                                  message.kind))
        if servico != "tissLoteGuias":
            return []
        return self.regras_lote(guias_do_lote(lote_guias(message.root)))

    def regras_lote(self, guias: Sequence[Guia]) -> list[Finding]:
        """The críticas of the operator's rules on a lote's guides (the limits on a lote's size
        and guide types are not críticas: the lote is split)."""
        return [self._critica(v) for v in violations(self.rules, guias, self.operadora)]

    def _critica(self, violation: Violation) -> Finding:
        """A rule broken, told to the provider as the operator's."""
        guia = violation.guia
        local = f"{guia.local}/{violation.campo}" if guia is not None else violation.campo
        linha = violation.elemento.sourceline if violation.elemento is not None else None
        texto = violation.detalhe[:1].upper() + violation.detalhe[1:]
        return f.error(violation.rule.code, f"{texto} (regra da operadora {self.nome})", local, linha)

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
        except Refused as exc:
            raise AdapterError(f"mensagem não enviável a {self.nome}: {exc.finding.message}") from None
        numeros = _sequenciais(sequenciais, len(partes))
        return [self._envio(documento.servico, parte, alvo, numero, agora, message.encoding)
                for parte, numero in zip(partes, numeros, strict=True)]

    def _envio(self, servico: str, parte: Part, versao: str, sequencial: str, agora: datetime,
               encoding: str) -> Envio:
        root = parte.root
        stamp(root, versao, sequencial, agora)
        tree = etree.ElementTree(root)
        corpo = hashing.rewrite(tree, root, self.destino.hash_variante, encoding)
        if self.assina:
            from gateway.security import xmldsig  # signxml is loaded only by adapters that sign

            xmldsig.sign(root, self.destino.chave_pem or b"", list(self.destino.cadeia_pem))
            corpo = etree.tostring(tree, encoding=encoding, xml_declaration=True)
        erros = schema_criticas(self.registry, root, versao, encoding)
        if erros:
            raise AdapterError(f"{self.nome}: a parte {parte.numero_lote or ''} não valida no schema "
                               f"{versao} (criticas() deveria tê-lo dito): {erros[0].message}")
        if self.max_bytes is not None and len(corpo) > self.max_bytes:
            raise AdapterError(f"{self.nome}: parte com {len(corpo)} bytes excede {self.max_bytes}")
        return Envio(servico, corpo, parte.numero_lote, parte.guias, sequencial, versao)

    def resposta_para(self, root: etree._Element, versao: str, encoding: str) -> list[Finding]:
        """The operator's answer ``root`` to a real-time request, converted in place to the
        ``versao`` the provider asked in (:func:`adapters.conversion.resposta_na_versao`); returns
        what does not fit that version, naming the element ([]: a valid answer in ``versao``)."""
        origem = (root.findtext(f"{{{ANS_NS}}}cabecalho/{{{ANS_NS}}}Padrao") or "").strip() or versao
        return resposta_na_versao(self.registry, root, origem, versao, encoding, self.nome)

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

    def nome_status(self, status: int) -> str | None:
        """The operator's own name for dm_statusProtocolo ``status``: the first name ``STATUS``
        declares for it that is not the Padrão's label; None when it has none of its own."""
        padrao = {_normaliza(nome) for nome in STATUS_TISS}
        return next((nome for nome, codigo in self.STATUS.items()
                     if codigo == status and _normaliza(nome) not in padrao), None)

    # ---------------------------------------------------------------------- internals

    def _check_codigos(self) -> None:
        """Every code this adapter may give exists in dm_tipoGlosa of every installed version."""
        codigos = _CODIGOS_BASE | self.codigos_regras
        for versao in self.registry.versions():
            faltando = codigos - codigos_tipo_glosa(self.registry, versao)
            if faltando:
                raise AdapterError(f"{self.nome}: códigos {sorted(faltando)} ausentes de dm_tipoGlosa "
                                   f"da versão {versao}")

    def _versao_alvo(self, message: TissMessage) -> str:
        if not message.version:
            raise Refused(f.error(f.VERSAO_INVALIDA, "Versão do padrão (cabecalho/Padrao) não informada.",
                                  "cabecalho/Padrao"))
        alvo = self.versao_destino(message.version)
        if self.registry.get(alvo) is None:
            raise Refused(f.error(
                f.VERSAO_INVALIDA, f"A operadora {self.nome} aceita as versões "
                f"{', '.join(self.destino.versoes)}; a {alvo} não está instalada no gateway.",
                "cabecalho/Padrao"))
        return alvo

    def _documento(self, message: TissMessage) -> _Documento:
        """A standalone *WS copy of the request, without the provider's signature. A mensagemTISS
        lote becomes a loteGuiasWS."""
        if message.kind == MENSAGEM_TISS:
            root = lote_ws(message.root)
        elif message.kind in SERVICE_BY_REQUEST:
            root = copy.deepcopy(message.root)
            root.tail = None
        else:
            raise Refused(f.error(f.MENSAGEM_FORA_DO_PADRAO,
                                  f"{message.kind} não é uma mensagem do prestador para a operadora.",
                                  message.kind))
        remove_signatures(root)
        servico = SERVICE_BY_REQUEST[etree.QName(root).localname].name
        if not self.suporta(servico):
            raise Refused(f.error(f.MENSAGEM_FORA_DO_PADRAO,
                                  f"A operadora {self.nome} não recebe {servico} pelo web service.",
                                  etree.QName(root).localname))
        return _Documento(root, servico, servico == "tissLoteGuias")

    def _partes(self, documento: _Documento, encoding: str) -> list[Part]:
        if documento.lote:
            return split_lote(documento.root, self._limits, encoding)
        return [whole(documento.root, self._limits, encoding)]


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


def _normaliza(texto: str) -> str:
    """Case, accents, punctuation and spacing do not tell two status names apart."""
    sem_acento = unicodedata.normalize("NFKD", texto).encode("ascii", "ignore").decode("ascii")
    return " ".join(re.sub(r"[^\w]+", " ", sem_acento.casefold()).split())
