"""Binds and ports checked before ``serve`` starts (gateway.deploy_settings.parse_bind,
gateway.cli.demo): what gunicorn would have misread or retried."""

from __future__ import annotations

import socket

import pytest

from gateway.cli import demo
from gateway.cli.supervisor import GiveUp
from gateway.deploy_settings import check_bind_host, parse_bind


@pytest.mark.parametrize(("bind", "address"), [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)), ("0.0.0.0:0", ("0.0.0.0", 0)), (":8080", ("", 8080)),
    ("tcp://gw.example:443", ("gw.example", 443)), ("[::1]:8080", ("::1", 8080)),
    (" localhost:65535 ", ("localhost", 65535)), ("unix:/run/tiss.sock", None), ("fd://3", None)])
def test_binds_gunicorn_takes(bind: str, address: tuple[str, int] | None) -> None:
    assert parse_bind(bind) == address


@pytest.mark.parametrize("bind", ["nonsense", "127.0.0.1", "127.0.0.1:65536", "127.0.0.1:-1",
                                  "127.0.0.1:http", "::1:8080", "[::1]8080", ""])
def test_binds_refused_at_once(bind: str) -> None:
    with pytest.raises(ValueError, match="bind inválido"):
        parse_bind(bind)


def test_an_unknown_host_is_refused() -> None:
    check_bind_host("127.0.0.1:8080")
    check_bind_host("unix:/nowhere/tiss.sock")
    with pytest.raises(ValueError, match=r"host 'gw\.invalid' desconhecido"):
        check_bind_host("gw.invalid:8080")


def test_the_simulator_needs_its_admin_and_one_port_per_operator() -> None:
    ports = demo.simulator_ports("127.0.0.1:9000")
    assert [p.port for p in ports] == list(range(9000, 9006))
    assert ports[0].use == "o admin das operadoras simuladas"
    assert {p.option for p in ports} == {"--simulator"}
    with pytest.raises(GiveUp, match="--simulator inválido") as caught:
        demo.simulator_ports("127.0.0.1:65531")  # the last operator would be past 65535
    assert caught.value.exit_code == demo.PORT_TAKEN


def test_a_port_in_use_is_named_with_its_use_and_option() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        demo.check_ports([demo.Port("127.0.0.1", 0, "nada", "--bind")])  # port 0: always free
        with pytest.raises(GiveUp, match=rf"não é possível ouvir em 127.0.0.1:{taken}, que a demo usa para "
                                         r"o gateway: .*; libere a porta ou escolha outra com --bind"):
            demo.check_ports(demo.gateway_port(f"127.0.0.1:{taken}"))
    assert demo.gateway_port("127.0.0.1:0") == [] and demo.gateway_port("unix:/x.sock") == []
