"""Exceptions, sorted by whose fault they are.

* :class:`RemoteProtocolError` and its subclasses: **the peer** broke the
  protocol. Each carries the close code to fail the connection with; the
  mapping from error to close code lives here and nowhere else.
* :class:`InvalidRequest` (server side) and :class:`InvalidResponse`
  (client side): a bad opening handshake. A request error carries the HTTP
  status (and headers) to answer with.
* :class:`LocalProtocolError` and :class:`InvalidState`: **this program**
  misused the API (sent after closing, gave an invalid close code ...).
* :class:`ConnectionClosed`: raised by I/O layers when an operation needs an
  open connection; it carries the close code and reason that ended it.
"""
from __future__ import annotations

__all__ = [
    "WebSocketError",
    "RemoteProtocolError",
    "ProtocolViolation",
    "InvalidPayload",
    "PolicyViolation",
    "MessageTooBig",
    "PeerTimeout",
    "ExtensionError",
    "InvalidHandshake",
    "InvalidRequest",
    "InvalidResponse",
    "LocalProtocolError",
    "InvalidState",
    "ConnectionClosed",
]


class WebSocketError(Exception):
    """Base class of every wsframe exception."""


# --- the peer's fault: fail the WebSocket connection (RFC 6455 §7.1.7) -------


class RemoteProtocolError(WebSocketError):
    """The peer violated RFC 6455 / RFC 7692.

    ``close_code`` is the status code to send in the Close frame that fails
    the connection (§7.4.1); subclasses fix it, so raising sites only say
    what went wrong.
    """

    close_code = 1002

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}(close_code={self.close_code}, reason={self.reason!r})"


class ProtocolViolation(RemoteProtocolError):
    """A framing or state rule was broken: close code 1002 (§7.4.1)."""

    close_code = 1002


class InvalidPayload(RemoteProtocolError):
    """Data inconsistent with the message type, e.g. bad UTF-8 in text: 1007 (§7.4.1, §8.1)."""

    close_code = 1007


class PolicyViolation(RemoteProtocolError):
    """The peer broke a local policy: close code 1008 (§7.4.1)."""

    close_code = 1008


class MessageTooBig(RemoteProtocolError):
    """A frame or message exceeds a configured limit: close code 1009 (§7.4.1, §10.4)."""

    close_code = 1009


class PeerTimeout(RemoteProtocolError):
    """The peer stopped answering (no Pong to our Ping, §5.5.2): close code 1011."""

    close_code = 1011


class ExtensionError(RemoteProtocolError):
    """An extension's data was corrupt (e.g. a bad deflate stream): close code 1002.

    RFC 7692 §8 says a failed decompression MUST _Fail the WebSocket
    Connection_; 1002 is what Autobahn and the peers we test expect.
    """

    close_code = 1002


# --- the opening handshake --------------------------------------------------


class InvalidHandshake(WebSocketError):
    """The opening handshake (RFC 6455 §4) failed."""


class InvalidRequest(InvalidHandshake):
    """A client's upgrade request is unacceptable (server side).

    ``status`` is the HTTP status to answer with (400, 403, 404, 426, 431 ...),
    ``reason`` a short human-readable explanation sent as the response body,
    ``headers`` extra response headers (e.g. ``Sec-WebSocket-Version: 13``
    with a 426, §4.4).
    """

    def __init__(self, status: int, reason: str,
                 headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason
        self.headers = headers


class InvalidResponse(InvalidHandshake):
    """A server's handshake response is unacceptable (client side).

    ``status`` is the HTTP status the server sent, or ``None`` when the
    response could not even be parsed.
    """

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason if status is None else f"HTTP {status}: {reason}")
        self.reason = reason
        self.status = status


# --- our own fault: misuse of the API --------------------------------------------


class LocalProtocolError(WebSocketError):
    """This program asked for something RFC 6455 forbids (a bug in the caller)."""


class InvalidState(LocalProtocolError):
    """A call is not allowed in the connection's current state."""

    def __init__(self, state: object, action: str) -> None:
        name = getattr(state, "name", state)
        super().__init__(f"cannot {action} in state {name}")
        self.state = state
        self.action = action


class ConnectionClosed(WebSocketError):
    """The connection is closed; ``code`` and ``reason`` say how it ended.

    ``code`` is 1006 when the TCP connection ended without a closing
    handshake (§7.1.5): that code is only reported, never sent.
    """

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"connection closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason
