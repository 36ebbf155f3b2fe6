"""wsframe: a from-scratch WebSocket engine (RFC 6455, RFC 7692).

Layers, bottom up: the codec (:mod:`wsframe.frames`, :mod:`wsframe.handshake`,
masking, UTF-8; compiled or pure, see :func:`speedups_enabled`), the sans-IO
protocol, the epoll event loop, and the server/client/rooms on top.
"""
from ._version import __version__
from .codec import speedups_enabled
from .errors import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidRequest,
    InvalidResponse,
    InvalidState,
    LocalProtocolError,
    RemoteProtocolError,
    WebSocketError,
)

from .backpressure import Backpressure, SendStatus
from .loop import Loop
from .permessage_deflate import DeflateSettings
from .protocol import Limits
from .reconnecting import Backoff, Client
from .rooms import Room
from .server import Endpoint, Heartbeat, HttpResponse, Server, ServerConn, ServerSettings

__all__ = [
    "__version__",
    "speedups_enabled",
    "Server",
    "ServerConn",
    "ServerSettings",
    "Endpoint",
    "Heartbeat",
    "HttpResponse",
    "Room",
    "Limits",
    "DeflateSettings",
    "Backpressure",
    "SendStatus",
    "Loop",
    "Client",
    "Backoff",
    "WebSocketError",
    "RemoteProtocolError",
    "LocalProtocolError",
    "InvalidState",
    "InvalidHandshake",
    "InvalidRequest",
    "InvalidResponse",
    "ConnectionClosed",
]
