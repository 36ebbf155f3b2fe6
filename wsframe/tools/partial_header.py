"""What the first bytes of a frame header already say (for ``wsframe explain``).

A truncated header is not an error: an endpoint waits for the rest. But the
bytes that did arrive may already break a rule (a Ping whose 7-bit length is
126 breaks §5.5 at byte 1), and then an endpoint fails the connection at
once (:func:`wsframe.codec.frames.check_header_prefix`, which both parsers
apply). :func:`describe_partial_header` tells the two apart and decodes every
field that is in.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

from wsframe.codec.frames import OP_CLOSE, OPCODE_NAMES, RSV1, check_header_prefix
from wsframe.errors import RemoteProtocolError

__all__ = ["PartialHeader", "describe_partial_header", "header_size"]

_NO_LIMIT = 1 << 64  # rules of the protocol, not a local frame size limit


class PartialHeader(NamedTuple):
    """The description of an incomplete header."""

    lines: list[str]                 # one per field that is in, indented for a report
    needed: str                      # "4 more bytes", "at least 1 more byte"
    violation: Optional[RemoteProtocolError]  # a rule the bytes in already break
    decided_at: Optional[int]        # the byte (0-based) that decided the violation


def header_size(b1: int) -> int:
    """The size of a header whose byte 1 is ``b1`` (§5.2): 2 to 14 bytes."""
    return 2 + {126: 2, 127: 8}.get(b1 & 0x7F, 0) + (4 if b1 & 0x80 else 0)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def describe_partial_header(head: bytes, *, sender: Optional[str],
                            deflate_senders: frozenset = frozenset()) -> PartialHeader:
    """Decode the fields of ``head`` (1 to 13 bytes of a header) and judge them.

    ``sender``: ``"client"`` or ``"server"``, or ``None`` to guess it from
    the MASK bit (clients mask, §5.1) once byte 1 is in. ``deflate_senders``:
    the senders for which RSV1 is allowed (RFC 7692 §6).
    """
    lines: list[str] = []
    b0 = head[0]
    opcode = b0 & 0x0F
    name = OPCODE_NAMES.get(opcode, "reserved control" if opcode & 8 else "reserved non-control")
    lines.append(f"byte 0 = {b0 >> 4:04b} {b0 & 15:04b}: FIN={b0 >> 7}, RSV1-3 = "
                 f"{(b0 >> 4) & 7:03b}, opcode 0x{opcode:x} ({name})")
    guessed = sender
    if len(head) < 2:
        needed = "at least 1 more byte"
    else:
        b1 = head[1]
        length7 = b1 & 0x7F
        if guessed is None:
            guessed = "client" if b1 & 0x80 else "server"
        form = (f"the length itself ({length7} bytes, 7-bit form)" if length7 < 126 else
                "a 16-bit length follows in bytes 2-3" if length7 == 126 else
                "a 64-bit length follows in bytes 2-9")
        lines.append(f"byte 1 = {b1 >> 4:04b} {b1 & 15:04b}: MASK={b1 >> 7}, "
                     f"payload len = {length7}: {form} (§5.2)")
        ext = {126: 2, 127: 8}.get(length7, 0)
        got = head[2:2 + ext]
        if ext and got:
            value = f" = {int.from_bytes(got, 'big')}" if len(got) == ext else ""
            lines.append(f"extended payload length: {len(got)} of {ext} bytes in "
                         f"({got.hex(' ')}){value}")
        if b1 & 0x80:
            key = head[2 + ext:]
            lines.append(f"masking key: {len(key)} of 4 bytes in"
                         + (f" ({key.hex(' ')})" if key else ""))
        needed = _plural(header_size(b1) - len(head), "more byte")
    if guessed is None:  # byte 1 missing: RSV1 allowed if it could be allowed
        allowed = RSV1 if deflate_senders else 0
    else:
        allowed = RSV1 if guessed in deflate_senders else 0
    violation, decided_at = None, None
    for end in range(1, len(head) + 1):  # the first byte at which a rule is broken
        try:
            check_header_prefix(head[:end], require_mask=guessed != "server",
                                allowed_rsv=allowed, max_frame_size=_NO_LIMIT)
        except RemoteProtocolError as exc:
            violation, decided_at = exc, end - 1
            break
    if violation is None and len(head) < 2 and opcode >= OP_CLOSE:
        lines.append("a control frame: byte 1 must give a 7-bit length of at most 125 (§5.5)")
    return PartialHeader(lines, needed, violation, decided_at)
