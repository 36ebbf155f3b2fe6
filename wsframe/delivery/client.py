"""The Python client of ``wsframe.v1``: an outbox retried until acknowledged, and rooms
resumed from their last offset after every reconnect (or a ``discontinuity``).

::

    loop = Loop()
    client = ReliableClient("ws://127.0.0.1:8765/track/42", loop=loop,
                            on_message=lambda c, data, room: print(room, data),
                            on_ack=lambda c, ident: print("acked", ident))
    client.start()
    client.send({"action": "contact_driver"})      # gets an id; retried every 5 s until acked
    loop.run()

``store`` (any mutable mapping, a ``dict`` by default) keeps the session id
and each room's epoch and offset: pass one that survives a restart (a
``shelve``, a small JSON file wrapper) and a new process resumes where the
old one stopped, within the server's window.
"""
from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from typing import Any, Callable, MutableMapping, Optional

from wsframe.client.reconnecting import ReconnectingClient
from wsframe.delivery.wire import SESSION_TAKEN, SUBPROTOCOL, dumps
from wsframe.loop.connect import Backoff
from wsframe.loop.eventloop import Loop

__all__ = ["ReliableClient", "OutboxFull"]

log = logging.getLogger("wsframe.delivery")


class OutboxFull(Exception):
    """``send`` would take the outbox past ``max_outbox`` bytes of unacknowledged messages."""


class _Pending:
    __slots__ = ("ident", "text", "attempts", "timer")

    def __init__(self, ident: str, text: str) -> None:
        self.ident = ident
        self.text = text
        self.attempts = 0
        self.timer = None


class ReliableClient:
    """A ``wsframe.v1`` client on a :class:`~wsframe.loop.eventloop.Loop` (see the module
    docstring). Callbacks get the client first; ``on_message(client, data, room)`` gets
    each publication (``room`` set) and direct message (``room`` None) once, in order."""

    def __init__(self, url: str, *, loop: Loop, store: Optional[MutableMapping] = None,
                 ack_timeout: float = 5.0, max_attempts: int = 5, max_outbox: int = 1 << 20,
                 on_open: Optional[Callable] = None, on_message: Optional[Callable] = None,
                 on_ack: Optional[Callable] = None, on_failed: Optional[Callable] = None,
                 on_recovered: Optional[Callable] = None,
                 on_discontinuity: Optional[Callable] = None,
                 on_close: Optional[Callable] = None,
                 reconnect: Backoff = Backoff(initial=0.5, max_delay=30.0),
                 **options) -> None:
        self.loop = loop
        self.store = store if store is not None else {}
        self.ack_timeout = ack_timeout
        self.max_attempts = max_attempts
        self.max_outbox = max_outbox
        self.on_open, self.on_message, self.on_ack = on_open, on_message, on_ack
        self.on_failed, self.on_recovered = on_failed, on_recovered
        self.on_discontinuity, self.on_close = on_discontinuity, on_close
        self.outbox: OrderedDict[str, _Pending] = OrderedDict()
        self.outbox_bytes = 0
        self.welcomed = False
        self.node: Optional[str] = None
        self.gaps = 0                 # live publications that skipped an offset (repaired)
        self._prefix = os.urandom(4).hex()
        self._counter = 0
        self.ws = ReconnectingClient(url, loop=loop, subprotocols=(SUBPROTOCOL,),
                                     on_open=self._opened, on_message=self._received,
                                     on_close=self._closed, reconnect=reconnect, **options)

    # ---- public ---------------------------------------------------------------------

    @property
    def session(self) -> Optional[str]:
        return self.store.get("session")

    @property
    def rooms(self) -> dict:
        """room -> {"epoch": ..., "offset": ...}: where each room is for this client."""
        return self.store.setdefault("rooms", {})

    def start(self) -> None:
        self.ws.start()

    def close(self) -> None:
        for pending in self.outbox.values():
            if pending.timer is not None:
                pending.timer.cancel()
        self.ws.close()

    def send(self, message: dict) -> str:
        """Queue ``message`` (a JSON object) until the server acknowledges it; returns its
        id (``message["id"]`` if given). Raises :class:`OutboxFull`."""
        if not isinstance(message, dict):
            raise TypeError("a wsframe.v1 message is a JSON object (a dict)")
        ident = message.get("id")
        if ident is None:
            self._counter += 1
            ident = f"{self._prefix}-{self._counter}"
            message = {"id": ident, **message}
        text = dumps(message)
        size = len(text.encode())
        if self.outbox_bytes + size > self.max_outbox:
            raise OutboxFull(f"{self.outbox_bytes} bytes wait for acks; limit {self.max_outbox}")
        pending = self.outbox[ident] = _Pending(ident, text)
        self.outbox_bytes += size
        if self.welcomed:
            self._transmit(pending)
        return ident

    # ---- the connection -----------------------------------------------------------------

    def _opened(self, ws) -> None:
        self.welcomed = False
        ws.send(dumps({"op": "hello", "session": self.session, "rooms": self.rooms}))

    def _closed(self, ws, code, reason) -> None:
        self.welcomed = False
        if code == SESSION_TAKEN:   # another client resumed our session (§4.5): start anew
            self.store["session"] = None
        if self.on_close:
            self._call(self.on_close, self, code, reason)

    def _received(self, ws, text) -> None:
        if not isinstance(text, str):
            return self._deliver(text, None)
        try:
            frame = json.loads(text)
        except ValueError:
            log.warning("wsframe.v1: not JSON from the server: %.80r", text)
            return
        if not isinstance(frame, dict):
            return
        if "ack" in frame:
            return self._acked(frame["ack"])
        op = frame.get("op")
        if op == "pub":
            return self._pub(frame)
        if op == "msg":
            return self._deliver(frame.get("data"), None)
        if op == "welcome":
            self.store["session"] = frame.get("session")
            self.node = frame.get("node")
            self.welcomed = True
            for pending in list(self.outbox.values()):  # in order, after every reconnect
                self._transmit(pending)
            if self.on_open:
                self._call(self.on_open, self)
        elif op == "joined":
            self.rooms[frame["room"]] = {"epoch": frame["epoch"], "offset": frame["offset"]}
        elif op == "recovered":
            self.rooms[frame["room"]] = {"epoch": frame["epoch"], "offset": frame["offset"]}
            if self.on_recovered:
                self._call(self.on_recovered, self, frame["room"], frame.get("replayed", 0))
        elif op == "discontinuity":
            self.rooms[frame["room"]] = {"epoch": frame["epoch"], "offset": frame["offset"]}
            if self.on_discontinuity:
                self._call(self.on_discontinuity, self, frame["room"], frame.get("reason"))

    def _pub(self, frame: dict) -> None:
        room, epoch, offset = frame.get("room"), frame.get("epoch"), frame.get("offset")
        known = self.rooms.get(room)
        if known is not None and known["epoch"] == epoch:
            if offset <= known["offset"]:
                return  # already had it (a replay that overlapped)
            if offset != known["offset"] + 1:
                # a live publication skipped some: resume from what we have (the server
                # replays exactly the missing ones, or says they are gone)
                self.gaps += 1
                conn = self.ws._conn
                if conn is not None:
                    conn.close(1000, "wsframe.v1: gap, resuming")
                return
        self.rooms[room] = {"epoch": epoch, "offset": offset}
        if known is not None and known["epoch"] != epoch and self.on_discontinuity:
            # §5.4: a new epoch while this connection stayed (the process that keeps the
            # room's history restarted): how much of the old one was missed is not known
            self._call(self.on_discontinuity, self, room, "epoch")
        self._deliver(frame.get("data"), room)

    def _deliver(self, data: Any, room: Optional[str]) -> None:
        if self.on_message:
            self._call(self.on_message, self, data, room)

    # ---- the outbox ---------------------------------------------------------------------

    def _transmit(self, pending: _Pending) -> None:
        if pending.timer is not None:
            pending.timer.cancel()
        pending.attempts += 1
        self.ws.send(pending.text)
        delay = self.ack_timeout * (2 ** min(pending.attempts - 1, 6))
        pending.timer = self.loop.call_later(delay, self._ack_late, pending)

    def _ack_late(self, pending: _Pending) -> None:
        pending.timer = None
        if self.outbox.get(pending.ident) is not pending:
            return
        if pending.attempts >= self.max_attempts:
            self._drop(pending)
            if self.on_failed:
                self._call(self.on_failed, self, pending.ident,
                           f"no ack after {pending.attempts} attempts")
            return
        if self.welcomed:
            self._transmit(pending)
        # else: resent after the next welcome

    def _acked(self, ident) -> None:
        pending = self.outbox.get(ident)
        if pending is None:
            return  # an ack repeated for a duplicate
        self._drop(pending)
        if self.on_ack:
            self._call(self.on_ack, self, ident)

    def _drop(self, pending: _Pending) -> None:
        if pending.timer is not None:
            pending.timer.cancel()
        del self.outbox[pending.ident]
        self.outbox_bytes -= len(pending.text.encode())

    @staticmethod
    def _call(callback: Callable, *args) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("ReliableClient callback %r failed", callback)
