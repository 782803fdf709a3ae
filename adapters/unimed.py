"""Unimed São José dos Campos (registro ANS 331872), faturamento TISS sent by Amplimed.

Source: "AMPLIMED – Faturamento: geração/conferência e envio de lote" (shared/seeds/002_*). Its
lote rules (one XML per guide type; the SP/SADT executante, "campo 30", filled and not the
operator itself, whose registro ANS, own codes and CNPJ come from ``Destino``) are
:data:`adapters.rules.UNIMED`. Under the schema a loteGuias (ctm_guiaLote, a choice of one guide
element) already holds one type: the "mixing" the manual speaks of is a day's fatura with
consultas and SP/SADT, which the provider's software sends as separate lotes.
What it says of the portal: each XML sent has "Consultar protocolo"; one with an error keeps
"Enviar Arquivo XML". The fatura statuses (Aberta, Fechada, Finalizada) are the clinic's, not
the operator's.
"""

from types import MappingProxyType

from adapters.base import STATUS_TISS, Adapter
from adapters.rules import UNIMED


class Unimed(Adapter):
    nome = "Unimed São José dos Campos"
    rules = UNIMED
    STATUS = MappingProxyType({
        **STATUS_TISS,
        "Enviar arquivo XML": 7,  # the XML with an error was not sent
        "Lote de guias enviado com sucesso": 1,  # first: the name shown for status 1 (nome_status)
        "Consultar protocolo": 1,  # sent: it has a protocol to consult
    })


ADAPTER = Unimed
