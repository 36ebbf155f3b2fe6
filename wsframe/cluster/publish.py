"""Publish to a room from any process on the machine (over the supervisor's Unix socket).

::

    from wsframe.cluster import publish
    publish("/run/wsframe.sock", "order:42", "driver is 2 minutes away")

The message goes to the room's owner worker, which sequences it with the
room's other broadcasts and reaches every member in every worker once. It
is fire-and-forget: a room without members drops it.
"""
from __future__ import annotations

import socket
from typing import Optional, Union

from wsframe.cluster.wire import PUBLISH, frame, pack_room_message

__all__ = ["publish", "Publisher"]


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
