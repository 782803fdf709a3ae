"""The client's address when the gateway sits behind trusted reverse proxies.

Behind nginx every request comes from the proxy's address, so lockouts, the refusal budget, the
audit trail and the logs would see one client. When the peer (``REMOTE_ADDR``) is one of
``[gateway] trusted_proxies``, the client is the rightmost ``X-Forwarded-For`` hop that is not a
trusted proxy (hops a client wrote itself sit further left and are never believed); otherwise the
header is ignored. The middleware puts that address in ``REMOTE_ADDR`` for everything after it and
keeps the peer's under :data:`PEER_KEY` (a forwarded client certificate is believed only from a
trusted peer: gateway.inbound.client_cert).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import Any

PEER_KEY = "tiss_gateway.peer_addr"
_MAX_HOPS = 20  # a longer chain is not believed at all

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(trusted_proxies: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in trusted_proxies)


def is_trusted(address: str | None, proxies: Sequence[Network]) -> bool:
    if not proxies or not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def forwarded_client(header: str | None, proxies: Sequence[Network]) -> str | None:
    """The rightmost hop of ``X-Forwarded-For`` that is not a trusted proxy; None when the header
    is missing, too long or has a hop that is not an address."""
    hops = [hop.strip() for hop in (header or "").split(",") if hop.strip()]
    if not hops or len(hops) > _MAX_HOPS:
        return None
    for hop in reversed(hops):
        try:
            ip = ipaddress.ip_address(hop)
        except ValueError:
            return None
        if not any(ip in network for network in proxies):
            return str(ip)
    return None  # every hop is a proxy of ours: the peer is as good as any


class ClientAddress:
    """WSGI middleware: ``REMOTE_ADDR`` becomes the client's address (see the module)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], trusted_proxies: Sequence[str]):
        self.app = app
        self.proxies = networks(trusted_proxies)

    def __getattr__(self, name: str) -> Any:  # the wrapped app's attributes (pipeline, registry...)
        return getattr(self.app, name)

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        peer = environ.get("REMOTE_ADDR")
        environ[PEER_KEY] = peer
        if is_trusted(peer, self.proxies):
            client = forwarded_client(environ.get("HTTP_X_FORWARDED_FOR"), self.proxies)
            if client is not None:
                environ["REMOTE_ADDR"] = client
        return self.app(environ, start_response)
