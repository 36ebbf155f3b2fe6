"""The permessage-deflate frame path (RFC 7692 §7.2), pure-Python reference.

Sending (§7.2.1): compress the message payload with raw DEFLATE (no zlib
header), end it with an empty stored block (``Z_SYNC_FLUSH``), and remove the
four bytes ``00 00 ff ff`` that the flush always ends with. Receiving
(§7.2.2): put those four bytes back and inflate.

Both objects accept ``reset``: with "no context takeover" negotiated for a
direction, each message is compressed (or inflated) with an empty window,
which is what lets one compressor serve many connections.

A window of 8 bits (§7.1.2) is a special case, because zlib's raw deflate
refuses it: :class:`Deflater` then compresses with ``Z_RLE`` (matches of
distance 1 only), whose output never reaches back more than one byte and so
is valid under any window; :class:`Inflater` always inflates with at least
9 bits, a superset of 8.

The compiled twin (``_speedups/deflate.pyx``) calls zlib's C API directly and
produces the same bytes; the test suite checks that.
"""
from __future__ import annotations

import zlib

from wsframe.errors import ExtensionError, MessageTooBig

__all__ = ["Deflater", "Inflater", "TAIL", "deflater_memory", "inflater_memory"]

TAIL = b"\x00\x00\xff\xff"  # what Z_SYNC_FLUSH ends with (§7.2.1 removes it, §7.2.2 restores it)


def deflater_memory(window_bits: int, mem_level: int) -> int:
    """Bytes zlib allocates for a compressor (zlib's documented formula)."""
    return (1 << (max(window_bits, 9) + 2)) + (1 << (mem_level + 9))


def inflater_memory(window_bits: int) -> int:
    """Bytes zlib allocates for a decompressor: the window plus ~7 KiB of state."""
    return (1 << max(window_bits, 9)) + 7168


class Deflater:
    """Compresses messages for one direction of one (or, without context takeover, many)
    connections."""

    __slots__ = ("window_bits", "mem_level", "level", "_zobj")

    def __init__(self, window_bits: int = 15, mem_level: int = 8, level: int = 6) -> None:
        if not 8 <= window_bits <= 15 or not 1 <= mem_level <= 9 or not -1 <= level <= 9:
            raise ValueError("window_bits 8-15, mem_level 1-9, level -1-9")
        self.window_bits = window_bits
        self.mem_level = mem_level
        self.level = level
        self._zobj = None  # created on first use: an idle connection owns no zlib state

    def compress(self, data, reset: bool = False) -> bytes:
        """The compressed payload of one message, tail removed (§7.2.1)."""
        if reset or self._zobj is None:
            self._zobj = self._new()
        out = self._zobj.compress(data) + self._zobj.flush(zlib.Z_SYNC_FLUSH)
        # §7.2.1: the flushed data ends with 00 00 ff ff; remove those four octets.
        return out[:-4] if out.endswith(TAIL) else out

    def _new(self):
        if self.window_bits == 8:  # see the module docstring
            return zlib.compressobj(self.level, zlib.DEFLATED, -9, self.mem_level, zlib.Z_RLE)
        return zlib.compressobj(self.level, zlib.DEFLATED, -self.window_bits, self.mem_level)

    def close(self) -> None:
        """Free the zlib state now (it is recreated if used again)."""
        self._zobj = None


class Inflater:
    """Decompresses messages for one direction of one connection, with an output limit.

    Call :meth:`decompress` for each piece of a message's compressed payload
    as it arrives and :meth:`finish` at its end. ``limit`` is how many more
    bytes the message may inflate to; a piece that would inflate past it
    raises :class:`MessageTooBig` (1009) without producing the excess, however
    high the compression ratio (a "zip bomb" stops at the limit).
    """

    __slots__ = ("window_bits", "_zobj")

    def __init__(self, window_bits: int = 15) -> None:
        if not 8 <= window_bits <= 15:
            raise ValueError("window_bits 8-15")
        self.window_bits = max(window_bits, 9)
        self._zobj = None

    def decompress(self, data, limit: int) -> bytes:
        """Inflate one piece of a compressed message."""
        if self._zobj is None:
            self._zobj = zlib.decompressobj(-self.window_bits)
        try:
            out = self._zobj.decompress(data, limit + 1)
        except zlib.error as exc:
            self._zobj = None
            raise ExtensionError(f"invalid compressed data: {exc} (RFC 7692 §8)") from None
        if len(out) > limit:
            self._zobj = None
            raise MessageTooBig("message exceeds the size limit once decompressed")
        if self._zobj.eof:  # the peer ended the stream (BFINAL): start afresh next time
            self._zobj = None
        return out

    def finish(self, limit: int, reset: bool = False) -> bytes:
        """End a message: inflate the restored tail (§7.2.2); ``reset`` forgets the window."""
        out = self.decompress(TAIL, limit) if self._zobj is not None else b""
        if reset:
            self._zobj = None
        return out

    def close(self) -> None:
        self._zobj = None
