"""PASA – Plano de Assistência à Saúde do Aposentado da Vale (registro ANS 331988), Benner Conecta.

Source: "Treinamento: Conecta" (shared/seeds/001_*). Its lote rules (one lote per XML of at most
100 guides, at most 15MB) are :data:`adapters.rules.PASA`. What it says of the portal:
- críticas carry Table 38 codes: "1206 CPF / CNPJ INVÁLIDO Detalhes: prestador não localizado na
  operadora" (cabeçalho/origem/identificacaoPrestador/CNPJ) — the sender check is the gateway
  front's (it knows the provider's code at each operator), not a lote rule;
- two steps: the XML import ("Em processamento", "Inválido", "Importado com Sucesso": "o arquivo
  ainda não foi recebido pela Operadora") then the lote de pagamento sent to the operator, which
  gets the protocol (PEG); protocol steps "Não Enviado", "Enviado para a Operadora", "Em
  Análise", "Liberado para Faturamento", "Faturado" (payment date set).
"""

from types import MappingProxyType

from adapters.base import STATUS_TISS, Adapter
from adapters.rules import PASA


class Pasa(Adapter):
    nome = "PASA"
    rules = PASA
    STATUS = MappingProxyType({
        **STATUS_TISS,
        # Situação do lote / do protocolo ("Não enviado" first: the name shown for 7, nome_status).
        "Não enviado": 7,
        "Lote não enviado": 7,
        "Aberto": 7,
        "Fechado (envio pendente)": 7,
        # Import of the XML: before the lote de pagamento, the operator has received nothing.
        "Em processamento": 7,
        "Inválido": 7,
        "Importado com sucesso": 7,
        "Enviado para a Operadora": 1,  # "o protocolo chegou à Operadora e está aguardando"
        "Lote enviado para a Operadora": 1,
        "Enviado à operadora": 1,
        "Em análise": 2,  # "É nesta etapa que serão geradas as glosas"
        "Em análise pela Operadora": 2,
        "Liberado para faturamento": 5,  # conferência done, glosas generated, not yet billed
        "Faturado": 3,  # "é gerada a data de pagamento prevista": released for payment
    })


ADAPTER = Pasa
