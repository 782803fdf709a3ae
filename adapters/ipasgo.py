"""IPASGO – Instituto de Assistência dos Servidores Públicos do Estado de Goiás (registro ANS
424188), SIFE (Faturas Eletrônicas Web).

Source: "Emissão de guias / Faturas eletrônicas web" (shared/seeds/004_*). What it says:
- "A medida que salva as guias são enviadas ao IPASGO"; "O envio pode ser feito parcialmente,
  não sendo necessário o envio único como era feito anteriormente": a crítica on one guide
  refuses that guide only (``envio_parcial``); no guide limit: the Padrão's 100;
- "Nos casos das guias de GTA que tenha que digitar honorários, clicar no campo de honorários e
  colocar a matrícula de quem receberá o mesmo": in ctm_honorarioIndividualGuia who receives is
  the contratado executante, ``dadosContratadoExecutante/codigonaOperadora`` (its code at the
  operator, the IPASGO matrícula). Blank: 1311 PRESTADOR EXECUTANTE NÃO INFORMADO. Whether the
  matrícula exists (1203) only IPASGO knows;
- "Extrato de fatura [...] só fica completo 24 horas depois do último envio".
The manual says nothing of signatures; the gateway's configuration of IPASGO requires them
(XMLDSig, ICP-Brasil certificate, manual TISS items 110-113): every message is signed with the
key and certificate configured for it.
"""

from collections.abc import Iterator, Sequence
from types import MappingProxyType

from adapters.base import PRESTADOR_EXECUTANTE_NAO_INFORMADO, STATUS_TISS, Adapter, Guia, ans_path
from gateway.message.findings import Finding

_RECEBEDOR = "dadosContratadoExecutante/codigonaOperadora"


class Ipasgo(Adapter):
    nome = "IPASGO"
    max_guias_lote = None
    max_bytes = None
    um_tipo_de_guia_por_lote = True
    exige_assinatura = True
    envio_parcial = True  # "o envio pode ser feito parcialmente"
    CODIGOS_REGRAS = frozenset({PRESTADOR_EXECUTANTE_NAO_INFORMADO})
    STATUS = MappingProxyType({
        **STATUS_TISS,
        "Baixada": 1,  # "as guias baixadas já foram enviadas ao IPASGO"
        "Enviada": 1,  # "a medida que salva as guias são enviadas"
    })
    CRITICAS = MappingProxyType({
        "sem a matrícula": PRESTADOR_EXECUTANTE_NAO_INFORMADO,
        "matrícula de quem receberá": PRESTADOR_EXECUTANTE_NAO_INFORMADO,
        "não localizada": "1203",
    })

    def regras_lote(self, guias: Sequence[Guia]) -> Iterator[Finding]:
        for guia in guias:
            if guia.tipo != "honorarios":
                continue
            elemento = guia.elemento.find(ans_path(_RECEBEDOR))
            if elemento is None or not (elemento.text or "").strip():
                yield self.critica(PRESTADOR_EXECUTANTE_NAO_INFORMADO,
                                   f"Guia de honorários {guia.numero} sem a matrícula de quem receberá os "
                                   "honorários", f"{guia.local}/{_RECEBEDOR}",
                                   elemento if elemento is not None else guia.elemento)


ADAPTER = Ipasgo
