"""gateway.client_address: the client's address behind trusted proxies."""

from gateway.client_address import PEER_KEY, ClientAddress, forwarded_client, networks

PROXIES = networks(["10.9.0.0/16", "::1"])


def test_the_rightmost_hop_that_is_not_a_proxy_is_the_client() -> None:
    assert forwarded_client("198.51.100.7", PROXIES) == "198.51.100.7"
    # A client may write its own header: what it wrote sits left of what our proxies added.
    assert forwarded_client("1.2.3.4, 198.51.100.7, 10.9.1.1", PROXIES) == "198.51.100.7"
    assert forwarded_client("2001:db8::1", PROXIES) == "2001:db8::1"


def test_a_header_not_believed() -> None:
    assert forwarded_client(None, PROXIES) is None
    assert forwarded_client("", PROXIES) is None
    assert forwarded_client("evil, 10.9.1.1", PROXIES) is None  # not an address
    assert forwarded_client("10.9.1.1, 10.9.1.2", PROXIES) is None  # only our proxies
    assert forwarded_client(", ".join(["198.51.100.7"] * 21), PROXIES) is None  # too long


def _seen(peer: str, forwarded: str | None, proxies: list[str]) -> tuple[str, str]:
    seen: dict = {}

    def app(environ, start_response):
        seen.update(environ)
        return [b""]

    environ = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    ClientAddress(app, proxies)(environ, lambda *a: None)
    return seen["REMOTE_ADDR"], seen[PEER_KEY]


def test_the_middleware_believes_the_header_only_from_a_trusted_peer() -> None:
    assert _seen("10.9.0.5", "198.51.100.7", ["10.9.0.0/16"]) == ("198.51.100.7", "10.9.0.5")
    assert _seen("192.0.2.1", "198.51.100.7", ["10.9.0.0/16"]) == ("192.0.2.1", "192.0.2.1")
    assert _seen("10.9.0.5", "198.51.100.7", []) == ("10.9.0.5", "10.9.0.5")  # no proxy trusted
    assert _seen("10.9.0.5", None, ["10.9.0.0/16"]) == ("10.9.0.5", "10.9.0.5")
