"""PASA – Plano de Assistência à Saúde do Aposentado da Vale (registro ANS 331988), Benner Conecta.

Source: "Treinamento: Conecta" (shared/seeds/001_*). What it says:
- "Cada Lote de Pagamento deverá estar relacionado a apenas um arquivo XML. Esse arquivo XML
  deverá conter um máximo de 100 guias": one lote per XML, at most 100 guides (split);
- upload "respeitando o tamanho máximo informado de 15MB": each part at most 15 MB (split by
  size too; 15 000 000 bytes, the smaller reading of "15MB");
- críticas carry Table 38 codes: "1206 CPF / CNPJ INVÁLIDO Detalhes: prestador não localizado na
  operadora" (cabeçalho/origem/identificacaoPrestador/CNPJ) — the sender check is the gateway
  front's (it knows the provider's code at each operator), not a lote rule here;
- two steps: the XML import ("Em processamento", "Inválido", "Importado com Sucesso": "o arquivo
  ainda não foi recebido pela Operadora") then the lote de pagamento sent to the operator, which
  gets the protocol (PEG); protocol steps "Não Enviado", "Enviado para a Operadora", "Em
  Análise", "Liberado para Faturamento", "Faturado" (payment date set).
"""

from types import MappingProxyType

from adapters.base import STATUS_TISS, Adapter

MB = 1000 * 1000


class Pasa(Adapter):
    nome = "PASA"
    max_guias_lote = 100  # "um máximo de 100 guias"
    max_bytes = 15 * MB  # "tamanho máximo informado de 15MB"
    um_tipo_de_guia_por_lote = True  # the lote de pagamento has one "Tipo de Guia"
    exige_assinatura = False
    STATUS = MappingProxyType({
        **STATUS_TISS,
        # Import of the XML: before the lote de pagamento, the operator has received nothing.
        "Em processamento": 7,
        "Inválido": 7,
        "Importado com sucesso": 7,
        # Situação do lote / do protocolo.
        "Não enviado": 7,
        "Lote não enviado": 7,
        "Aberto": 7,
        "Fechado (envio pendente)": 7,
        "Enviado para a Operadora": 1,  # "o protocolo chegou à Operadora e está aguardando"
        "Lote enviado para a Operadora": 1,
        "Enviado à operadora": 1,
        "Em análise": 2,  # "É nesta etapa que serão geradas as glosas"
        "Em análise pela Operadora": 2,
        "Liberado para faturamento": 5,  # conferência done, glosas generated, not yet billed
        "Faturado": 3,  # "é gerada a data de pagamento prevista": released for payment
    })
    CRITICAS = MappingProxyType({
        "prestador não localizado na operadora": "1206",  # the manual's crítica detail
        "Limite máximo permitido por lote é de 100 guias": "5015",
        "tamanho máximo": "3166",
    })


ADAPTER = Pasa
