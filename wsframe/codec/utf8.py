"""Incremental, fail-fast UTF-8 validation (RFC 6455 §5.6, §8.1; RFC 3629).

A text message must be valid UTF-8, and an endpoint that finds otherwise
fails the connection with 1007 (§8.1). wsframe checks *as bytes arrive*: a
message may be split over many fragments and reads, and the error must be
reported when the offending byte arrives, not at the end of the message.

:class:`Utf8Validator` (reference) wraps Python's incremental UTF-8 decoder,
which rejects a sequence as soon as a byte cannot continue it (including
overlong forms, surrogates U+D800-U+DFFF and code points past U+10FFFF).
The compiled twin in ``_speedups/utf8.pyx`` is a hand-written state machine
with the same verdicts and the same failure offsets.
"""
from __future__ import annotations

import codecs

__all__ = ["Utf8Validator", "validate_utf8"]

_Decoder = codecs.getincrementaldecoder("utf-8")


class Utf8Validator:
    """Validates one text message fed in any number of pieces.

    ``feed(data)`` returns -1 while the bytes so far can still start valid
    UTF-8, else the index *in data* of the first byte that made the stream
    invalid. ``finish()`` says whether the message ended on a complete
    character. ``reset()`` prepares for the next message.
    """

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = _Decoder()

    def feed(self, data: bytes | bytearray | memoryview) -> int:
        pending = len(self._decoder.getstate()[0])
        try:
            self._decoder.decode(data, False)
        except UnicodeDecodeError as exc:
            # The error spans the bad sequence; the byte that made it bad is
            # its first byte for a bad lead byte, else the one after the
            # valid prefix (exc.end).
            bad = exc.start if exc.reason == "invalid start byte" else exc.end
            self._decoder = _Decoder()  # unusable after an error; start clean
            return bad - pending
        tail = self._decoder.getstate()[0]
        if len(tail) == 2 and tail[0] == 0xED and tail[1] >= 0xA0:
            # ED A0..BF can only begin a surrogate (U+D800-U+DFFF), never valid
            # UTF-8; Python's decoder waits for a third byte to say so.
            self._decoder = _Decoder()
            return len(data) - 1
        return -1

    def finish(self) -> bool:
        """True when no multi-byte character is left unfinished."""
        return self._decoder.getstate()[0] == b""

    def reset(self) -> None:
        self._decoder.reset()


def validate_utf8(data: bytes | bytearray | memoryview) -> bool:
    """One-shot check of a complete text payload."""
    try:
        codecs.utf_8_decode(data, None, True)
    except UnicodeDecodeError:
        return False
    return True
