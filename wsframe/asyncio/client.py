"""An asyncio client: ``async with wsframe.asyncio.connect(url) as ws``.

::

    async with connect("ws://127.0.0.1:8765/chat") as ws:
        await ws.send("hello")
        async for message in ws:
            print(message)

``connect(url)`` may also be awaited (``ws = await connect(url)``; close it
with ``await ws.close()``). A refused or invalid handshake raises
:class:`~wsframe.errors.InvalidResponse` (or its base
:class:`~wsframe.errors.InvalidHandshake`); ``open_timeout`` bounds the TCP
connect plus the handshake (:class:`TimeoutError`). ``wss://`` uses TLS with
certificate verification by default.
"""
from __future__ import annotations

import asyncio
import ssl as ssl_module
from typing import Iterable, Optional, Sequence, Union

from wsframe.asyncio.connection import Connection
from wsframe.codec.permessage_deflate import DeflateSettings
from wsframe.codec.url import parse_url
from wsframe.errors import InvalidHandshake
from wsframe.sansio import events as ev
from wsframe.sansio.protocol import DEFAULT_LIMITS, Limits
from wsframe.sansio.roles import ClientProtocol

__all__ = ["connect", "ClientConnection"]


class ClientConnection(Connection):
    """The client side; ``handshake`` resolves when the server accepted."""

    def __init__(self, proto: ClientProtocol, **kwargs) -> None:
        super().__init__(proto, **kwargs)
        self.handshake: asyncio.Future = self.loop.create_future()
        self.response_headers = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.flush()  # the upgrade request is ready from the start

    def data_received(self, data: bytes) -> None:
        try:
            super().data_received(data)
        except InvalidHandshake as exc:
            self._refused(exc)

    def eof_received(self):
        try:
            return super().eof_received()
        except InvalidHandshake as exc:
            self._refused(exc)
            return None

    def _refused(self, exc: Exception) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc)
        self.close_transport()

    def on_event(self, event) -> None:
        if type(event) is ev.Accepted:
            self.response_headers = event.headers
            self.start_keepalive()
            if not self.handshake.done():
                self.handshake.set_result(None)

    def on_lost(self, exc: Optional[Exception]) -> None:
        super().on_lost(exc)
        if not self.handshake.done():
            self.handshake.set_exception(
                InvalidHandshake("connection closed during the opening handshake"))


class connect:
    """Open a client connection: ``async with connect(url) as ws`` or ``await connect(url)``."""

    def __init__(self, url: str, *, subprotocols: Sequence[str] = (),
                 origin: Optional[str] = None, headers: Iterable[tuple[str, str]] = (),
                 limits: Limits = DEFAULT_LIMITS,
                 deflate: Optional[DeflateSettings] = DeflateSettings(),
                 ping_interval: Optional[float] = 20.0, ping_timeout: Optional[float] = 20.0,
                 max_queue: Optional[int] = 32, open_timeout: Optional[float] = 10.0,
                 close_timeout: float = 10.0,
                 ssl: Union[ssl_module.SSLContext, bool, None] = None) -> None:
        self.url = url
        self.options = dict(subprotocols=subprotocols, origin=origin, headers=headers,
                            limits=limits, deflate=deflate)
        self.adapter_options = dict(ping_interval=ping_interval, ping_timeout=ping_timeout,
                                    max_queue=max_queue, close_timeout=close_timeout)
        self.open_timeout = open_timeout
        self.ssl = ssl
        self.connection: Optional[ClientConnection] = None

    async def _open(self) -> ClientConnection:
        where = parse_url(self.url)
        secure, host, port, host_header, target = (where.secure, where.host, where.port,
                                                   where.host_header, where.target)
        context = self.ssl
        if secure and context in (None, True):
            context = ssl_module.create_default_context()
        elif not secure:
            context = None
        loop = asyncio.get_running_loop()

        def factory() -> ClientConnection:
            proto = ClientProtocol(host_header, target, **self.options)
            return ClientConnection(proto, loop=loop, **self.adapter_options)

        async def opening() -> ClientConnection:
            _, connection = await loop.create_connection(
                factory, host, port, ssl=context or None,
                server_hostname=host if context else None)
            try:
                await connection.handshake
            except BaseException:
                connection.close_transport()
                raise
            return connection

        self.connection = await asyncio.wait_for(opening(), self.open_timeout)
        return self.connection

    def __await__(self):
        return self._open().__await__()

    async def __aenter__(self) -> ClientConnection:
        return await self._open()

    async def __aexit__(self, *exc) -> None:
        if self.connection is not None:
            await self.connection.close()
