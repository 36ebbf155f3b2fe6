"""Events: what the sans-IO connection reports, as small immutable values.

The same types serve both directions and both roles, so a test can compare
a list of events with ``==``. They are validated when built.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from wsframe.codec.http import Headers, Request

__all__ = ["Event", "TextMessage", "BinaryMessage", "Fragment", "Ping", "Pong",
           "CloseReceived", "Closed", "RequestReceived", "Accepted"]


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A whole text message (opcode 0x1), UTF-8 already validated (§5.6, §8.1)."""

    data: str


@dataclass(frozen=True, slots=True)
class BinaryMessage:
    """A whole binary message (opcode 0x2)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Fragment:
    """A piece of a message, when messages are streamed (``Limits.stream_messages``).

    ``text`` pieces carry bytes that are valid UTF-8 *so far*; a character may
    be split between two pieces. ``first`` and ``last`` mark the message's
    boundaries; the pieces do not necessarily match the frames on the wire.
    """

    data: bytes
    text: bool
    first: bool
    last: bool


@dataclass(frozen=True, slots=True)
class Ping:
    """A Ping (§5.5.2); the connection has already queued the Pong."""

    data: bytes = b""

    def __post_init__(self) -> None:
        if len(self.data) > 125:
            raise ValueError("ping payload is at most 125 bytes (§5.5)")


@dataclass(frozen=True, slots=True)
class Pong:
    """A Pong (§5.5.3)."""

    data: bytes = b""

    def __post_init__(self) -> None:
        if len(self.data) > 125:
            raise ValueError("pong payload is at most 125 bytes (§5.5)")


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer sent a Close frame (§5.5.1); 1005 when it carried no code."""

    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Closed:
    """The WebSocket connection is closed (§7.1.4); nothing more will arrive.

    ``code``/``reason`` say how it ended: the peer's close code after a
    closing handshake, the code we failed the connection with after a
    protocol error, or 1006 when TCP ended without a Close frame (§7.1.5).
    """

    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """Server side: a valid upgrade request arrived; call ``accept()`` or ``reject()``."""

    request: Request
    subprotocols: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Accepted:
    """Client side: the server accepted the upgrade (§4.1)."""

    subprotocol: Optional[str]
    extensions: str = ""
    headers: Headers = field(default_factory=Headers, compare=False)


Event = Union[TextMessage, BinaryMessage, Fragment, Ping, Pong, CloseReceived,
              Closed, RequestReceived, Accepted]
