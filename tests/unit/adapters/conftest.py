"""Fixtures of the adapters' unit tests: the certificates the gateway signs with."""

import pytest

from gateway.security import pki


@pytest.fixture(scope="module")
def ca() -> pki.Authority:
    return pki.new_authority("AC Teste Adapters")


@pytest.fixture(scope="module")
def gateway_leaf(ca: pki.Authority) -> pki.Leaf:
    return ca.issue("TISS GATEWAY DEMONSTRACAO", cnpj="11222333000181")
