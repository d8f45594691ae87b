"""The client's address behind a reverse proxy, from ``X-Forwarded-For``.

Behind nginx (deploy/nginx) or a load balancer every socket comes from the proxy, so the
per-address limits (``max_sessions_per_peer``, ``new_sessions_per_peer_per_second``) would
count every user as one. ``trusted_proxies`` names the proxies (addresses or networks); for a
socket from one of them the hub takes the client's address from the request's
``X-Forwarded-For``, read from the right (what the nearest proxy appended) past every trusted
hop. The header of a socket from anywhere else is ignored: a client cannot choose its address
by sending the header itself. Pure: no I/O, ``ipaddress`` only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["TrustedProxies"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TrustedProxies:
    """``TrustedProxies(["127.0.0.1", "10.0.0.0/8"])``; :meth:`client_address` applies them.

    Raises:
        ValueError: an entry is neither an IP address nor a network (named in the message).
    """

    __slots__ = ("_networks",)

    def __init__(self, entries: Iterable[str]) -> None:
        networks: list[_Network] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"trusted_proxies: {entry!r} is not an IP address or "
                                 "network (e.g. 127.0.0.1, 10.0.0.0/8, ::1)") from None
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str) -> bool:
        """Whether ``address`` (an IP address string) is one of the proxies."""
        parsed = _parse(address)
        return parsed is not None and self._trusts(parsed)

    def _trusts(self, address: _Address) -> bool:
        return any(address in network for network in self._networks)

    def client_address(self, peer: str, headers: Iterable[tuple[str, str]]) -> str:
        """The address to count ``peer``'s socket under: ``peer`` itself unless it is a
        trusted proxy; then the right-most ``X-Forwarded-For`` entry that is not a trusted
        proxy (``peer`` if the header is absent, names only proxies, or an entry before that
        one is not an address)."""
        if not self._networks or not self.trusts(peer):
            return peer
        hops = [hop for name, value in headers if name == "x-forwarded-for"
                for hop in value.split(",")]
        for hop in reversed(hops):
            parsed = _parse(hop)
            if parsed is None:
                return peer
            if not self._trusts(parsed):
                return str(parsed)
        return peer


def _parse(text: str) -> _Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6] or [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
