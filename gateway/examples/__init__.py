"""Example TISS messages shipped with the gateway (SOAP 1.1 envelopes, ISO-8859-1, version 4.03.00).

Built by ``tests/factory.py`` for the demo provider (CNPJ 11222333000181, login/senha demo) and
PASA (registro ANS 331988): what an ERP would POST to ``/tiss/v4_03_00/tissLoteGuias``.
"""

from importlib.resources import files
from pathlib import Path


def path(name: str = "lote-sp-sadt-4.03.00.xml") -> Path:
    return Path(str(files(__name__).joinpath(name)))
