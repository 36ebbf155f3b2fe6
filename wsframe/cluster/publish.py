"""Publish to a room from any process on the machine (over the supervisor's Unix socket).

::

    from wsframe.cluster import publish
    publish("/run/wsframe.sock", "order:42", "driver is 2 minutes away")

The message goes to the room's owner worker, which sequences it with the
room's other broadcasts and reaches every member in every worker once. It
is fire-and-forget: a room without members drops it.
"""
from __future__ import annotations

import os
import socket
from typing import Callable, Optional, Union

from wsframe.loop.eventloop import Loop
from wsframe.cluster.wire import PUBLISH, Channel, frame, pack_room_message, unpack_room_message

__all__ = ["publish", "Publisher", "PublishServer"]

MAX_PUBLISHERS = 1024


class Publisher:
    """A connection to a supervisor's publish socket; messages keep their order."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)

    def publish(self, room: str, data: Union[str, bytes], *, text: Optional[bool] = None) -> None:
        """Broadcast ``data`` (``str``: a text message, bytes: binary) to ``room``."""
        if isinstance(data, str):
            payload, is_text = data.encode(), True
        else:
            payload, is_text = bytes(data), bool(text)
        self.sock.sendall(frame(PUBLISH, pack_room_message(room, payload, text=is_text)))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def publish(path: str, room: str, data: Union[str, bytes], *, text: Optional[bool] = None) -> None:
    """Broadcast one message to ``room`` of the server whose publish socket is ``path``."""
    with Publisher(path) as publisher:
        publisher.publish(room, data, text=text)


class PublishServer:
    """The supervisor's side: a Unix socket (mode 0600) taking PUBLISH messages;
    ``deliver(room, body)`` passes each on to the room's owner."""

    def __init__(self, loop: Loop, path: str, deliver: Callable[[str, bytes], None]) -> None:
        self.loop = loop
        self.path = path
        self.deliver = deliver
        self.publishers: set[Channel] = set()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        umask = os.umask(0o177)  # created 0600: this user's processes only
        try:
            sock.bind(path)
        finally:
            os.umask(umask)
        sock.listen(64)
        sock.setblocking(False)
        self.sock = sock
        loop.add_reader(sock.fileno(), self._on_accept)

    def _on_accept(self, _fd: int) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        if len(self.publishers) >= MAX_PUBLISHERS:
            conn.close()
            return
        self.publishers.add(Channel(self.loop, conn, self._on_message, self.publishers.discard))

    def _on_message(self, channel: Channel, kind: int, body: bytes) -> None:
        try:
            if kind != PUBLISH:
                raise ValueError(f"unexpected message type {kind}")
            name = unpack_room_message(body)[0]
        except Exception:  # not our protocol: drop that publisher, keep serving
            channel.close()
            return
        self.deliver(name, body)

    def close(self) -> None:
        """Stop taking publishers; remove the socket file."""
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
            for channel in list(self.publishers):
                channel.close()
            try:
                os.unlink(self.path)
            except OSError:
                pass
