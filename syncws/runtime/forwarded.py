"""The client's address behind a reverse proxy: ``Forwarded`` and ``X-Forwarded-For``.

A reverse proxy (nginx, HAProxy, a cloud load balancer) connects to the server itself: the
TCP peer is the proxy. It passes the client's address in a header, RFC 7239's
``Forwarded: for=...`` or the older ``X-Forwarded-For``. Anybody can send those headers,
so they are believed only from a *trusted* proxy (the ``trusted_proxies`` option of
:class:`~syncws.Server`, like gunicorn's and uvicorn's ``forwarded_allow_ips``).

Each proxy on the way appends the address it received the request from. Read from the
right, the addresses are those of trusted proxies until the first one that is not: that is
the client (an untrusted client may prepend anything, never append). When every address
is trusted, the leftmost is the client. A hop the header hides (``unknown``, an obfuscated
``_name``) or garbles stops the walk: the TCP peer stays the address.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from ..protocol.http11 import Headers

__all__: list[str] = []

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 7239 §4: forwarded-pair = token "=" value, value = token / quoted-string; pairs are
# separated by ";" within an element, elements by ",".
_PAIR = re.compile(
    r"""\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,"\s]*)\s*([;,]|$)"""
)
# A node with a port: "192.0.2.43:47011", "[2001:db8::1]:4711".
_NODE_PORT = re.compile(r"\[?([0-9A-Fa-f:.]+?)\]?:(\d{1,5})")


def _forwarded_for(values: list[str]) -> list[str] | None:
    """The ``for=`` node of each element of ``Forwarded`` header values, in order (``""``
    for an element without one); ``None`` when the syntax is broken."""
    nodes: list[str] = []
    for value in values:
        pos, current = 0, ""
        while pos < len(value):
            match = _PAIR.match(value, pos)
            if match is None or match.end() == pos:
                return None
            name, node, separator = match.groups()
            if name.lower() == "for":
                if node.startswith('"'):
                    node = re.sub(r"\\(.)", r"\1", node[1:-1])
                current = node
            if separator != ";":  # "," or the end: the element ends
                nodes.append(current)
                current = ""
            pos = match.end()
    return nodes


def _parse_node(node: str) -> tuple[_Address, int] | None:
    """An address and a port (0 if none) from a node; ``None`` if it is not one."""
    node = node.strip()
    port = 0
    match = _NODE_PORT.fullmatch(node)
    # "::1" alone also matches as host ":" port: take the port only with brackets or IPv4.
    if match is not None and (node.startswith("[") or node.count(":") == 1):
        node, port = match[1], int(match[2])
    elif node.startswith("[") and node.endswith("]"):
        node = node[1:-1]
    try:
        return _plain(ipaddress.ip_address(node)), port
    except ValueError:
        return None


def _plain(ip: _Address) -> _Address:
    """IPv4-mapped IPv6 addresses (a dual-stack socket's IPv4 peers) as IPv4."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class _TrustedProxies:
    """The ``trusted_proxies`` option, parsed once: addresses and networks (``"10.0.0.0/8"``),
    ``"*"`` for any TCP peer, ``"unix"`` for peers on a Unix socket.

    Raises:
        ValueError: An item is none of those.
    """

    def __init__(self, rules: Sequence[str]) -> None:
        if isinstance(rules, str):
            raise ValueError("trusted_proxies is a list of addresses, not a str")
        self.any = False
        self.unix = False
        self.networks: list[_Network] = []
        for rule in rules:
            if rule == "*":
                self.any = True
            elif rule == "unix":
                self.unix = True
            else:
                try:
                    self.networks.append(ipaddress.ip_network(rule, strict=False))
                except ValueError:
                    raise ValueError(f"not an address or a network: {rule!r}") from None

    def _trusts(self, ip: _Address) -> bool:
        return self.any or any(ip in network for network in self.networks)

    def _trusts_peer(self, peer: Any) -> bool:
        if not isinstance(peer, tuple):  # a Unix socket's peer: "" or a path
            return self.unix
        try:
            return self._trusts(_plain(ipaddress.ip_address(peer[0])))
        except ValueError:
            return False

    def client_address(self, peer: Any, headers: Headers) -> Any:
        """The client's address, ``(host, port)``, where ``peer`` (the TCP peer's) is a
        trusted proxy that says; else ``peer``. The port is 0 when the proxy omits it, as
        ``X-Forwarded-For`` always does."""
        if not self._trusts_peer(peer):
            return peer
        forwarded = headers.get_all("Forwarded")
        if forwarded:
            nodes = _forwarded_for(forwarded)
        else:
            nodes = [n for v in headers.get_all("X-Forwarded-For") for n in v.split(",")]
        if not nodes:
            return peer
        found = None
        for node in reversed(nodes):
            parsed = _parse_node(node)
            if parsed is None:
                return peer  # unknown, obfuscated, or garbled: nothing to believe beyond
            found = parsed
            if not self._trusts(parsed[0]):
                break
        assert found is not None
        return (str(found[0]), found[1])
