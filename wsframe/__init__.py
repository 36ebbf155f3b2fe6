"""wsframe: a from-scratch WebSocket engine (RFC 6455, RFC 7692).

Layers, bottom up: the codec (:mod:`wsframe.codec.frames`, :mod:`wsframe.codec.handshake`,
masking, UTF-8; compiled or pure, see :func:`speedups_enabled`), the sans-IO
protocol, the epoll event loop, and the server/client/rooms on top.
"""
from wsframe._version import __version__
from wsframe.codec import speedups_enabled
from wsframe.errors import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidRequest,
    InvalidResponse,
    InvalidState,
    LocalProtocolError,
    RemoteProtocolError,
    WebSocketError,
)

from wsframe.loop.backpressure import Backpressure, Policy, SendStatus
from wsframe.loop.eventloop import Loop
from wsframe.codec.permessage_deflate import DeflateSettings
from wsframe.sansio.protocol import Limits
from wsframe.client.reconnecting import ReconnectingClient
from wsframe.loop.connect import Backoff
from wsframe.server.rooms import Room
from wsframe.server.server import Endpoint, Heartbeat, HttpResponse, Server, ServerConnection, ServerSettings

__all__ = [
    "__version__",
    "speedups_enabled",
    "Server",
    "ServerConnection",
    "ServerSettings",
    "Endpoint",
    "Heartbeat",
    "HttpResponse",
    "Room",
    "Limits",
    "DeflateSettings",
    "Backpressure",
    "Policy",
    "SendStatus",
    "Loop",
    "ReconnectingClient",
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
