"""The application's side of an asyncio WebSocket connection (client or server).

::

    await ws.send("hello")            # str: text, bytes: binary
    message = await ws.recv()          # str or bytes; ConnectionClosed at the end
    async for message in ws: ...       # until the connection closes
    await ws.close(1000, "bye")        # closing handshake, then TCP closed

Received messages wait in a queue of at most ``max_queue``; past that the
transport stops reading, so a slow application slows the peer down instead of
growing memory (the same for ``send``: it waits while the transport's write
buffer is full).
"""
from __future__ import annotations

import asyncio
from typing import AsyncIterator, Optional, Union

from wsframe.asyncio.adapter import Adapter
from wsframe.errors import ConnectionClosed
from wsframe.sansio import events as ev
from wsframe.sansio.protocol import CLOSED, OPEN

__all__ = ["Connection"]

_END = object()  # queued after the last message


class Connection(Adapter):
    """One WebSocket connection on asyncio, for an application to use."""

    def __init__(self, proto, **kwargs) -> None:
        super().__init__(proto, **kwargs)
        self._lost_waiter: asyncio.Future = self.loop.create_future()

    # ---- state -----------------------------------------------------------------

    @property
    def subprotocol(self) -> Optional[str]:
        """The subprotocol agreed on in the handshake, if any."""
        return self.proto.subprotocol

    @property
    def open(self) -> bool:
        return self.proto.state is OPEN and not self.lost

    @property
    def close_code(self) -> Optional[int]:
        """How it ended (see :attr:`wsframe.sansio.protocol.Protocol.close_code`), once closed."""
        return self.closed_event.code if self.closed_event is not None else None

    @property
    def close_reason(self) -> str:
        return self.closed_event.reason if self.closed_event is not None else ""

    def _closed_error(self) -> ConnectionClosed:
        event = self.closed_event
        return ConnectionClosed(event.code, event.reason) if event else ConnectionClosed(1006)

    # ---- sending --------------------------------------------------------------

    async def send(self, message: Union[str, bytes, bytearray, memoryview]) -> None:
        """Send one message (``str`` as text); waits while the write buffer is full."""
        if self._write_paused:
            await self.drain()
        if self.proto.state is not OPEN or self.lost:
            raise self._closed_error()
        self.proto.send(message)
        self.sent(len(message))

    def write_frame(self, frame: bytes) -> None:
        """Queue a message already encoded for this connection (a room's broadcast)."""
        self.proto.send_encoded(frame)
        self.sent(len(frame))

    async def send_fragments(self, pieces) -> None:
        """Send one message in several frames (an iterable or async iterable of pieces)."""
        if hasattr(pieces, "__aiter__"):
            pieces = [piece async for piece in pieces]
        pieces = list(pieces)
        for index, piece in enumerate(pieces):
            await self.drain()
            if self.proto.state is not OPEN or self.lost:
                raise self._closed_error()
            self.proto.send_fragment(piece, fin=index == len(pieces) - 1)
            self.flush()

    async def ping(self, data: bytes = b"") -> None:
        """Send a Ping (§5.5.2); the Pong is handled by the connection."""
        if self.proto.state is not OPEN or self.lost:
            raise self._closed_error()
        self.proto.ping(data)
        self.flush()

    # ---- receiving ----------------------------------------------------------------

    async def recv(self) -> Union[str, bytes]:
        """The next message; raises :class:`~wsframe.errors.ConnectionClosed` at the end."""
        item = await self.get()
        if item is _END:
            self._queue.appendleft((_END, False))  # every later call ends the same way
            raise self._closed_error()
        return item

    def __aiter__(self) -> AsyncIterator[Union[str, bytes]]:
        return self._iterate()

    async def _iterate(self):
        while True:
            try:
                yield await self.recv()
            except ConnectionClosed:
                return

    # ---- closing --------------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """The closing handshake (§7.1.2), then wait until TCP is closed."""
        if not self.lost:
            self.start_close(code, reason)
            if self.proto.state is CLOSED and self.proto.close_tcp:
                self.close_transport()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is closed."""
        await asyncio.shield(self._lost_waiter)

    async def __aenter__(self) -> "Connection":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ---- adapter hooks -----------------------------------------------------------------

    def on_closed(self, event: ev.Closed) -> None:
        self.put(_END)
        if not self.proto.close_tcp and self.close_timer is None and not self.lost:
            # A client waits for the server to close TCP first (§7.1.1), within a limit.
            self.close_timer = self.loop.call_later(self.close_timeout, self.close_transport)

    def on_lost(self, exc: Optional[Exception]) -> None:
        if self.closed_event is None:
            self.closed_event = ev.Closed(1006)
            self.put(_END)
        if not self._lost_waiter.done():
            self._lost_waiter.set_result(None)
