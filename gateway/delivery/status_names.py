"""The operator's own name of a protocol status, shown beside the TISS one wherever a person reads
a protocol's status: "3 Liberado para pagamento (PASA: Faturado)".

The name is the adapter's (:meth:`adapters.base.Adapter.nome_status`: the inverse of its
``STATUS`` map, the first name declared for a status that is not the Padrão's); an operator with
no name of its own for a status shows only the TISS one. Read once per process into a table: a
page or a poll looks names up without building anything.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters import load_adapter
from adapters.base import Adapter, Destino
from gateway.config import Config
from gateway.message.schema_registry import SchemaRegistry
from gateway.message.tables import SITUACOES_PROTOCOLO, STATUS_PROTOCOLO


class StatusNames:
    """The operators' own status names, by registro ANS (read once: adapters do not change)."""

    def __init__(self, adapters: Mapping[str, Adapter]):
        # registro ANS -> (the operator's name as its adapter gives it, its own status names)
        self._operadoras: dict[str, tuple[str, dict[int, str]]] = {
            registro: (adapter.nome or registro, _own_names(adapter))
            for registro, adapter in adapters.items()}

    @classmethod
    def from_config(cls, config: Config, registry: SchemaRegistry) -> StatusNames:
        """Every configured operator's, from its adapter (through the adapter registry,
        :func:`adapters.load_adapter`): for the processes that do not deliver (console, commands)."""
        return cls({registro: load_adapter(operadora.adapter, _destino(config, registro), registry)
                    for registro, operadora in config.operadoras.items()})

    def name(self, registro_ans: str | None, status: int | None) -> str | None:
        """The operator's name of ``status`` ("Faturado"); None when it has none of its own."""
        found = self._operadoras.get(registro_ans or "")
        return found[1].get(status) if found is not None and status is not None else None

    def label(self, registro_ans: str | None, status: int | None) -> str | None:
        """``status`` as the operator calls it, after the operator's name ("PASA: Faturado")."""
        name = self.name(registro_ans, status)
        return None if name is None else f"{self._operadoras[registro_ans or ''][0]}: {name}"

    def suffix(self, registro_ans: str | None, status: int | None) -> str:
        """What follows the TISS status in a text: " (PASA: Faturado)", or nothing."""
        label = self.label(registro_ans, status)
        return f" ({label})" if label else ""

    def describe(self, registro_ans: str | None, status: int) -> str:
        """"3 Liberado para pagamento (PASA: Faturado)"."""
        return f"{status} {SITUACOES_PROTOCOLO.get(status, '')}{self.suffix(registro_ans, status)}"


def _destino(config: Config, registro_ans: str) -> Destino:
    """What an adapter needs to be built for its names: no signing key is read."""
    operadora = config.operadoras[registro_ans]
    return Destino(registro_ans=registro_ans, versoes=operadora.versoes_envio,
                   hash_variante=operadora.hash_emitido)


def _own_names(adapter: Adapter) -> dict[int, str]:
    """dm_statusProtocolo -> the operator's own name for it."""
    return {status: nome for status in STATUS_PROTOCOLO if (nome := adapter.nome_status(status)) is not None}
