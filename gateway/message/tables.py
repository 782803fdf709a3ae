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
# The gateway's own protocol status beyond dm_statusProtocolo: the operator refused the whole lote
# (every part) with a crítica. Never written in a TISS answer (the status service answers such a
# lote with the operator's crítica); the lote's number is free again, for the corrected lote.
RECUSADO_PELA_OPERADORA = 99
# Every protocol status a person reads: dm_statusProtocolo and the gateway's own.
SITUACOES_PROTOCOLO = {**STATUS_PROTOCOLO, RECUSADO_PELA_OPERADORA: "Recusado pela operadora"}
# How far along a lote is, for "the least advanced part wins" when a lote went in several parts.
PROGRESS = {1: 1, 2: 2, 8: 3, 5: 4, 3: 5, 10: 5, 6: 6, 4: 6, 9: 6, 7: 0, RECUSADO_PELA_OPERADORA: 0}

# What became of each guide of a lote (guia.situacao), for every view: accepted (by the gateway and,
# once delivered, by the operator), refused with its crítica (by the gateway's partial sending or
# by the operator's), cancelled (tissCancelaGuia the operator confirmed).
GUIA_ACEITA, GUIA_RECUSADA, GUIA_CANCELADA = "aceita", "recusada", "cancelada"
SITUACOES_GUIA = {GUIA_ACEITA: "Aceita", GUIA_RECUSADA: "Recusada", GUIA_CANCELADA: "Cancelada"}
# Statuses the operator will not change any more: tracking stops there.
FINAL_STATUS = frozenset({4, 6, 7, 9, RECUSADO_PELA_OPERADORA})
# Statuses whose values and glosas are the operator's analysis (not just what was received).
STATUS_ANALISADOS = frozenset({3, 4, 5, 6, 10})
