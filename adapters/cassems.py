"""CASSEMS – Caixa de Assistência dos Servidores do Estado de Mato Grosso do Sul (registro ANS
413534), e-Autorizador / Faturamento Digital.

Source: Faturamento Digital manual (shared/seeds/003_*). What it says:
- "Cada lote deve conter no máximo 50 autorizações": split at 50;
- "Novo Lote [...] Ano/Mês e Tipo de Guia", "Consultar Lotes Odonto", "Tipo Guia, sendo somente
  Odontológica", "Cadastrar/Editar Guia Odontológica": the channel takes dental guides only
  (1301 TIPO DE GUIA INVÁLIDO for any other type);
- "busca somente as autorizações com status completo, ou seja, todos os campos obrigatórios da
  autorização preenchidos" ("campos que possuem asterisco (*)"): a guide enters a lote only when
  complete. The fields the XSD leaves optional in cto_guiaOdontologia but an e-Autorizador
  authorization always has (``CAMPOS_OBRIGATORIOS``) must be filled: 3111 CAMPO CONDICIONADO
  NÃO PREENCHIDO OU INCORRETO, and the lote goes back for correction;
- statuses are not described beyond "Salvar Lote" / "Enviar Lote".
"""

from collections.abc import Iterator, Sequence
from types import MappingProxyType

from lxml import etree

from adapters.base import (
    CAMPO_CONDICIONADO,
    STATUS_TISS,
    TIPO_DE_GUIA_INVALIDO,
    Adapter,
    Guia,
    ans_path,
    nome_tipo,
)
from gateway.message.findings import Finding
from gateway.message.services import ANS_NS

_NS = {"ans": ANS_NS}
TIPOS_GUIA = ("odonto",)
# "Completo": a path "a/b" needs b filled in every a, and at least one a.
CAMPOS_OBRIGATORIOS: dict[str, tuple[str, ...]] = {
    "odonto": (
        "dataAutorizacao",  # the guide comes from an authorization: its date, senha and validity
        "senhaAutorizacao",
        "validadeSenha",
        "dadosProfissionaisResponsaveis/nomeProfSolic",  # who asked for it
        "dadosProfissionaisResponsaveis/croSolic",
        "dadosProfissionaisResponsaveis/ufSolic",
        "dadosProfissionaisResponsaveis/cbosSolic",
        "dataTerminoTrat",  # only "concluídas ou abandonadas" authorizations are loaded
    ),
}


class Cassems(Adapter):
    nome = "CASSEMS"
    max_guias_lote = 50  # "no máximo 50 autorizações"
    max_bytes = None
    um_tipo_de_guia_por_lote = True  # a lote has one "Tipo de Guia"
    exige_assinatura = False
    CODIGOS_REGRAS = frozenset({TIPO_DE_GUIA_INVALIDO, CAMPO_CONDICIONADO})
    STATUS = MappingProxyType({
        **STATUS_TISS,
        "Lote salvo": 7,  # "Salvar Lote – salva o lote": not sent yet
        "Lote enviado": 1,  # "Enviar Lote – envia o lote para faturamento"
    })
    CRITICAS = MappingProxyType({
        "no máximo 50 autorizações": "5015",
        "somente odontológica": TIPO_DE_GUIA_INVALIDO,
        "incompleta": CAMPO_CONDICIONADO,
        "status incompleto": CAMPO_CONDICIONADO,
        "campos obrigatórios": CAMPO_CONDICIONADO,
    })

    def regras_lote(self, guias: Sequence[Guia]) -> Iterator[Finding]:
        yield from self._tipos_aceitos(guias)
        for guia in guias:
            yield from self._completa(guia)

    def _tipos_aceitos(self, guias: Sequence[Guia]) -> Iterator[Finding]:
        recusados = list(dict.fromkeys(g.tipo for g in guias if g.tipo not in TIPOS_GUIA))
        if recusados:
            primeira = next(g for g in guias if g.tipo in recusados)
            yield self.critica(TIPO_DE_GUIA_INVALIDO,
                               f"Guias de {', '.join(nome_tipo(t) for t in recusados)} não são aceitas: o "
                               "faturamento digital da CASSEMS recebe somente guias odontológicas",
                               "loteGuias/guiasTISS", primeira.elemento)

    def _completa(self, guia: Guia) -> Iterator[Finding]:
        faltando = [c for c in CAMPOS_OBRIGATORIOS.get(guia.tipo, ()) if not _preenchido(guia.elemento, c)]
        if faltando:
            yield self.critica(CAMPO_CONDICIONADO,
                               f"Guia {guia.numero} incompleta; preencha os campos obrigatórios: "
                               f"{', '.join(faltando)}", f"{guia.local}/{faltando[0]}", guia.elemento)


def _preenchido(guia: etree._Element, caminho: str) -> bool:
    pai, _, folha = caminho.rpartition("/")
    pais = guia.findall(ans_path(pai)) if pai else [guia]
    return bool(pais) and all(_texto(p.find(ans_path(folha))) for p in pais)


def _texto(element: etree._Element | None) -> str:
    return "".join(element.itertext()).strip() if element is not None else ""


ADAPTER = Cassems
