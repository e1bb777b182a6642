"""Who the client is, as far as Bastion may believe: the peer, or what a trusted proxy says.

X-Forwarded-For and X-Forwarded-Proto are believed only from `server.trusted_proxies`; from any
other peer they are ignored, so they can neither dodge the login throttle nor lock someone
else's address out. Behind a chain of trusted proxies the client is the right-most address
that is not itself one of them (the left part of the header is whatever the client wrote).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, networks: Sequence[str]) -> None:
        self._networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks
        )

    def trusts(self, address: str) -> bool:
        if not self._networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def client(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address for throttling and logs."""
        if forwarded_for is None or not self.trusts(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",")]
        for hop in reversed(hops):
            if not _is_address(hop):
                return peer  # a malformed header: believe only the peer
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer

    def scheme(self, peer: str, scheme: str, forwarded_proto: str | None) -> str:
        """http or https as the client used it (X-Forwarded-Proto from a trusted proxy)."""
        if forwarded_proto is None or not self.trusts(peer):
            return scheme
        last = forwarded_proto.rpartition(",")[2].strip().lower()
        return last if last in ("http", "https") else scheme


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
