"""CASSEMS – Caixa de Assistência dos Servidores do Estado de Mato Grosso do Sul (registro ANS
413534), e-Autorizador / Faturamento Digital.

Source: Faturamento Digital manual (shared/seeds/003_*). Its lote rules (at most 50
authorizations per lote, dental guides only, only complete guides) are
:data:`adapters.rules.CASSEMS`. Its statuses are not described beyond "Salvar Lote" / "Enviar
Lote".
"""

from types import MappingProxyType

from adapters.base import STATUS_TISS, Adapter
from adapters.rules import CASSEMS


class Cassems(Adapter):
    nome = "CASSEMS"
    rules = CASSEMS
    STATUS = MappingProxyType({
        **STATUS_TISS,
        "Lote salvo": 7,  # "Salvar Lote – salva o lote": not sent yet
        "Lote enviado": 1,  # "Enviar Lote – envia o lote para faturamento"
    })


ADAPTER = Cassems
