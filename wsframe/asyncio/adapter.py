"""One asyncio adapter over the sans-IO core, for every asyncio front end.

:class:`Adapter` is an :class:`asyncio.Protocol` that drives a
:class:`~wsframe.sansio.roles.EventProtocol` (server or client side): bytes
from the transport go to the core, the core's bytes go to the transport, and
its events go to the subclass through a few hooks. Both the ASGI protocol for
uvicorn (:mod:`wsframe.asgi`) and the asyncio API (:mod:`wsframe.asyncio`)
are subclasses, so they share flow control, keepalive and the closing
handshake:

- **reading** pauses while ``max_queue`` received messages wait for the
  application, and resumes as it takes them (memory per connection bounded);
- **writing**: :meth:`drain` waits while the transport is above its high-water
  mark (``pause_writing`` / ``resume_writing``);
- **keepalive**: a Ping every ``ping_interval`` seconds; no matching Pong within
  ``ping_timeout`` fails the connection with 1011 (RFC 6455 §5.5.2);
- **closing**: after our Close frame the transport stays open until the peer's
  Close arrives (§7.1.2) or ``close_timeout`` passes; a server then closes TCP
  first (§7.1.1).

The adapter uses only ``write``, ``close``, ``is_closing``, ``pause_reading``,
``resume_reading`` and ``get_extra_info`` of its transport.
"""
from __future__ import annotations

import asyncio
import os
from collections import deque
from typing import Any, Optional

from wsframe.errors import InvalidHandshake, PeerTimeout
from wsframe.sansio import events as ev
from wsframe.sansio.protocol import CLOSED, OPEN
from wsframe.sansio.roles import EventProtocol

__all__ = ["Adapter"]


class Adapter(asyncio.Protocol):
    """Drive ``proto`` on an asyncio transport; subclasses handle its events."""

    def __init__(self, proto: EventProtocol, *, max_queue: Optional[int] = 32,
                 ping_interval: Optional[float] = None, ping_timeout: Optional[float] = None,
                 close_timeout: float = 10.0,
                 loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        self.proto = proto
        self.loop = loop or asyncio.get_event_loop()
        self.transport: Optional[asyncio.Transport] = None
        self.max_queue = max_queue if max_queue and max_queue > 0 else None
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.close_timer: Optional[asyncio.TimerHandle] = None  # waiting for the peer's Close
        self.ping_timer: Optional[asyncio.TimerHandle] = None
        self.pong_timer: Optional[asyncio.TimerHandle] = None
        self.ping_sent_at = 0.0
        self.last_ping_rtt = 0.0
        self._ping_payload: Optional[bytes] = None
        self._queue: deque = deque()
        self._queued_messages = 0       # messages among the queue's items (flow control)
        self._getter: Optional[asyncio.Future] = None
        self._read_paused = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future] = []
        self._deferred: Optional[asyncio.TimerHandle] = None  # a failure's Close, held back
        self._busy = False  # the application took a message and has not asked for the next
        self._flush_scheduled = False   # sent messages wait for the end of this loop turn
        self._batched = 0               # messages sent since the last write
        self.lost = False               # connection_lost() happened
        self.closing = False            # we sent a Close frame first (start_close)
        self.closed_event: Optional[ev.Closed] = None

    # ---- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        proto = self.proto
        proto.receive_data(data)
        events = proto.events()
        while events:  # a hook may produce more (accept() parses the bytes that came early)
            self._dispatch(events)
            events = proto.events()
        if ((self._queued_messages or self._busy) and self.closed_event is not None
                and proto.state is not CLOSED and self._deferred is None):
            # The peer broke the protocol after messages the application has not read,
            # or is still handling: its answers to them go first, then the Close frame
            # (as on the epoll server, whose handlers answer synchronously). The
            # application has answered a message once it asks for the next one (or
            # the connection's end). At most close_timeout.
            self._deferred = self.loop.call_later(self.close_timeout, self.flush)
            return
        self.flush()

    def eof_received(self) -> Optional[bool]:
        self.proto.receive_eof()
        events = self.proto.events()
        if events:
            self._dispatch(events)
        self.flush()
        return None  # let the transport close itself

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.lost = True
        self.stop_keepalive()
        self._cancel_close_timer()
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        if self.proto.state is not CLOSED:
            try:
                self.proto.receive_eof()  # §7.1.5: 1006 unless the closing handshake completed
            except InvalidHandshake:      # a client whose handshake never finished
                pass
        self.proto.data_to_send()     # nothing can be written any more
        events = self.proto.events()
        if events:
            self._dispatch(events)
        for waiter in self._drain_waiters:  # a paused transport never resumes once lost
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()
        self._write_paused = False
        self.on_lost(exc)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # ---- hooks --------------------------------------------------------------------

    def on_event(self, event: Any) -> None:
        """A handshake event (RequestReceived, Accepted) or a Fragment."""

    def on_message(self, data: Any, is_text: bool) -> None:
        """A whole message; by default queued for :meth:`get`."""
        self.put(data, message=True)

    def on_closed(self, event: ev.Closed) -> None:
        """The WebSocket connection is closed (once)."""

    def on_lost(self, exc: Optional[Exception]) -> None:
        """The transport is gone."""

    # ---- core <-> transport ---------------------------------------------------------

    def _dispatch(self, events: list) -> None:
        for event in events:
            kind = type(event)
            if kind is ev.TextMessage or kind is ev.BinaryMessage:
                if not self.closing:  # past our Close the application reads no more
                    self.on_message(event.data, kind is ev.TextMessage)
            elif kind is ev.Pong:
                self._pong(event.data)
            elif kind is ev.Closed:
                if self.closed_event is None:
                    self.closed_event = event
                    self.stop_keepalive()
                    self.resume_reading()
                    self.on_closed(event)
            elif kind is not ev.Ping and kind is not ev.CloseReceived:
                self.on_event(event)

    def flush(self) -> None:
        """Write what the core has to send; close TCP when the core says so (§7.1.1)."""
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        self._batched = 0
        out = self.proto.data_to_send()
        transport = self.transport
        if transport is None or self.lost:
            return
        if out:
            transport.write(out)
        if self.proto.close_tcp and not transport.is_closing():
            self._cancel_close_timer()
            transport.close()

    def sent(self, size: int) -> None:
        """A message of ``size`` bytes was queued in the core: write it this loop turn.

        Messages sent one after another without the application yielding
        (answers to a burst of requests) leave in one write: a system call per
        burst instead of per message. Large messages, or 32 in a row, are
        written at once, so the bytes held back stay small.
        """
        self._batched += 1
        if size >= 16384 or self._batched >= 32:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_turn)

    def _flush_turn(self) -> None:
        self._flush_scheduled = False
        self.flush()

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        while self._write_paused and not self.lost:
            waiter = self.loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def close_transport(self) -> None:
        """Close TCP now (after what is already written)."""
        self._cancel_close_timer()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def start_close(self, code: int = 1000, reason: str = "") -> None:
        """Send our Close frame (§7.1.2) and wait for the peer's, at most ``close_timeout``."""
        if self.proto.state is not OPEN or self.lost:
            return
        self.closing = True
        self.proto.close(code, reason)
        self.flush()
        self.resume_reading()  # the peer's Close must get through
        if self.proto.state is not CLOSED and self.close_timer is None:
            self.close_timer = self.loop.call_later(self.close_timeout, self.close_transport)

    def _cancel_close_timer(self) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None

    # ---- received messages and read flow control -----------------------------------

    def put(self, item: Any, *, message: bool = False) -> None:
        """Queue an item for :meth:`get`; ``max_queue`` messages pause reading."""
        self._queue.append((item, message))
        if message:
            self._queued_messages += 1
            if (self.max_queue is not None and self._queued_messages >= self.max_queue
                    and not self.closing):
                self.pause_reading()
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    async def get(self) -> Any:
        """The next queued item (waits for one)."""
        self._busy = False  # done with the previous message: its answers are written
        if self._deferred is not None and not self._queued_messages:
            self.flush()  # the Close, after those answers
        while not self._queue:
            getter = self._getter = self.loop.create_future()
            try:
                await getter
            finally:
                self._getter = None
        item, message = self._queue.popleft()
        if message:
            self._queued_messages -= 1
            self._busy = True
            if self._read_paused and (self.max_queue is None
                                      or self._queued_messages < self.max_queue):
                self.resume_reading()
        return item

    def pause_reading(self) -> None:
        if not self._read_paused and self.transport is not None and not self.lost:
            self._read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._read_paused:
            self._read_paused = False
            if self.transport is not None and not self.lost:
                self.transport.resume_reading()

    # ---- keepalive (§5.5.2) -----------------------------------------------------------

    def start_keepalive(self) -> None:
        if self.ping_interval is not None and self.ping_interval > 0:
            self._schedule_ping()

    def stop_keepalive(self) -> None:
        for timer in (self.ping_timer, self.pong_timer):
            if timer is not None:
                timer.cancel()
        self.ping_timer = self.pong_timer = None
        self._ping_payload = None

    def _schedule_ping(self) -> None:
        delay = max(0.0, self.ping_interval - self.last_ping_rtt)
        self.ping_timer = self.loop.call_later(delay, self._send_ping)

    def _send_ping(self) -> None:
        self.ping_timer = None
        if self.proto.state is not OPEN or self.lost:
            return
        self._ping_payload = os.urandom(4)  # identifies this Ping's Pong (§5.5.3)
        self.ping_sent_at = self.loop.time()
        self.proto.ping(self._ping_payload)
        self.flush()
        if self.ping_timeout is not None and self.ping_timeout > 0:
            self.pong_timer = self.loop.call_later(self.ping_timeout, self._ping_timed_out)
        else:
            self._schedule_ping()

    def _pong(self, data: bytes) -> None:
        if self._ping_payload is None or bytes(data) != self._ping_payload:
            return  # unsolicited or stale: no answer needed (§5.5.3)
        self._ping_payload = None
        self.last_ping_rtt = self.loop.time() - self.ping_sent_at
        if self.pong_timer is not None:
            self.pong_timer.cancel()
            self.pong_timer = None
            self._schedule_ping()

    def _ping_timed_out(self) -> None:
        self.pong_timer = None
        self._ping_payload = None
        if self.proto.state is CLOSED or self.lost:
            return
        self.proto.fail(PeerTimeout("keepalive ping timeout"))  # Close 1011
        self._dispatch(self.proto.events())
        self.flush()
        self.close_transport()
