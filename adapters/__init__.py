"""Operator adapters: one module per operator (``adapters/<name>.py``, its class in ``ADAPTER``)
on shared modules: the adapter API (:mod:`adapters.base`), the operators' lote rules as data
(:mod:`adapters.rules`, used by the simulated operators too), the lote split
(:mod:`adapters.splitting`) and the version conversion (:mod:`adapters.conversion`). The gateway
configuration names the module of each operator (``gateway.config.Operadora.adapter``)."""

from __future__ import annotations

import importlib
import re

from adapters.base import Adapter, AdapterError, Destino, Envio
from gateway.message.schema_registry import SchemaRegistry

__all__ = ["Adapter", "AdapterError", "Destino", "Envio", "load_adapter"]

_NOME = re.compile(r"[a-z_][a-z0-9_]*")  # the same rule as gateway.config for ``adapter``
_COMPARTILHADOS = frozenset({"base", "conversion", "errors", "guias", "rules", "splitting"})  # not operators


def load_adapter(name: str, destino: Destino, registry: SchemaRegistry) -> Adapter:
    """The adapter of module ``adapters.<name>`` for ``destino``; AdapterError if there is none."""
    if not _NOME.fullmatch(name) or name in _COMPARTILHADOS:
        raise AdapterError(f"nome de adapter inválido: {name!r}")
    module_name = f"{__name__}.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise AdapterError(f"adapter desconhecido: {name!r} (não há o módulo {module_name})") from None
    adapter = getattr(module, "ADAPTER", None)
    if not (isinstance(adapter, type) and issubclass(adapter, Adapter)):
        raise AdapterError(f"{module_name} não define ADAPTER, uma subclasse de adapters.base.Adapter")
    return adapter(destino, registry)
