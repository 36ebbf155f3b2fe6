"""Clients: :func:`connect` (blocking, for scripts) and :class:`ReconnectingClient`
(on a :class:`~wsframe.loop.eventloop.Loop`, reconnects with backoff)."""
from wsframe.client.blocking import WebSocket, connect, parse_url
from wsframe.client.reconnecting import ReconnectingClient
from wsframe.loop.connect import Backoff

__all__ = ["connect", "WebSocket", "parse_url", "ReconnectingClient", "Backoff"]
