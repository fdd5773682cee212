"""The public names of syncws, pinned: an export added or removed by accident fails here.

A change that means to add or remove a public name updates the lists below (and the
reference docs and the changelog). Public modules are those that users import from:
:mod:`syncws`, :mod:`syncws.exceptions`, the Sans-I/O core (:mod:`syncws.protocol`) and the
integrations (:mod:`syncws.integrations`); the modules of :mod:`syncws.runtime` are
internal, and their public names are exported from :mod:`syncws`.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import syncws
import syncws.integrations
import syncws.protocol

PUBLIC_NAMES: dict[str, list[str] | None] = {
    "syncws": [
        "MASK_IMPLEMENTATION",
        "ClientConnection",
        "Close",
        "CloseCode",
        "ConcurrencyError",
        "Connection",
        "ConnectionClosed",
        "ConnectionClosedError",
        "ConnectionClosedOK",
        "ConnectionOptions",
        "Data",
        "Headers",
        "InsecureRedirect",
        "InvalidHandshake",
        "InvalidHeader",
        "InvalidMessage",
        "InvalidOrigin",
        "InvalidProxyMessage",
        "InvalidProxyStatus",
        "InvalidRedirect",
        "InvalidStatus",
        "InvalidURI",
        "NegotiationError",
        "PayloadTooBig",
        "ProtocolError",
        "ProxyAuthenticationError",
        "ProxyError",
        "Request",
        "Response",
        "Server",
        "ServerConnection",
        "State",
        "TooManyRedirects",
        "WebSocketException",
        "__version__",
        "basic_auth",
        "broadcast",
        "connect",
        "reconnect",
        "route",
        "serve",
    ],
    "syncws.exceptions": [
        "ConcurrencyError",
        "ConnectionClosed",
        "ConnectionClosedError",
        "ConnectionClosedOK",
        "InsecureRedirect",
        "InvalidHandshake",
        "InvalidHeader",
        "InvalidMessage",
        "InvalidOrigin",
        "InvalidProxyMessage",
        "InvalidProxyStatus",
        "InvalidRedirect",
        "InvalidStatus",
        "InvalidURI",
        "NegotiationError",
        "PayloadTooBig",
        "ProtocolError",
        "ProxyAuthenticationError",
        "ProxyError",
        "TooManyRedirects",
        "WebSocketException",
    ],
    # Packages that export nothing themselves: None, no __all__.
    "syncws.protocol": None,
    "syncws.protocol.client": ["DEFAULT_USER_AGENT", "ClientProtocol"],
    "syncws.protocol.connection": [
        "BULK_THRESHOLD",
        "DEFAULT_MAX_FRAGMENTS",
        "DEFAULT_MAX_SIZE",
        "Protocol",
    ],
    "syncws.protocol.deflate": [
        "COMPRESS_LEVEL",
        "MEM_LEVEL",
        "MIN_COMPRESS_SIZE",
        "SERVER_MAX_WINDOW_BITS",
        "ClientPerMessageDeflateFactory",
        "PerMessageDeflate",
        "ServerPerMessageDeflateFactory",
        "client_extensions",
        "server_extensions",
    ],
    "syncws.protocol.events": [
        "Event",
        "Fragment",
        "Message",
        "PayloadRead",
        "Ping",
        "Pong",
        "RequestReceived",
        "ResponseReceived",
        "State",
    ],
    "syncws.protocol.extensions": [
        "ClientExtensionFactory",
        "Extension",
        "ExtensionParameter",
        "ServerExtensionFactory",
    ],
    "syncws.protocol.frames": [
        "CLOSE_CODE_EXPLANATIONS",
        "CONTROL_OPCODES",
        "DATA_OPCODES",
        "MAX_CONTROL_PAYLOAD",
        "Close",
        "CloseCode",
        "Frame",
        "Opcode",
        "encode_header",
        "parse_frame",
        "parse_header",
        "serialize_frame",
        "size_limit",
    ],
    "syncws.protocol.handshake": [
        "GUID",
        "OriginRule",
        "accept_key",
        "build_request",
        "generate_key",
        "process_request",
        "process_response",
        "reject",
        "reject_handshake",
    ],
    "syncws.protocol.handshake.client": ["build_request", "process_response"],
    "syncws.protocol.handshake.keys": ["GUID", "accept_key", "generate_key"],
    "syncws.protocol.handshake.server": [
        "OriginRule",
        "process_request",
        "reject",
        "reject_handshake",
    ],
    "syncws.protocol.headers": [
        "PROTOCOL_RE",
        "TOKEN_RE",
        "ExtensionHeaderItem",
        "build_authorization_basic",
        "header_items",
        "joined_values",
        "parse_authorization_basic",
        "parse_extension_header",
        "parse_token_list",
        "serialize_extension_header",
    ],
    "syncws.protocol.http11": [
        "MAX_BODY",
        "MAX_HEAD",
        "MAX_LINE",
        "MAX_NUM_HEADERS",
        "Headers",
        "HeadersLike",
        "MultipleValuesError",
        "Request",
        "RequestParser",
        "Response",
        "ResponseParser",
        "redact_target",
    ],
    "syncws.protocol.mask": ["IMPLEMENTATION", "apply_mask", "apply_mask_inplace"],
    "syncws.protocol.server": ["DEFAULT_SERVER_HEADER", "ServerProtocol"],
    "syncws.protocol.shortcuts": ["BULK_THRESHOLD", "Shortcuts"],
    "syncws.protocol.uri": ["WebSocketURI", "build_host", "parse_uri"],
    "syncws.integrations": None,
    "syncws.integrations.flask": ["ConnectionClosed", "Sock", "SocketUnavailable", "WebSocket"],
    "syncws.integrations.gunicorn": ["install", "post_worker_init"],
    "syncws.integrations.redis": [
        "EVERYONE",
        "HEALTH_CHECK_INTERVAL",
        "RECONNECT_DELAYS",
        "Hub",
        "RedisRefused",
        "RedisUnavailable",
    ],
    "syncws.integrations.sidecar": ["Sidecar", "should_serve"],
    "syncws.integrations.wsgi": [
        "SOCKET_KEYS",
        "HandshakeRejected",
        "SocketUnavailable",
        "Upgrader",
        "WebSocketApp",
        "handed_back",
        "request_from_environ",
        "shutdown_all",
        "wsgi_response",
    ],
}


def test_every_public_module_is_pinned() -> None:
    """A new module of the core or of the integrations (at any depth) is public unless a
    part of its name starts with an underscore: its names must be pinned above (and a
    module removed, unpinned)."""
    found = {"syncws", "syncws.exceptions"}
    for package in (syncws.protocol, syncws.integrations):
        found.add(package.__name__)
        found.update(
            module.name
            for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
            if not any(part.startswith("_") for part in module.name.split("."))
        )
    assert found == set(PUBLIC_NAMES)


@pytest.mark.parametrize("name", sorted(PUBLIC_NAMES))
def test_public_names_are_exactly_these(name: str) -> None:
    """Each public module exports exactly its pinned names, in this order, and has them."""
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported == PUBLIC_NAMES[name]
    missing = [attr for attr in exported or () if not hasattr(module, attr)]
    assert missing == []
