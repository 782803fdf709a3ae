"""The operator client (gateway.delivery.client): one endpoint per operator and version, the version
read from the prepared bytes, and a WSDL that points at another version's address refused."""

from __future__ import annotations

import pytest

from gateway.config import Config, Operadora
from gateway.delivery.client import OperatorClient, OperatorClients, TransportError, VersaoSemEndereco, padrao
from tests.factory import Party, build_lote

PASA = "331988"


def test_padrao_is_read_from_the_prepared_bytes() -> None:
    for version in ("4.02.00", "4.03.00"):
        assert padrao(build_lote("consulta", 2, version=version, party=Party())) == version
    assert padrao(b"<soap:Fault><faultstring>x</faultstring></soap:Fault>") is None
    late = b"<ans:x>" + b" " * 40_000 + b"<ans:Padrao>4.02.00</ans:Padrao></ans:x>"  # not in the head
    assert padrao(late) == "4.02.00"


def _clients() -> OperatorClients:
    pasa = Operadora(PASA, "PASA", "pasa", enderecos={"4.02.00": "http://ws/tiss/v4_02_00/",
                                                      "4.03.00": "http://ws/tiss/v4_03_00"}, timeout_s=3)
    return OperatorClients(Config(operadoras={PASA: pasa}))


def test_one_client_per_operator_and_version_at_that_versions_address() -> None:
    clients = _clients()
    v402, v403 = clients.client(PASA, "4.02.00"), clients.client(PASA, "4.03.00")
    assert (v402.endpoint, v402.versao) == ("http://ws/tiss/v4_02_00", "4.02.00")
    assert (v403.endpoint, v403.versao, v403.timeout) == ("http://ws/tiss/v4_03_00", "4.03.00", 3)
    assert clients.client(PASA, "4.02.00") is v402  # its WSDLs are read once per process
    with pytest.raises(VersaoSemEndereco, match=r"não tem endereço para a versão 4\.01\.00"):
        clients.client(PASA, "4.01.00")
    clients.close()


@pytest.mark.parametrize(("address", "ok"), [
    ("http://ws/tiss/v4_02_00/tissLoteGuias", True),
    ("http://ws/tiss/v4_03_00/tissLoteGuias", False),  # every 4.02.00 message would be refused there
    ("http://ws/services/LoteGuias", True),  # no version in the path: the operator's own scheme
])
def test_a_wsdl_pointing_at_another_versions_address_is_refused(address: str, ok: bool) -> None:
    client = OperatorClient("http://ws/tiss/v4_02_00", timeout=1, versao="4.02.00")
    if ok:
        client._check_version("tissLoteGuias", address)
    else:
        with pytest.raises(TransportError, match=r"da versão 4\.03\.00: corrija o endereço da versão 4\.02"):
            client._check_version("tissLoteGuias", address)
    client.close()
