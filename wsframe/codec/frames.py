"""Frames: the base framing protocol of RFC 6455 §5, pure-Python reference.

The wire format (§5.2)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-------+-+-------------+-------------------------------+
    |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
    |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
    |N|V|V|V|       |S|             |   (if payload len==126/127)   |
    | |1|2|3|       |K|             |                               |
    +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
    |     Extended payload length continued, if payload len == 127  |
    + - - - - - - - - - - - - - - - +-------------------------------+
    |                               |Masking-key, if MASK set to 1  |
    +-------------------------------+-------------------------------+
    | Masking-key (continued)       |          Payload Data         |
    +-------------------------------- - - - - - - - - - - - - - - - +

:class:`FrameParser` reads that format incrementally: input may arrive in any
pieces, one byte at a time included. It hands out **chunks**: tuples
``(opcode, fin, rsv, payload, remaining)``. A control frame always comes as
one chunk. A data frame comes as soon as its header is complete, as one or
more chunks whose payloads, joined, are the frame's payload; ``remaining``
counts the payload bytes still to come, so ``len(payload) + remaining`` of a
frame's first chunk is its length and ``remaining == 0`` marks its last.
Handing out partial payloads is what lets the layer above check UTF-8 as the
bytes arrive (§8.1, fail fast) and refuse a too-long message before it is
buffered.

The compiled twin (``_speedups/frames.pyx``) has the same API and gives the
same chunks and the same errors for the same input: tests check that.
"""
from __future__ import annotations

import os
import struct
from typing import NamedTuple, Optional

from wsframe.errors import LocalProtocolError, MessageTooBig, ProtocolViolation
from wsframe.codec.masking import apply_mask, rotate_mask

__all__ = [
    "OP_CONT", "OP_TEXT", "OP_BINARY", "OP_CLOSE", "OP_PING", "OP_PONG",
    "OPCODE_NAMES", "RSV1", "RSV2", "RSV3",
    "FrameHeader", "Frame", "FrameParser",
    "parse_header", "check_header", "check_header_prefix", "parse_frames",
    "build_frame", "server_frame", "client_frame", "server_frame_header",
    "DEFAULT_MAX_FRAME_SIZE",
]

# §5.2 / §11.8: the opcodes. 0x3-0x7 and 0xB-0xF are reserved.
OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
OPCODE_NAMES = {OP_CONT: "continuation", OP_TEXT: "text", OP_BINARY: "binary",
                OP_CLOSE: "close", OP_PING: "ping", OP_PONG: "pong"}

# The reserved bits as they sit in the first byte (§5.2).
RSV1 = 0x40
RSV2 = 0x20
RSV3 = 0x10

#: Largest frame payload accepted unless told otherwise: 1 MiB. A frame's
#: payload is buffered until complete, so this bounds memory per connection.
DEFAULT_MAX_FRAME_SIZE = 1 << 20

_MAX_CONTROL_PAYLOAD = 125  # §5.5


class FrameHeader(NamedTuple):
    """A decoded frame header, every field as on the wire (not yet judged)."""

    fin: bool
    rsv: int            # RSV1|RSV2|RSV3 bits as in byte 0 (0x40, 0x20, 0x10)
    opcode: int
    masked: bool
    length: int         # payload length
    length_bits: int    # 7, 16 or 64: which length encoding was used (§5.2)
    mask: Optional[bytes]
    size: int           # bytes the header occupies: 2 to 14


class Frame(NamedTuple):
    """A whole frame: what :func:`parse_frames` returns."""

    opcode: int
    payload: bytes
    fin: bool = True
    rsv: int = 0


def parse_header(data, pos: int = 0) -> Optional[FrameHeader]:
    """Decode the frame header at ``data[pos:]``; ``None`` if incomplete.

    Only decodes: :func:`check_header` says whether the header is allowed.
    """
    avail = len(data) - pos
    if avail < 2:
        return None
    b0 = data[pos]
    b1 = data[pos + 1]
    masked = bool(b1 & 0x80)
    length = b1 & 0x7F          # §5.2: 0-125 is the length itself,
    size = 2
    length_bits = 7
    if length == 126:           # 126: a 16-bit length follows,
        size, length_bits = 4, 16
    elif length == 127:         # 127: a 64-bit length follows.
        size, length_bits = 10, 64
    if masked:
        size += 4               # the 4-byte masking key comes last (§5.3)
    if avail < size:
        return None
    if length_bits == 16:
        (length,) = struct.unpack_from("!H", data, pos + 2)
    elif length_bits == 64:
        (length,) = struct.unpack_from("!Q", data, pos + 2)
    mask = bytes(data[pos + size - 4:pos + size]) if masked else None
    return FrameHeader(bool(b0 & 0x80), b0 & 0x70, b0 & 0x0F, masked,
                       length, length_bits, mask, size)


def check_header(header: FrameHeader, *, require_mask: bool, allowed_rsv: int = 0,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
    """Raise the error for the first rule ``header`` breaks, if any.

    The rules are checked in the order of the bytes they read (byte 0, byte 1,
    then the extended length), so a header judged whole fails with the same
    error as when :func:`check_header_prefix` judged it as its bytes arrived.
    """
    _check_byte0(header.fin, header.rsv, header.opcode, allowed_rsv)
    _check_byte1(header.opcode, header.masked, header.length_bits, require_mask)
    if header.length_bits == 64 and header.length >> 63:
        # §5.2: the most significant bit of the 64-bit length MUST be 0.
        raise ProtocolViolation("64-bit length with its top bit set (§5.2)")
    if header.length > max_frame_size:
        # §10.4: an endpoint may limit frame size; over it => close 1009.
        raise MessageTooBig(f"frame of {header.length} bytes exceeds the limit of {max_frame_size}")


def check_header_prefix(data, pos: int = 0, *, require_mask: bool, allowed_rsv: int = 0,
                        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
    """Judge the start of a header whose remaining bytes have not arrived yet.

    Fail fast: a frame is refused as soon as the bytes that make it invalid
    are in, not when its header is complete (a Ping whose 7-bit length is
    126 is a §5.5 violation at byte 1). Raises the error :func:`check_header`
    would raise for any completion of these bytes; returns if some completion
    is valid. Reads at most the header's bytes from ``data[pos:]``.
    """
    avail = len(data) - pos
    if avail < 1:
        return
    b0 = data[pos]
    opcode = b0 & 0x0F
    _check_byte0(bool(b0 & 0x80), b0 & 0x70, opcode, allowed_rsv)
    if avail < 2:
        return
    b1 = data[pos + 1]
    length7 = b1 & 0x7F
    bits = 7 if length7 < 126 else (16 if length7 == 126 else 64)
    _check_byte1(opcode, bool(b1 & 0x80), bits, require_mask)
    known = min(avail - 2, bits // 8 if bits > 7 else 0)  # extended-length bytes in hand
    if not known:
        return
    if bits == 64 and data[pos + 2] & 0x80:
        # §5.2: the most significant bit of the 64-bit length MUST be 0.
        raise ProtocolViolation("64-bit length with its top bit set (§5.2)")
    # The length is at least its known leading bytes followed by zeros.
    least = int.from_bytes(bytes(data[pos + 2:pos + 2 + known]), "big") << (8 * (bits // 8 - known))
    if least > max_frame_size:
        # §10.4: over the frame size limit whatever the bytes still to come.
        raise MessageTooBig(f"frame of at least {least} bytes exceeds the limit of "
                            f"{max_frame_size}")


def _check_byte0(fin: bool, rsv: int, opcode: int, allowed_rsv: int) -> None:
    """The rules that byte 0 alone decides."""
    if rsv & ~allowed_rsv:
        # §5.2: RSV1-3 MUST be 0 unless an extension negotiated a meaning.
        raise ProtocolViolation(f"reserved bits 0x{rsv:02x} set without an extension (§5.2)")
    if opcode not in OPCODE_NAMES:
        # §5.2: reserved opcodes => _Fail the WebSocket Connection_.
        raise ProtocolViolation(f"reserved opcode 0x{opcode:x} (§5.2)")
    if opcode >= OP_CLOSE and not fin:
        # §5.5: control frames MUST NOT be fragmented.
        raise ProtocolViolation("fragmented control frame (§5.5)")


def _check_byte1(opcode: int, masked: bool, length_bits: int, require_mask: bool) -> None:
    """The rules that byte 1 decides (given byte 0's opcode)."""
    if masked != require_mask:
        # §5.1: a server closes on an unmasked frame, a client on a masked one.
        raise ProtocolViolation("unmasked frame from a client (§5.1)" if require_mask
                                else "masked frame from a server (§5.1)")
    if opcode >= OP_CLOSE and length_bits != 7:
        # §5.5: control frames carry at most 125 bytes, which the 7-bit length
        # holds; a 16- or 64-bit length is either over 125 or not the minimal
        # encoding §5.2 requires, so byte 1 already decides.
        raise ProtocolViolation(f"control frame with a {length_bits}-bit payload length "
                                "(§5.5: at most 125 bytes)")


class FrameParser:
    """Incremental frame parser for one direction of one connection.

    ``require_mask=True`` for a server reading client frames (which must be
    masked), ``False`` for a client (§5.1). ``allowed_rsv`` holds the
    reserved bits an extension negotiated (``RSV1`` for permessage-deflate).

    Call order: ``feed(data)``, then ``next_chunk()`` until it returns
    ``None``. By then the parser keeps its own copy of the few unparsed bytes
    (an incomplete header, or an incomplete control frame of at most 129
    bytes), so the caller may reuse the buffer it fed. A violation raises a
    :class:`~wsframe.errors.RemoteProtocolError` from ``next_chunk()`` after
    every chunk before it was handed out.
    """

    __slots__ = ("require_mask", "allowed_rsv", "max_frame_size",
                 "_data", "_pos", "_opcode", "_fin", "_rsv", "_mask", "_remaining")

    def __init__(self, *, require_mask: bool, allowed_rsv: int = 0,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.require_mask = require_mask
        self.allowed_rsv = allowed_rsv
        self.max_frame_size = max_frame_size
        self._data = b""        # input being parsed
        self._pos = 0           # next unparsed byte of _data
        self._opcode = 0        # header of the data frame being streamed ...
        self._fin = False
        self._rsv = 0
        self._mask = None       # ... its key, rotated to the next payload byte
        self._remaining = 0     # ... and its payload bytes still to come

    def feed(self, data) -> None:
        """Add received bytes (any bytes-like object)."""
        if self._pos < len(self._data):
            self._data = bytes(self._data[self._pos:]) + bytes(data)
        else:
            self._data = data
        self._pos = 0

    def next_chunk(self):
        """The next chunk ``(opcode, fin, rsv, payload, remaining)``, or ``None``."""
        if self._remaining:
            if self._pos == len(self._data):
                return self._wait()
            return self._payload_chunk()
        header = parse_header(self._data, self._pos)
        if header is None:
            # Fail fast (§5.2, §5.5): judge the bytes of the header that are in.
            check_header_prefix(self._data, self._pos, require_mask=self.require_mask,
                                allowed_rsv=self.allowed_rsv, max_frame_size=self.max_frame_size)
            return self._wait()
        check_header(header, require_mask=self.require_mask,
                     allowed_rsv=self.allowed_rsv, max_frame_size=self.max_frame_size)
        if header.opcode >= OP_CLOSE:
            return self._control_frame(header)
        self._pos += header.size
        self._opcode, self._fin, self._rsv = header.opcode, header.fin, header.rsv
        self._mask = header.mask
        self._remaining = header.length
        return self._payload_chunk()  # a frame's first chunk comes out even if empty

    def _payload_chunk(self):
        """Hand out whatever payload of the current data frame has arrived."""
        start = self._pos
        take = min(self._remaining, len(self._data) - start)
        self._pos = start + take
        self._remaining -= take
        payload = self._data[start:start + take]
        if self._mask is not None:
            payload = apply_mask(payload, self._mask)
            self._mask = rotate_mask(self._mask, take)
        else:
            payload = bytes(payload)
        return (self._opcode, self._fin, self._rsv, payload, self._remaining)

    def _control_frame(self, header: FrameHeader):
        """Control frames are short (§5.5) and handed out whole."""
        start = self._pos + header.size
        end = start + header.length
        if end > len(self._data):
            return self._wait()
        self._pos = end
        payload = self._data[start:end]
        payload = apply_mask(payload, header.mask) if header.masked else bytes(payload)
        return (header.opcode, True, header.rsv, payload, 0)

    def _wait(self):
        """Out of input: keep a private copy of the unparsed tail."""
        self._data = bytes(self._data[self._pos:])
        self._pos = 0
        return None


def parse_frames(data, *, require_mask: bool, allowed_rsv: int = 0,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> list[Frame]:
    """Parse every complete frame in ``data`` (a convenience for tests and tools)."""
    parser = FrameParser(require_mask=require_mask, allowed_rsv=allowed_rsv,
                         max_frame_size=max_frame_size)
    parser.feed(data)
    frames: list[Frame] = []
    parts: list[bytes] = []
    while (chunk := parser.next_chunk()) is not None:
        opcode, fin, rsv, payload, remaining = chunk
        parts.append(payload)
        if not remaining:
            frames.append(Frame(opcode, b"".join(parts), fin, rsv))
            parts.clear()
    return frames


def build_frame(opcode: int, payload=b"", *, fin: bool = True, rsv: int = 0,
                mask: Optional[bytes] = None) -> bytes:
    """Serialize one frame; ``mask`` (4 bytes) makes it a client frame (§5.3)."""
    if opcode not in OPCODE_NAMES:
        raise LocalProtocolError(f"reserved opcode 0x{opcode:x} (§5.2)")
    if rsv & ~0x70:
        raise LocalProtocolError(f"rsv 0x{rsv:02x} is not a combination of RSV1-3")
    length = len(payload)
    if opcode >= OP_CLOSE and (length > _MAX_CONTROL_PAYLOAD or not fin):
        raise LocalProtocolError("control frames are unfragmented and carry <= 125 bytes (§5.5)")
    head = bytearray([(0x80 if fin else 0) | rsv | opcode])
    mask_bit = 0x80 if mask is not None else 0
    if length < 126:            # §5.2: the minimal encoding MUST be used
        head.append(mask_bit | length)
    elif length < 1 << 16:
        head.append(mask_bit | 126)
        head += struct.pack("!H", length)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", length)
    if mask is None:
        return bytes(head) + bytes(payload)
    return bytes(head) + bytes(mask) + apply_mask(payload, mask)


def server_frame(opcode: int, payload=b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """An unmasked frame, as a server sends it (§5.1).

    Because it is unmasked, the same bytes can be written to every member of
    a room: build a broadcast once, send it many times.
    """
    return build_frame(opcode, payload, fin=fin, rsv=rsv)


def server_frame_header(opcode: int, length: int, *, fin: bool = True, rsv: int = 0) -> bytes:
    """The header of an unmasked frame of ``length`` payload bytes (§5.2).

    Written before the payload with one ``writev``, it spares a large
    payload the copy into a frame.
    """
    b0 = (0x80 if fin else 0) | rsv | opcode
    if length < 126:
        return bytes((b0, length))
    if length < 1 << 16:
        return struct.pack("!BBH", b0, 126, length)
    return struct.pack("!BBQ", b0, 127, length)


def client_frame(opcode: int, payload=b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """A frame masked with a fresh key, as a client must send it (§5.3: unpredictable keys)."""
    return build_frame(opcode, payload, fin=fin, rsv=rsv, mask=os.urandom(4))
