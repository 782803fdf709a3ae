"""A fake operator for a gateway worker and tracker run in the test's own process: each call answered
at once with what the test set, in the answers the gateway's own builders write (schema-valid,
hashed), under the registro ANS the call went to.

``recusa``: numeroLote of lotes (or parts) refused with a mensagemErro; ``deixa_de_fora``: guides
(numeroGuiaPrestador) a receipt does not list (the operator did not take them); ``status``: the
statusProtocolo of its situação answers; ``glosa``: when set, the situação answers report every
guide analysed, ``glosa`` of it glosado with motive :data:`GLOSA`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from lxml import etree

from gateway.delivery.client import Answer
from gateway.inbound.status import guia_recebida
from gateway.message import reader, responses
from gateway.message.lote import LoteLido, read_lote
from gateway.message.services import ANS_NS, SERVICE_BY_NAME

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
GLOSA = ("1801", "Procedimento inválido")  # not ASCII: the answers' encodings show
RECUSA = "1301"
_A = f"{{{ANS_NS}}}"


@dataclass
class FakeOperadora:
    recusa: set[str] = field(default_factory=set)
    deixa_de_fora: set[str] = field(default_factory=set)
    status: int = 1
    glosa: Decimal | None = None
    lotes: dict[str, LoteLido] = field(default_factory=dict)  # the operator's protocol -> lote taken
    calls: list[tuple[str, str]] = field(default_factory=list)  # (registro ANS, service)

    def client(self, registro_ans: str, versao: str) -> _Client:
        return _Client(self, registro_ans)

    def analisada(self, guia: responses.GuiaRecebida) -> responses.GuiaRecebida:
        """A guide as the situação answers report it once analysed (``glosa`` set)."""
        if self.glosa is None:
            return guia
        valores = responses.ValorTotal(guia.valor_informado, self.glosa, guia.valor_informado - self.glosa)
        return responses.GuiaRecebida(guia.numero_guia_prestador, guia.numero_guia_operadora,
                                      guia.numero_carteira, guia.valor_informado, odonto=guia.odonto,
                                      valores=valores, glosas=(GLOSA,))

    def answer(self, registro_ans: str, servico: str, corpo: bytes) -> Answer:
        self.calls.append((registro_ans, servico))
        message = reader.read(corpo)
        ctx = responses.reply_context(message.root, registro_ans=registro_ans, sequencial="91", now=NOW)
        if servico == "tissLoteGuias":
            root = self._recibo(ctx, read_lote(message.root))
        else:
            numero = message.root.findtext(f".//{_A}numeroProtocolo") or ""
            root = self._situacao(ctx, numero, self.lotes[numero])
        return Answer(200, responses.envelope(root), "text/xml")

    def _recibo(self, ctx: responses.ReplyContext, lido: LoteLido) -> etree._Element:
        if lido.numero_lote in self.recusa:
            return responses.mensagem_erro(ctx, SERVICE_BY_NAME["tissLoteGuias"], RECUSA, "lote recusado")
        numero = f"OP{len(self.lotes) + 1}"
        self.lotes[numero] = lido
        recebidas = [g for g in lido.guias if g.numero_guia_prestador not in self.deixa_de_fora]
        return responses.protocolo_recebimento(
            ctx, numero_lote=lido.numero_lote, numero_protocolo=numero, data_envio_lote=NOW.date(),
            valor_total=sum((g.valor_informado for g in recebidas), Decimal("0.00")),
            guias=[guia_recebida(g, lido.tipo_guia) for g in recebidas])

    def _situacao(self, ctx: responses.ReplyContext, numero: str, lido: LoteLido) -> etree._Element:
        guias = [self.analisada(guia_recebida(g, lido.tipo_guia)) for g in lido.guias]
        total = sum((g.valor_informado for g in guias), Decimal("0.00"))
        glosado = (self.glosa or Decimal("0.00")) * len(guias)
        return responses.situacao_protocolo(
            ctx, numero_protocolo=numero, numero_lote=lido.numero_lote, status=self.status,
            data_envio_lote=NOW.date(), valor_total=responses.ValorTotal(total, glosado, total - glosado),
            guias=guias)


@dataclass
class _Client:
    operadora: FakeOperadora
    registro_ans: str

    def call(self, servico: str, corpo: bytes) -> Answer:
        return self.operadora.answer(self.registro_ans, servico, corpo)
