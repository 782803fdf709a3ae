"""The adapter API: what the gateway does to an accepted message so that one operator takes it,
and what that operator would say about it.

An adapter is a subclass of :class:`Adapter` naming its operator, the rules of its manual
(``rules``, from :mod:`adapters.rules`, the data the simulated operators use too) and the status
names its portal shows (``STATUS``); :class:`Destino` is what the gateway's configuration says
about the operator (versions its web service takes, hash variant, signing key).

The work, in order:

- ``avaliar`` (at accept time, answered to the provider at once): the sender of a lote, the
  operator's rules, the service it takes, and whether the message survives the version
  conversion; an :class:`Avaliacao` tells the críticas that refuse the whole message from those
  that refuse one guide alone (partial sending). ``criticas`` lists them all;
- ``preparar`` (at send time): one ``*WS`` document per ``Envio``. Where the operator takes guides
  one by one, the guides its rules refuse are left out first. A lote is split into parts
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
from collections.abc import Callable, Collection, Mapping, Sequence
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
from adapters.guias import MAX_GUIAS_PADRAO, Guia, ans_path, guias_do_lote, lote_guias
from adapters.rules import (
    CODIGO_PRESTADOR_INVALIDO,
    CPF_CNPJ_INVALIDO,
    ORIGEM_PRESTADOR,
    PRESTADOR_NAO_LOCALIZADO,
    OperadoraIdentity,
    OperadoraRules,
    Violation,
    codigo_prestador_nao_localizado,
    violations,
)
from adapters.splitting import (
    ARQUIVO_ACIMA_DO_TAMANHO,
    MARGEM_BYTES,
    ST_TEXTO12,
    Limits,
    Part,
    split_lote,
    whole,
)
from gateway.message import arquivo as forma_arquivo
from gateway.message import findings as f
from gateway.message import hashing, reader
from gateway.message.findings import Finding
from gateway.message.reader import TissMessage
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.services import ANS_NS, MENSAGEM_TISS, SERVICE_BY_REQUEST, SERVICES
from gateway.message.tables import STATUS_PROTOCOLO

if TYPE_CHECKING:
    from gateway.config import Operadora

__all__ = ["STATUS_TISS", "TODAS_OPERACOES", "Adapter", "AdapterError", "Avaliacao", "Destino", "Envio"]

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


@dataclass(frozen=True)
class Avaliacao:
    """What the operator would say of a message at acceptance (:meth:`Adapter.avaliar`).

    ``gerais`` refuse the whole message. ``por_guia`` (an operator that takes guides one by one,
    ``envio_parcial``) refuse only their guide, keyed by numeroGuiaPrestador: the lote is taken
    without them, and :meth:`Adapter.preparar` leaves them out of what it sends.
    """

    gerais: tuple[Finding, ...] = ()
    por_guia: Mapping[str, tuple[Finding, ...]] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "por_guia", MappingProxyType(dict(self.por_guia)))

    @property
    def todas(self) -> list[Finding]:
        """Every crítica: the message's first, then each refused guide's."""
        return [*self.gerais, *(x for found in self.por_guia.values() for x in found)]

    def recusando(self, *found: Finding) -> Avaliacao:
        """This, with ``found`` refusing the whole message too."""
        return Avaliacao((*self.gerais, *found), self.por_guia) if found else self


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
    def prestador_cadastrado(self) -> bool:
        """Takes lotes only from providers it has (the gateway has their code there)."""
        return self.rules.prestador_cadastrado

    @property
    def codigos_regras(self) -> frozenset[str]:
        """Table 38 codes of the rules checked at acceptance (the others are met by the split)."""
        codigos = {rule.code for rule in self.rules.rules if not rule.by_split}
        if self.prestador_cadastrado:
            codigos |= {CODIGO_PRESTADOR_INVALIDO, CPF_CNPJ_INVALIDO}
        return frozenset(codigos)

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
        """Every crítica of :meth:`avaliar` (those that refuse one guide alone included), the ones
        that refuse the whole message first."""
        return self.avaliar(message).todas

    def avaliar(self, message: TissMessage, *, remetente_cadastrado: bool = True) -> Avaliacao:
        """What the operator would refuse in ``message``, said now: the sender of a lote
        (``remetente_cadastrado``: the gateway has the provider's code at this operator), its
        rules, the service, the version conversion and the file size. Codes are in dm_tipoGlosa
        of the message's version."""
        try:
            alvo = self._versao_alvo(message)
            if (alvo == message.version and message.kind in SERVICE_BY_REQUEST
                    and self._limits.cabe(len(message.data))):
                return self._avaliar_sem_conversao(message, remetente_cadastrado)
            documento = self._documento(message)
        except Refused as exc:
            return Avaliacao((exc.finding,))
        avaliacao = self._avaliar_lote(message, remetente_cadastrado) if documento.lote else Avaliacao()
        _sem_guias(documento.root, avaliacao.por_guia)  # converted as it will be sent: without them
        try:
            partes = self._partes(documento, message.encoding)
        except Refused as exc:
            return avaliacao.recusando(exc.finding)
        found: list[Finding] = []
        for parte in partes:
            stamp_padrao(parte.root, alvo)
            erros = schema_criticas(self.registry, parte.root, alvo, message.encoding)
            found.extend(criticas_de_conversao(erros, message.version or "", alvo, self.nome, parte.root))
        return avaliacao.recusando(*found)

    def _avaliar_sem_conversao(self, message: TissMessage, remetente_cadastrado: bool) -> Avaliacao:
        """The common case, read from the message as it is: same version, a file that fits. The
        parts a split makes have the structure the whole message was validated with, so there
        is no copy to make and nothing to validate again: only the operator's own rules."""
        servico = SERVICE_BY_REQUEST[message.kind].name
        if not self.suporta(servico):
            raise Refused(f.error(f.MENSAGEM_FORA_DO_PADRAO,
                                  f"A operadora {self.nome} não recebe {servico} pelo web service.",
                                  message.kind))
        if servico != "tissLoteGuias":
            return Avaliacao()
        return self._avaliar_lote(message, remetente_cadastrado)

    def _avaliar_lote(self, message: TissMessage, remetente_cadastrado: bool) -> Avaliacao:
        """The sender and the operator's rules on a lote. A lote none of whose guides is left is
        refused whole, like the operator does."""
        guias = guias_do_lote(lote_guias(message.root))
        gerais, por_guia = self._regras_lote(guias)
        if self.prestador_cadastrado and not remetente_cadastrado:
            gerais.insert(0, self._critica_remetente(message))  # the operator's first check
        if por_guia and {g.numero for g in guias} <= por_guia.keys():
            return Avaliacao((*gerais, *(x for found in por_guia.values() for x in found)))
        return Avaliacao(tuple(gerais), {numero: tuple(found) for numero, found in por_guia.items()})

    def _regras_lote(self, guias: Sequence[Guia]) -> tuple[list[Finding], dict[str, list[Finding]]]:
        """The críticas of the operator's rules on a lote's guides: those that refuse the lote,
        and (``envio_parcial``) those that refuse only their guide, by numeroGuiaPrestador. The
        limits on a lote's size and guide types are not críticas: the lote is split."""
        gerais: list[Finding] = []
        por_guia: dict[str, list[Finding]] = {}
        for violation in violations(self.rules, guias, self.operadora):
            if self.envio_parcial and violation.guia is not None:
                por_guia.setdefault(violation.guia.numero, []).append(self._critica(violation))
            else:
                gerais.append(self._critica(violation))
        return gerais, por_guia

    def _critica_remetente(self, message: TissMessage) -> Finding:
        """A lote from a provider the operator does not have (``prestador_cadastrado``), in the
        operator's words, on the element of cabecalho/origem that names the sender."""
        origem = message.root.find(ans_path(ORIGEM_PRESTADOR))
        elemento = next(origem.iterchildren(etree.Element), None) if origem is not None else None
        nome = etree.QName(elemento).localname if elemento is not None else "CNPJ"
        texto = PRESTADOR_NAO_LOCALIZADO[:1].upper() + PRESTADOR_NAO_LOCALIZADO[1:]
        return f.error(codigo_prestador_nao_localizado(nome),
                       f"{texto} (regra da operadora {self.nome}): o gateway não tem o código deste "
                       "prestador nesta operadora.", f"{ORIGEM_PRESTADOR}/{nome}",
                       elemento.sourceline if elemento is not None else None)

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
            if documento.lote and self.envio_parcial:
                self._sem_recusadas(message, documento.root)
            partes = self._partes(documento, message.encoding)
        except Refused as exc:
            raise AdapterError(f"mensagem não enviável a {self.nome}: {exc.finding.message}") from None
        numeros = _sequenciais(sequenciais, len(partes))
        return [self._envio(documento.servico, parte, alvo, numero, agora, message.encoding)
                for parte, numero in zip(partes, numeros, strict=True)]

    def _sem_recusadas(self, message: TissMessage, root: etree._Element) -> None:
        """Leave out of ``root`` (the copy of ``message`` to send) the guides the operator's rules
        refuse one by one: the same rules on the same message as at acceptance, so the guides the
        provider was told were refused never reach the operator (the parts are cut afterwards, and
        each is stamped and hashed without them)."""
        _gerais, por_guia = self._regras_lote(guias_do_lote(lote_guias(message.root)))
        _sem_guias(root, por_guia)
        if por_guia and not guias_do_lote(lote_guias(root)):
            raise AdapterError(f"{self.nome}: todas as guias do lote são recusadas pelas regras da "
                               "operadora (criticas() deveria tê-lo dito)")

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

    def arquivo(self, envio_ws: bytes) -> bytes:
        """A part :meth:`preparar` made (its ``*WS`` bytes, as kept) as the ``mensagemTISS`` file
        the operator's portal takes: same cabeçalho and guides, no loginSenhaPrestador (the portal
        logs its user in), hashed in the operator's variant, in the part's encoding, signed where
        the operator signs, valid in the part's version (gateway.message.arquivo)."""
        parte = reader.read(envio_ws)
        root = forma_arquivo.para_arquivo(parte.root)
        corpo = forma_arquivo.escrever(root, self.destino.hash_variante, parte.encoding)
        if self.assina:
            from gateway.security import xmldsig

            xmldsig.sign(root, self.destino.chave_pem or b"", list(self.destino.cadeia_pem))
            corpo = etree.tostring(etree.ElementTree(root), encoding=parte.encoding, xml_declaration=True)
        erros = schema_criticas(self.registry, root, parte.version or "", parte.encoding)
        if erros:
            raise AdapterError(f"{self.nome}: o arquivo não valida no schema {parte.version}: "
                               f"{erros[0].message}")
        return corpo

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


def _sem_guias(root: etree._Element, numeros: Collection[str]) -> None:
    """Remove from a lote (``root``, a copy) its guides numbered ``numeros``."""
    if not numeros:
        return
    for guia in guias_do_lote(lote_guias(root)):
        parent = guia.elemento.getparent()
        if guia.numero in numeros and parent is not None:
            parent.remove(guia.elemento)


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
