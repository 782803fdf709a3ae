"""IPASGO – Instituto de Assistência dos Servidores Públicos do Estado de Goiás (registro ANS
424188), SIFE (Faturas Eletrônicas Web).

Source: "Emissão de guias / Faturas eletrônicas web" (shared/seeds/004_*). Its lote rules
(partial sending; honorários name who receives them; signed messages, which the manual does not
mention but the operator requires) are :data:`adapters.rules.IPASGO`. Whether the matrícula
exists (1203) only IPASGO knows. "Extrato de fatura [...] só fica completo 24 horas depois do
último envio".
"""

from types import MappingProxyType

from adapters.base import STATUS_TISS, Adapter
from adapters.rules import IPASGO


class Ipasgo(Adapter):
    nome = "IPASGO"
    rules = IPASGO
    STATUS = MappingProxyType({
        **STATUS_TISS,
        "Baixada": 1,  # "as guias baixadas já foram enviadas ao IPASGO"
        "Enviada": 1,  # "a medida que salva as guias são enviadas"
    })


ADAPTER = Ipasgo
