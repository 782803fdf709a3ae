"""Unimed São José dos Campos (registro ANS 331872), faturamento TISS sent by Amplimed.

Source: "AMPLIMED – Faturamento: geração/conferência e envio de lote" (shared/seeds/002_*):
- "foram gerados 2 XML's, 1 de consulta e um de SADT, envie os dois": one XML per guide type.
  Under the schema a loteGuias (ctm_guiaLote, a choice of one guide element) and so a
  loteGuiasWS or a mensagemTISS already holds one type: the "mixing" the manual speaks of is a
  day's fatura with consultas and SP/SADT, which the provider's software sends as separate
  lotes. The split by type here only acts on a tree that skipped validation;
- "Todas as guias SADT's devem estar com o campo 30 preenchido com o nome do médico executante
  do procedimento. Caso esteja como Unimed São José dos Campos, no envio de lote o sistema
  identificará esse erro [...] e não fará o envio": SP/SADT field 30 is the contratado
  executante; since 4.00.00 its name left the XML and ``dadosExecutante/contratadoExecutante``
  (código na operadora, CPF or CNPJ) identifies it. It must be filled and must not be the
  operator itself (its registro ANS or own codes, or its CNPJ, from ``Destino``): 1311
  PRESTADOR EXECUTANTE NÃO INFORMADO, the lote is not sent;
- each XML sent has "Consultar protocolo"; one with an error keeps "Enviar Arquivo XML".
  The fatura statuses (Aberta, Fechada, Finalizada) are the clinic's, not the operator's.
"""

from collections.abc import Iterator, Sequence
from types import MappingProxyType

from lxml import etree

from adapters.base import PRESTADOR_EXECUTANTE_NAO_INFORMADO, STATUS_TISS, Adapter, Guia, ans_path
from gateway.message.findings import Finding
from gateway.message.identificacao import normaliza_documento

_EXECUTANTE = "dadosExecutante/contratadoExecutante"


class Unimed(Adapter):
    nome = "Unimed São José dos Campos"
    max_guias_lote = None  # the manual sets none: the Padrão's 100
    max_bytes = None
    um_tipo_de_guia_por_lote = True  # one XML of consulta, another of SP/SADT
    exige_assinatura = False
    CODIGOS_REGRAS = frozenset({PRESTADOR_EXECUTANTE_NAO_INFORMADO})
    STATUS = MappingProxyType({
        **STATUS_TISS,
        "Enviar arquivo XML": 7,  # the XML with an error was not sent
        "Consultar protocolo": 1,  # sent: it has a protocol to consult
        "Lote de guias enviado com sucesso": 1,
    })
    CRITICAS = MappingProxyType({
        "campo 30": PRESTADOR_EXECUTANTE_NAO_INFORMADO,
        "médico executante": PRESTADOR_EXECUTANTE_NAO_INFORMADO,
        "um arquivo XML para cada tipo de guia": "1301",
    })

    def regras_lote(self, guias: Sequence[Guia]) -> Iterator[Finding]:
        for guia in guias:
            if guia.tipo == "sp-sadt":
                yield from self._executante(guia)

    def _executante(self, guia: Guia) -> Iterator[Finding]:
        contratado = guia.elemento.find(ans_path(_EXECUTANTE))
        ident = next(contratado.iterchildren(etree.Element), None) if contratado is not None else None
        valor = (ident.text or "").strip() if ident is not None else ""
        local = f"{guia.local}/{_EXECUTANTE}"
        if not valor:
            yield self.critica(PRESTADOR_EXECUTANTE_NAO_INFORMADO,
                               f"Guia SP/SADT {guia.numero} sem o contratado executante (campo 30): "
                               "informe o médico executante do procedimento", local, contratado)
        elif self._e_a_operadora(etree.QName(ident).localname, valor):
            yield self.critica(PRESTADOR_EXECUTANTE_NAO_INFORMADO,
                               f"Guia SP/SADT {guia.numero} com a própria operadora ({self.nome}) como "
                               "contratado executante (campo 30): informe o médico executante do "
                               "procedimento", local, ident)

    def _e_a_operadora(self, kind: str, valor: str) -> bool:
        if kind == "cnpjContratado":
            return self.destino.cnpj is not None and normaliza_documento(valor) == \
                normaliza_documento(self.destino.cnpj)
        return kind == "codigoPrestadorNaOperadora" and \
            valor in {self.destino.registro_ans, *self.destino.codigos_proprios}


ADAPTER = Unimed
