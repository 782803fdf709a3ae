"""Capital Prev (registro ANS 329665), portal do prestador TOTVS.

Source: "Manual Operacional – Faturamento – Envio de XML" (shared/seeds/000_*). What it says:
- the XML is uploaded, "processamento e validação do arquivo", and críticas are shown per
  processamento ("Ver Crítica"); a lote criticized there has no "Lote Operadora" (no protocol);
- "Caso não haja inconsistências no arquivo, o status ficará [...] 02 em análise [...] e quando
  finalizados, ficará com o status 03 - Liberado para pagamento": the portal numbers are
  dm_statusProtocolo's;
- the status legend has nine entries (mapped in ``STATUS``);
- no guide limit, file size, version or signature is stated: the Padrão's rules apply (100 guides,
  one guide type per lote: the lote list has one "Tipo" per lote).
"""

from types import MappingProxyType

from adapters.base import STATUS_TISS, Adapter


class CapitalPrev(Adapter):
    nome = "Capital Prev"
    max_guias_lote = None
    max_bytes = None
    um_tipo_de_guia_por_lote = True
    exige_assinatura = False
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
    # The manual only shows "Ver crítica": the portal's críticas quote their Table 38 code,
    # which Adapter.critica_tiss reads.
    CRITICAS = MappingProxyType({})


ADAPTER = CapitalPrev
