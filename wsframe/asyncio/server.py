"""An asyncio server: ``wsframe.asyncio.serve(handler, host, port)``.

::

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 8765) as server:
        await server.serve_forever()

``handler`` is an ``async def handler(ws)`` for every path, or a dict of
routes, path -> handler (``{"/chat": chat, "/echo": echo}``), where an unknown
path is refused with 404. ``ws.request`` is the upgrade request (path, query,
headers). When the handler returns the connection is closed with 1000; when it
raises, with 1011 (the error is logged; the server goes on). Heartbeat
(``ping_interval`` / ``ping_timeout``), message limits (:class:`Limits`),
``max_queue`` and permessage-deflate apply as on the epoll server.
``process_request(request)`` may refuse a request by returning
``(status, reason)``. ``server.rooms`` (:class:`~wsframe.asyncio.rooms.Rooms`)
groups connections for broadcasts. :meth:`Server.close` closes every connection with 1001.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Mapping, Optional, Sequence, Union

from wsframe.asyncio.connection import Connection
from wsframe.asyncio.rooms import Rooms
from wsframe.codec.permessage_deflate import DeflateSettings
from wsframe.sansio import events as ev
from wsframe.sansio.protocol import DEFAULT_LIMITS, OPEN, Limits
from wsframe.sansio.roles import ServerProtocol

__all__ = ["serve", "Server", "ServerConnection"]

logger = logging.getLogger("wsframe.asyncio")

Handler = Callable[["ServerConnection"], Awaitable[None]]


class ServerConnection(Connection):
    """The server side of one connection, given to the handler."""

    def __init__(self, server: "Server", proto: ServerProtocol, **kwargs) -> None:
        super().__init__(proto, **kwargs)
        self.server = server
        self.request = None
        self.remote_address = None
        self.task: Optional[asyncio.Task] = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.remote_address = transport.get_extra_info("peername")
        self.server.connections.add(self)

    def on_lost(self, exc) -> None:
        super().on_lost(exc)
        self.server.connections.discard(self)

    def on_event(self, event) -> None:
        if type(event) is not ev.RequestReceived:
            return
        self.request = event.request
        handler, refusal = self.server.route(event.request)
        if refusal is not None:
            self.proto.reject(*refusal)
            return  # data_received flushes the refusal and closes TCP
        offered = event.subprotocols
        chosen = next((p for p in self.server.subprotocols if p in offered), None)
        self.proto.accept(chosen)
        self.start_keepalive()
        self.task = self.loop.create_task(self._run(handler))
        self.server.tasks.add(self.task)

    async def _run(self, handler: Handler) -> None:
        try:
            await handler(self)
        except Exception:
            logger.exception("error in WebSocket handler for %s", self.request.target)
            if self.proto.state is OPEN:
                self.start_close(1011, "internal error")  # §7.4.1: unexpected condition
        else:
            if self.proto.state is OPEN:
                self.start_close(1000)
        finally:
            self.server.tasks.discard(asyncio.current_task())


class Server:
    """The listening server: the connections it holds and its asyncio server."""

    def __init__(self, handler: Union[Handler, Mapping[str, Handler]], *,
                 subprotocols: Sequence[str] = (), limits: Limits = DEFAULT_LIMITS,
                 deflate: Optional[DeflateSettings] = DeflateSettings(),
                 ping_interval: Optional[float] = 20.0, ping_timeout: Optional[float] = 20.0,
                 max_queue: Optional[int] = 32, close_timeout: float = 10.0,
                 process_request: Optional[Callable] = None) -> None:
        self.handler = handler
        self.subprotocols = tuple(subprotocols)
        self.limits = limits
        self.deflate = deflate
        self.process_request = process_request
        self.adapter_options = dict(ping_interval=ping_interval, ping_timeout=ping_timeout,
                                    max_queue=max_queue, close_timeout=close_timeout)
        self.connections: set[ServerConnection] = set()
        self.rooms = Rooms()
        self.tasks: set[asyncio.Task] = set()
        self.server: Optional[asyncio.AbstractServer] = None

    def route(self, request):
        """The handler for a request, or ``(None, (status, reason))`` to refuse it."""
        if self.process_request is not None:
            refusal = self.process_request(request)
            if refusal is not None:
                return None, tuple(refusal)
        if callable(self.handler):
            return self.handler, None
        handler = self.handler.get(request.path)
        if handler is None:
            return None, (404, f"no WebSocket endpoint at {request.path}")
        return handler, None

    def protocol_factory(self, loop: asyncio.AbstractEventLoop) -> Callable[[], ServerConnection]:
        def factory() -> ServerConnection:
            proto = ServerProtocol(limits=self.limits, deflate=self.deflate)
            return ServerConnection(self, proto, loop=loop, **self.adapter_options)
        return factory

    @property
    def sockets(self):
        return self.server.sockets if self.server is not None else ()

    @property
    def port(self) -> int:
        """The port of the first listening socket (handy with port 0)."""
        return self.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        await self.server.serve_forever()

    def close(self, code: int = 1001) -> None:
        """Stop listening; close every connection (1001 Going Away, §7.4.1)."""
        if self.server is not None:
            self.server.close()
        for connection in list(self.connections):
            if connection.proto.state is OPEN:
                connection.start_close(code, "server shutting down")
            else:
                connection.close_transport()

    async def wait_closed(self) -> None:
        """Wait until every connection is closed and the listener is gone."""
        for connection in list(self.connections):
            await connection.wait_closed()
        if self.server is not None:
            await self.server.wait_closed()

    async def __aenter__(self) -> "Server":
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()
        await self.wait_closed()


class serve:
    """Start a server: ``async with serve(handler, host, port) as server`` or ``await serve(...)``."""

    def __init__(self, handler: Union[Handler, Mapping[str, Handler]],
                 host: Optional[str] = "127.0.0.1", port: int = 0, *, ssl=None,
                 backlog: int = 1024, **options) -> None:
        self.server = Server(handler, **options)
        self.host, self.port, self.ssl, self.backlog = host, port, ssl, backlog

    async def _start(self) -> Server:
        loop = asyncio.get_running_loop()
        self.server.server = await loop.create_server(
            self.server.protocol_factory(loop), self.host, self.port, ssl=self.ssl,
            backlog=self.backlog)
        return self.server

    def __await__(self):
        return self._start().__await__()

    async def __aenter__(self) -> Server:
        return await self._start()

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        await self.server.wait_closed()
