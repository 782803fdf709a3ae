"""TISS domain tables the gateway, the adapters and the simulated operators share: the versions
the project speaks, dm_statusProtocolo with what each status means for a lote's progress.
"""

# Padrao versions the gateway can read and answer in (their schemas: gateway.message.schema_registry).
VERSIONS = ("4.01.00", "4.02.00", "4.03.00")

# dm_statusProtocolo
STATUS_PROTOCOLO = {
    1: "Recebido",
    2: "Em análise",
    3: "Liberado para pagamento",
    4: "Encerrado sem pagamento",
    5: "Analisado e aguardando liberação para pagamento",
    6: "Pagamento efetuado",
    7: "Não localizado",
    8: "Aguardando informação complementar",
    9: "Cancelado",
    10: "Bloqueio judicial",
}
RECEBIDO = 1
# How far along a lote is, for "the least advanced part wins" when a lote went in several parts.
PROGRESS = {1: 1, 2: 2, 8: 3, 5: 4, 3: 5, 10: 5, 6: 6, 4: 6, 9: 6, 7: 0}
# Statuses the operator will not change any more: tracking stops there.
FINAL_STATUS = frozenset({4, 6, 7, 9})
# Statuses whose values and glosas are the operator's analysis (not just what was received).
STATUS_ANALISADOS = frozenset({3, 4, 5, 6, 10})
