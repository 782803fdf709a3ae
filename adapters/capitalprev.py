"""Capital Prev (registro ANS 329665), portal do prestador TOTVS.

Source: "Manual Operacional – Faturamento – Envio de XML" (shared/seeds/000_*). Its lote rules
are :data:`adapters.rules.CAPITALPREV` (the Padrão's: the manual states no limit of its own).
What it says of the portal:
- the XML is uploaded, "processamento e validação do arquivo", and críticas are shown per
  processamento ("Ver Crítica"); a lote criticized there has no "Lote Operadora" (no protocol);
- "Caso não haja inconsistências no arquivo, o status ficará [...] 02 em análise [...] e quando
  finalizados, ficará com o status 03 - Liberado para pagamento": the portal numbers are
  dm_statusProtocolo's;
- the status legend has nine entries (mapped in ``STATUS``).
"""

from types import MappingProxyType

from adapters.base import STATUS_TISS, Adapter
from adapters.rules import CAPITALPREV


class CapitalPrev(Adapter):
    nome = "Capital Prev"
    rules = CAPITALPREV
    STATUS = MappingProxyType({
        **STATUS_TISS,
        # The nine entries of the portal's legend ("Figura 8 - Lotes de faturamento").
        "Não enviado para operadora": 7,  # nothing at the operator yet: no protocol
        "Necessário ajuste no lote": 7,  # criticized at upload: no "Lote Operadora" (protocol)
        "Em processamento": 1,  # upload received, being processed and validated
        "Recebido": 1,
        "Em análise": 2,  # "02 em análise"
        "Liberado para pagamento": 3,  # "03 - Liberado para pagamento"
        "Encerrado sem pagamento": 4,
        "Analisado e aguardando liberação para o pagamento": 5,
        "Pagamento efetuado": 6,
    })


ADAPTER = CapitalPrev
