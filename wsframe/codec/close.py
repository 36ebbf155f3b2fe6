"""Close frame payloads and status codes (RFC 6455 §5.5.1, §7.4).

A Close frame's payload is either empty, or a 2-byte big-endian status code
followed by a UTF-8 reason. Which codes may travel on the wire is set by
§7.4.1 (the defined codes), §7.4.2 (the reserved ranges) and the IANA
"WebSocket Close Code Number Registry" (which added 1012-1014).
"""
from __future__ import annotations

import struct

from wsframe.errors import InvalidPayload, LocalProtocolError, ProtocolViolation

__all__ = [
    "CLOSE_CODES",
    "describe_close_code",
    "is_sendable_code",
    "is_receivable_code",
    "parse_close_payload",
    "build_close_payload",
    "NORMAL_CLOSURE",
    "GOING_AWAY",
    "PROTOCOL_ERROR",
    "UNSUPPORTED_DATA",
    "NO_STATUS_RECEIVED",
    "ABNORMAL_CLOSURE",
    "INVALID_PAYLOAD",
    "POLICY_VIOLATION",
    "MESSAGE_TOO_BIG",
    "MANDATORY_EXTENSION",
    "INTERNAL_ERROR",
    "SERVICE_RESTART",
    "TRY_AGAIN_LATER",
    "BAD_GATEWAY",
    "TLS_HANDSHAKE",
]

NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
NO_STATUS_RECEIVED = 1005
ABNORMAL_CLOSURE = 1006
INVALID_PAYLOAD = 1007
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
MANDATORY_EXTENSION = 1010
INTERNAL_ERROR = 1011
SERVICE_RESTART = 1012
TRY_AGAIN_LATER = 1013
BAD_GATEWAY = 1014
TLS_HANDSHAKE = 1015

#: The registered codes and their meaning (§7.4.1 and the IANA registry).
CLOSE_CODES: dict[int, str] = {
    1000: "Normal Closure: the purpose of the connection was fulfilled",
    1001: "Going Away: the server is shutting down or the page is navigating away",
    1002: "Protocol Error: the endpoint received a frame that breaks the protocol",
    1003: "Unsupported Data: a type of data the endpoint cannot accept",
    1004: "Reserved: meaning may be defined in the future (never sent)",
    1005: "No Status Received: the Close frame had no code (never sent, only reported)",
    1006: "Abnormal Closure: TCP ended without a Close frame (never sent, only reported)",
    1007: "Invalid Frame Payload Data: e.g. non-UTF-8 data in a text message",
    1008: "Policy Violation: a message broke the endpoint's policy",
    1009: "Message Too Big: a message too big to process",
    1010: "Mandatory Extension: the client expected an extension the server did not negotiate",
    1011: "Internal Error: the server met an unexpected condition",
    1012: "Service Restart: the server is restarting (IANA)",
    1013: "Try Again Later: a temporary condition, e.g. overload (IANA)",
    1014: "Bad Gateway: a gateway received an invalid response (IANA)",
    1015: "TLS Handshake failure (never sent, only reported)",
}

# §7.4.1: 1005, 1006 and 1015 "MUST NOT be set as a status code in a Close
# control frame by an endpoint"; 1004 is reserved. 1016-2999 are reserved for
# future definitions (§7.4.2), so they are not valid on the wire today.
_WIRE_CODES = frozenset(range(1000, 1015)) - {1004, 1005, 1006}


def is_sendable_code(code: int) -> bool:
    """May an endpoint put ``code`` in a Close frame? (§7.4.1, §7.4.2)

    3000-3999 are for libraries and frameworks (IANA registration) and
    4000-4999 for private use; both may be sent.
    """
    return code in _WIRE_CODES or 3000 <= code <= 4999


def is_receivable_code(code: int) -> bool:
    """Is ``code`` acceptable in a received Close frame?

    The same set as :func:`is_sendable_code`: a code that may not be sent
    is a protocol error when received (§7.4.1; Autobahn case 7.9.*).
    """
    return is_sendable_code(code)


def describe_close_code(code: int) -> str:
    """A one-line meaning of ``code`` for people (used by ``wsframe explain``)."""
    if code in CLOSE_CODES:
        return CLOSE_CODES[code]
    if 0 <= code <= 999:
        return "not used (§7.4.2: 0-999 are invalid)"
    if code <= 2999:
        return "reserved for this protocol and its extensions (§7.4.2), unassigned"
    if code <= 3999:
        return "registered for libraries and frameworks (§7.4.2)"
    if code <= 4999:
        return "private use (§7.4.2)"
    return "out of range (§7.4.2)"


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """Decode a received Close frame's payload into ``(code, reason)``.

    An empty payload means "no status code": reported as 1005 (§7.1.5).
    Raises :class:`ProtocolViolation` (1002) for a 1-byte payload or a code
    that may not be sent, and :class:`InvalidPayload` (1007) for a reason
    that is not UTF-8.
    """
    if not payload:
        return NO_STATUS_RECEIVED, ""
    if len(payload) == 1:
        # §5.5.1: if there is a body, its first two bytes are the status code.
        raise ProtocolViolation("close frame with a 1-byte payload (§5.5.1)")
    (code,) = struct.unpack_from("!H", payload)
    if not is_receivable_code(code):
        raise ProtocolViolation(f"invalid close code {code} (§7.4)")
    try:
        # §5.5.1: the body after the code is UTF-8 encoded data.
        reason = bytes(payload[2:]).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPayload("close reason is not valid UTF-8 (§5.5.1)") from None
    return code, reason


def build_close_payload(code: int | None = NORMAL_CLOSURE, reason: str = "") -> bytes:
    """Encode a Close frame's payload; ``code=None`` gives an empty payload.

    Raises :class:`LocalProtocolError` for a code that may not be sent or a
    reason that makes the payload longer than 125 bytes (§5.5).
    """
    if code is None:
        if reason:
            raise LocalProtocolError("a close reason needs a close code (§5.5.1)")
        return b""
    if not is_sendable_code(code):
        raise LocalProtocolError(f"close code {code} may not be sent (§7.4)")
    data = reason.encode("utf-8")
    if len(data) > 123:
        raise LocalProtocolError("close reason longer than 123 bytes (§5.5: control payload <= 125)")
    return struct.pack("!H", code) + data
