"""Frames annotated as their bytes go by: the engine of ``wsframe explain`` and ``--trace``.

:class:`FrameAnnotator` reads one direction of a connection (or a hex dump)
in pieces of any size and describes every frame: its header fields with
their RFC 6455 sections, its payload (unmasked, inflated, abbreviated), and
what is wrong with it, each problem with the close code an endpoint would
fail the connection with. It never raises on bad input: a violation is a
line of output, and decoding goes on where frame boundaries allow.

Every verdict is the protocol's own: each sender's bytes also go, as they
arrive, to a :class:`~wsframe.tools.shadow.ShadowReceiver` (a sans-IO
``Protocol`` in the receiving role), and what it fails the connection with
(header rules §5.1 / §5.2 / §5.5, fragment order §5.4, UTF-8 §8.1, close
payloads §5.5.1 / §7.4, permessage-deflate RFC 7692) is the problem shown at
the frame where it failed; the messages it delivers are the ones shown as
complete. After a failure (or a Close) a fresh shadow judges the next frame,
so problems in later frames are reported too: see :mod:`wsframe.tools.shadow`
for what a fresh shadow does and does not know. What is the annotator's own
is the display: each field, its bits and section, and the note on a
non-minimal length encoding (§5.2), which wsframe accepts.

:func:`trace_server` / :func:`trace_client` install a connection class that
prints, per connection, the handshake heads and then every frame received
(``<-``) and sent (``->``), live.
"""
from __future__ import annotations

import codecs
import itertools
import json
import sys
from typing import NamedTuple, Optional, TextIO

from wsframe.codec.close import describe_close_code
from wsframe.errors import InvalidRequest, InvalidResponse, MessageTooBig, RemoteProtocolError
from wsframe.codec.frames import (
    OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, OPCODE_NAMES, RSV1, RSV2, RSV3,
    FrameHeader, parse_header,
)
from wsframe.codec.handshake import (
    accept_key, check_upgrade_request, is_upgrade_request, read_request, read_response,
)
from wsframe.codec.http import HeadReader, HeadTooLarge, HttpSyntaxError, parse_parameterized_list
from wsframe.codec.masking import apply_mask, rotate_mask
from wsframe.codec.permessage_deflate import NegotiationError, parse_params
from wsframe.tools.partial_header import describe_partial_header
from wsframe.tools.shadow import INFLATE_LIMIT, ShadowReceiver

__all__ = ["Problem", "FrameAnnotator", "InflateParams", "trace_server", "trace_client"]

#: (window bits, no context takeover) for inflating one sender's messages (RFC 7692 §7.1).
InflateParams = tuple[int, bool]

KEEP = 128              # payload bytes kept per frame for display (every control payload fits)
HEX_PREVIEW = 32        # bytes shown as hex before "... N more bytes"
COMPACT_PREVIEW = 64    # text bytes shown per frame by a live trace

_OPCODE_MEANING = {
    OP_CONT: "continues a fragmented message (§5.4)",
    OP_TEXT: "starts a text message, UTF-8 data (§5.6)",
    OP_BINARY: "starts a binary message, any bytes (§5.6)",
    OP_CLOSE: "starts or answers the closing handshake (§5.5.1)",
    OP_PING: "a keepalive probe, answered with a Pong (§5.5.2)",
    OP_PONG: "answers a Ping, or an unsolicited heartbeat (§5.5.3)",
}


class Problem(NamedTuple):
    """One thing wrong, and the close code an endpoint fails the connection with."""

    text: str
    close_code: Optional[int] = None

    def __str__(self) -> str:
        if self.close_code is None:
            return f"PROBLEM: {self.text}"
        meaning = describe_close_code(self.close_code).split(":")[0]
        return f"PROBLEM: {self.text} -> close {self.close_code} ({meaning})"


def opcode_name(opcode: int) -> str:
    """``text``, ``ping`` ... or ``reserved non-control`` / ``reserved control`` (§5.2)."""
    if opcode in OPCODE_NAMES:
        return OPCODE_NAMES[opcode]
    return "reserved control" if opcode & 0x8 else "reserved non-control"


def quote_text(data: bytes, total: Optional[int] = None, limit: int = KEEP) -> str:
    """``data`` as a quoted string (invalid UTF-8 as U+FFFD), abbreviated past ``limit`` bytes."""
    total = len(data) if total is None else total
    shown = data[:limit]
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    text = json.dumps(decoder.decode(shown, final=len(shown) == total), ensure_ascii=False)
    return text if total <= len(shown) else f"{text} ... ({total - len(shown)} more bytes)"


def hex_bytes(data: bytes, total: Optional[int] = None, limit: int = HEX_PREVIEW) -> str:
    """``48 65 6c`` ... with a count of the bytes left out."""
    total = len(data) if total is None else total
    text = data[:limit].hex(" ")
    if total > min(len(data), limit):
        text += f" ... ({total - min(len(data), limit)} more bytes)"
    return text or "(none)"


def bits_of(b0: int, b1: int) -> str:
    """The first two header bytes as ``1000 0001  1000 0101``."""
    return f"{b0 >> 4:04b} {b0 & 15:04b}  {b1 >> 4:04b} {b1 & 15:04b}"


def first_bytes(header: FrameHeader) -> tuple[int, int]:
    """Bytes 0 and 1 of ``header`` as they were on the wire (§5.2)."""
    length7 = {7: header.length, 16: 126, 64: 127}[header.length_bits]
    return ((0x80 if header.fin else 0) | header.rsv | header.opcode,
            (0x80 if header.masked else 0) | length7)


def header_bytes(header: FrameHeader) -> bytes:
    """``header`` as it was on the wire, length encoding and masking key included (§5.2)."""
    b0, b1 = first_bytes(header)
    extended = b"" if header.length_bits == 7 else header.length.to_bytes(
        header.length_bits // 8, "big")
    return bytes((b0, b1)) + extended + (header.mask or b"")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# --- per-sender message state ---------------------------------------------------------


class _Message:
    """What one sender's message in progress looks like so far, for display (§5.4).

    Which message a frame belongs to follows the frame headers; whether the
    frames may come in that order, and the message's bytes (validated,
    inflated), are the shadow receiver's.
    """

    __slots__ = ("opcode", "frames", "size", "compressed", "wire_size", "kept", "delivered",
                 "stopped_at", "closed")

    def __init__(self) -> None:
        self.closed = False                        # this sender has sent a Close
        self.reset()

    def reset(self) -> None:
        self.opcode = 0             # 0: no message in progress
        self.frames = 0
        self.size = 0               # message bytes delivered (inflated, when compressed)
        self.wire_size = 0          # payload bytes as sent
        self.compressed = False
        self.kept = bytearray()     # the message's first bytes, for display
        self.delivered = False      # the shadow receiver delivered all of it
        self.stopped_at = 0         # the frame where the shadow stopped inside it, if any


class _Frame:
    """The frame being read."""

    __slots__ = ("header", "index", "offset", "sender", "guessed", "problems", "notes",
                 "shown", "kept", "masked_kept", "got", "in_message", "text", "compressed")

    def __init__(self, header: FrameHeader, index: int, offset: int, sender: str,
                 guessed: bool) -> None:
        self.header = header
        self.index = index
        self.offset = offset        # of its first byte in the stream
        self.sender = sender        # "client" or "server"
        self.guessed = guessed      # sender guessed from the MASK bit
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.shown = 0              # problems already printed
        self.kept = bytearray()     # unmasked payload, first KEEP bytes
        self.masked_kept = bytearray()
        self.got = 0                # payload bytes read so far
        self.in_message = False     # a data frame of its sender's message in progress
        self.text = False           # ... of a text message
        self.compressed = False     # ... of a compressed message


# --- the annotator --------------------------------------------------------------------


class FrameAnnotator:
    """Describe the frames of a byte stream as it arrives.

    ``sender``: ``"client"`` or ``"server"`` for one direction of a
    connection; ``None`` guesses each frame's sender from its MASK bit
    (clients mask, servers do not: §5.1). ``inflate`` maps a sender to the
    :data:`InflateParams` its compressed messages are inflated with; RSV1 is
    allowed (RFC 7692 §6) for senders in it. ``verbose`` draws the header
    bits with a label per field; otherwise each frame gets a compact block.

    :meth:`feed` and :meth:`finish` return the lines describing what became
    complete; :attr:`problems` collects every problem found (a rule broken:
    an endpoint fails the connection). Input that ends inside a frame is no
    problem, an endpoint waits for the rest: :attr:`truncated` says where.
    The protocol judges: each sender's bytes go to its own
    :class:`~wsframe.tools.shadow.ShadowReceiver`, and a receiver that
    stopped (a violation, a Close) is replaced by a fresh one at the next
    frame, so later frames are judged too, by a receiver that knows only
    whether a fragmented message is in progress.
    """

    def __init__(self, *, sender: Optional[str] = None,
                 inflate: Optional[dict[str, InflateParams]] = None,
                 verbose: bool = True) -> None:
        if sender not in (None, "client", "server"):
            raise ValueError("sender must be 'client', 'server' or None")
        self.sender = sender
        self.inflate = inflate or {}
        self.verbose = verbose
        self.problems: list[Problem] = []
        self.truncated: Optional[str] = None  # where the input ended mid-frame (not a problem)
        self.frames = 0             # frames whose header was read
        self.messages = 0           # messages completed
        self._offset = 0            # stream bytes consumed
        self._head = bytearray()    # an incomplete header
        self._frame: Optional[_Frame] = None
        self._left = 0              # payload bytes of _frame still to come
        self._messages = {"client": _Message(), "server": _Message()}

    @property
    def inflate(self) -> dict[str, InflateParams]:
        """Per sender, the :data:`InflateParams` its compressed messages inflate with."""
        return self._inflate

    @inflate.setter
    def inflate(self, params: dict[str, InflateParams]) -> None:
        # Set by a live trace once the handshake agrees on permessage-deflate: the
        # shadow receivers are made (again) with the new agreement at the next frame.
        self._inflate = dict(params)
        self._shadows: dict[str, ShadowReceiver] = {}

    # ---- input ----------------------------------------------------------------------

    def feed(self, data) -> list[str]:
        """Read more bytes; the lines for every frame (header or end) they complete."""
        out: list[str] = []
        view = memoryview(bytes(data))
        pos = 0
        while True:
            if self._frame is None:
                if pos < len(view):  # a header is 2 to 14 bytes: never buffer more
                    take = min(14 - len(self._head), len(view) - pos)
                    self._head += view[pos:pos + take]
                    pos += take
                header = parse_header(self._head)
                if header is None:
                    if pos < len(view):
                        continue
                    return out
                extra = len(self._head) - header.size  # payload bytes read with the header
                pos -= extra
                self._head.clear()
                self._start(header, out)
                self._offset += header.size
                if not header.length:
                    self._end(out)
            else:
                if pos == len(view):
                    return out
                take = min(self._left, len(view) - pos)
                self._payload(bytes(view[pos:pos + take]))
                pos += take
                self._offset += take
                if not self._left:
                    self._end(out)

    def finish(self) -> list[str]:
        """End of input: report a truncated frame and unfinished messages."""
        out: list[str] = []
        frame = self._frame
        cut = None
        if frame is not None:
            if frame.header.length >> 63:  # an impossible length (§5.2): nothing is "needed"
                text = (f"the input ends after {_plural(frame.got, 'payload byte')}: the rest of "
                        "the input was taken as this frame's payload")
            else:
                text = (f"{_plural(self._left, 'more byte')} needed (payload has "
                        f"{frame.got} of {frame.header.length} bytes)")
            # Not a problem: a receiver waits for the rest (it fails nothing).
            self.truncated = f"the input ends inside frame {frame.index}'s payload: {text}"
            wait = "" if self.problems else "; an endpoint waits for them"
            out += (self._payload_lines(frame) + self._problem_lines(frame)
                    + [f"  INCOMPLETE: {text}{wait}"])
            self._frame = None
            if frame.in_message and frame.header.fin:
                cut = frame.sender  # its message is cut short, said above
        elif self._head:
            out += self._partial_header_lines(bytes(self._head))
            self._head.clear()
        for sender, msg in self._messages.items():
            if msg.opcode and sender != cut:
                out.append(f"note: the {sender}'s {opcode_name(msg.opcode)} message is unfinished:"
                           f" {_plural(msg.frames, 'frame')}, none with FIN=1 yet (§5.4)")
        return out

    # ---- a frame, step by step ----------------------------------------------------

    def _start(self, header: FrameHeader, out: list[str]) -> None:
        self.frames += 1
        guessed = self.sender is None
        sender = self.sender or ("client" if header.masked else "server")
        frame = self._frame = _Frame(header, self.frames, self._offset, sender, guessed)
        self._left = header.length
        msg = self._messages[sender]
        deflate = sender in self.inflate
        shadow = self._shadows.get(sender)
        if shadow is None:
            shadow = self._shadows[sender] = ShadowReceiver(
                sender, self.inflate.get(sender), lambda data, last: self._piece(msg, data, last))
        shadow.frame_boundary(message_in_progress=bool(msg.opcode))
        opcode = header.opcode
        if opcode in (OP_CONT, OP_TEXT, OP_BINARY):
            self._follow_message(frame, msg, deflate)
        self._judge(frame, header_bytes(header))  # header rules first, then what they start
        if header.rsv == RSV1 and not deflate:
            frame.notes.append("if permessage-deflate was negotiated, RSV1 marks a compressed "
                               "message (RFC 7692 §6): explain it with --inflate")
        minimal = 7 if header.length < 126 else 16 if header.length < 1 << 16 else 64
        if header.length_bits > minimal:
            self._add(frame, Problem(
                f"length {header.length} sent in the {header.length_bits}-bit form: §5.2 requires "
                f"the minimal encoding, here {minimal}-bit (wsframe accepts it)"))
        if msg.closed:
            frame.notes.append(f"a frame after the {sender}'s Close frame: the receiver ignores "
                               "it (§5.5.1)")
        out += self._header_lines(frame)

    def _follow_message(self, frame: _Frame, msg: _Message, deflate: bool) -> None:
        """Which message a data frame belongs to (§5.4), for display: the shadow judges it."""
        header = frame.header
        if header.opcode == OP_CONT:
            if not msg.opcode:
                return
        else:
            msg.reset()
            msg.opcode = header.opcode
            msg.compressed = deflate and bool(header.rsv & RSV1)
        msg.frames += 1
        frame.in_message = True
        frame.text = msg.opcode == OP_TEXT
        frame.compressed = msg.compressed

    def _judge(self, frame: _Frame, data: bytes) -> None:
        """Give the frame's bytes to its sender's shadow receiver; add what it fails with."""
        shadow = self._shadows[frame.sender]
        failure = shadow.feed(data)
        if failure is not None:
            self._add(frame, self._verdict(frame, failure))
        msg = self._messages[frame.sender]
        if msg.opcode and shadow.stopped and not msg.stopped_at:
            msg.stopped_at = frame.index  # the message in progress is never delivered

    @staticmethod
    def _verdict(frame: _Frame, failure: RemoteProtocolError) -> Problem:
        if isinstance(failure, MessageTooBig):  # explain's inflation cap: not an RFC rule
            if frame.compressed:
                return Problem(f"message inflates past {INFLATE_LIMIT >> 20} MiB: not inflated "
                               "further")
            return Problem(f"message over {INFLATE_LIMIT >> 20} MiB, explain's limit for a "
                           "sender that compresses: not followed further")
        return Problem(failure.reason, failure.close_code)

    def _piece(self, msg: _Message, data: bytes, last: bool) -> None:
        """A piece of a message, delivered by the shadow receiver (validated, inflated)."""
        if msg.stopped_at:
            return  # the rest of a message whose receiver stopped (see frame_boundary)
        room = KEEP - len(msg.kept)
        if room > 0:
            msg.kept += data[:room]
        msg.size += len(data)
        if last:
            msg.delivered = True
            self.messages += 1

    def _payload(self, chunk: bytes) -> None:
        frame = self._frame
        header = frame.header
        self._judge(frame, chunk)
        if header.masked:  # §5.3: octet i XOR key octet (i mod 4)
            room = KEEP - len(frame.masked_kept)
            if room > 0:
                frame.masked_kept += chunk[:room]
            chunk = apply_mask(chunk, rotate_mask(header.mask, frame.got))
        room = KEEP - len(frame.kept)
        if room > 0:
            frame.kept += chunk[:room]
        frame.got += len(chunk)
        self._left -= len(chunk)
        if frame.in_message:
            self._messages[frame.sender].wire_size += len(chunk)

    def _add(self, frame: _Frame, problem: Problem) -> None:
        frame.problems.append(problem)
        self.problems.append(problem)

    @staticmethod
    def _problem_lines(frame: _Frame) -> list[str]:
        """The frame's problems and notes not printed yet."""
        lines = [f"  {p}" for p in frame.problems[frame.shown:]]
        lines += [f"  note: {n}" for n in frame.notes]
        frame.shown = len(frame.problems)
        frame.notes.clear()
        return lines

    def _end(self, out: list[str]) -> None:
        frame = self._frame
        self._frame = None
        header = frame.header
        msg = self._messages[frame.sender]
        if header.opcode == OP_CLOSE:
            msg.closed = True
        message_lines: list[str] = []
        if frame.in_message and header.fin:
            message_lines = self._end_message(frame, msg)
        out += self._payload_lines(frame) + self._problem_lines(frame) + message_lines

    def _end_message(self, frame: _Frame, msg: _Message) -> list[str]:
        """The FIN=1 frame of a message has ended: what its receiver made of it."""
        lines = []
        whole = msg.frames > 1 or msg.compressed  # worth a line of its own
        if msg.delivered:
            if whole:
                lines = self._message_lines(msg)
        elif whole or msg.stopped_at != frame.index:
            lines = [f"  message not delivered: its receiver stopped reading at frame "
                     f"{msg.stopped_at}"]
        closed = msg.closed
        msg.reset()
        msg.closed = closed
        return lines

    # ---- output ---------------------------------------------------------------------

    def _header_lines(self, frame: _Frame) -> list[str]:
        header = frame.header
        problems = self._problem_lines(frame)
        if not self.verbose:
            return [_compact_header(header)] + problems
        size = header.size + header.length
        summary = (f"{opcode_name(header.opcode)}, FIN={int(header.fin)}, "
                   f"{'masked' if header.masked else 'not masked'}, "
                   f"{_plural(header.length, 'byte')} of payload")
        lines = [f"Frame {frame.index} at byte {frame.offset} ({_plural(size, 'byte')} in all): "
                 f"{summary}"]
        lines += problems
        lines += [f"  {line}" for line in self._diagram(frame)]
        pos = frame.offset + 2
        if header.length_bits > 7:
            n = header.length_bits // 8
            lines.append(f"  extended payload length, bytes {pos}-{pos + n - 1}: "
                         f"{header.length} ({header.length_bits}-bit unsigned, network byte order,"
                         f" §5.2)")
            pos += n
        if header.masked:
            lines.append(f"  masking key, bytes {pos}-{pos + 3}: {header.mask.hex(' ')} (§5.3)")
        return lines

    def _diagram(self, frame: _Frame) -> list[str]:
        """The first two bytes, bit by bit, a label per field."""
        header = frame.header
        b0, b1 = first_bytes(header)
        labels = [self._length_label(header, b1 & 0x7F), self._mask_label(frame),
                  f"opcode = 0x{header.opcode:x} ({opcode_name(header.opcode)}): "
                  + _OPCODE_MEANING.get(header.opcode, "reserved for future use (§5.2)")]
        for name, bit in (("RSV3", RSV3), ("RSV2", RSV2), ("RSV1", RSV1)):
            labels.append(self._rsv_label(frame, name, bit))
        if header.fin:
            fin = "FIN = 1: the final frame of its message (§5.2)"
            if header.opcode >= OP_CLOSE:
                fin = "FIN = 1: control frames are never fragmented (§5.5)"
        else:
            fin = "FIN = 0: more fragments of this message follow (§5.4)"
        labels.append(fin)
        lines = ["byte 0     byte 1", f"0x{b0:02x}       0x{b1:02x}", bits_of(b0, b1),
                 "|||| \\__/  |\\______/"]
        anchors = [15, 11, 6, 3, 2, 1, 0]  # columns of: length, MASK, opcode, RSV3-1, FIN
        for i, (anchor, label) in enumerate(zip(anchors, labels)):
            row = [" "] * 22
            for pending in anchors[i + 1:]:
                row[pending] = "|"
            row[anchor] = "`"
            row[anchor + 1:] = "-" * (21 - anchor)
            lines.append("".join(row) + " " + label)
        return lines

    @staticmethod
    def _length_label(header: FrameHeader, length7: int) -> str:
        if length7 < 126:
            return f"payload len = {length7}: the length itself (7-bit form, 0-125, §5.2)"
        return (f"payload len = {length7}: a {header.length_bits}-bit extended length follows "
                "(§5.2)")

    @staticmethod
    def _mask_label(frame: _Frame) -> str:
        if frame.guessed:
            how = f"so sent by a {frame.sender}"
        else:
            how = f"sent by the {frame.sender}"
        if frame.header.masked:
            return f"MASK = 1: payload masked with a 4-byte key, {how} (§5.1, §5.3)"
        return f"MASK = 0: payload not masked, {how} (§5.1)"

    def _rsv_label(self, frame: _Frame, name: str, bit: int) -> str:
        value = int(bool(frame.header.rsv & bit))
        if bit == RSV1:
            if value and frame.sender in self.inflate:
                if frame.header.opcode in (OP_TEXT, OP_BINARY):
                    return "RSV1 = 1: compressed message (permessage-deflate, RFC 7692 §6)"
                return "RSV1 = 1: not allowed here (RFC 7692 §6.1)"
            if value:
                return "RSV1 = 1: reserved, needs an extension (permessage-deflate: RFC 7692 §6)"
            return "RSV1 = 0 (§5.2; under permessage-deflate 1 means compressed, RFC 7692 §6)"
        if value:
            return f"{name} = 1: reserved, must be 0 without a negotiated extension (§5.2)"
        return f"{name} = 0 (§5.2)"

    def _payload_lines(self, frame: _Frame) -> list[str]:
        header = frame.header
        kept, got = bytes(frame.kept), frame.got
        is_text = self._is_text(frame)
        lines: list[str] = []
        if self.verbose:
            start = frame.offset + header.size
            if not header.length:
                return ["  payload: none (0 bytes)"] + self._control_lines(frame, kept)
            where = (f"bytes {start}-{start + got - 1}" if got > 1 else f"byte {start}" if got
                     else "no bytes yet")
            lines.append(f"  payload: {where} ({_plural(got, 'byte')}"
                         f"{'' if got == header.length else f' of {header.length}'})"
                         + (", masked: byte i XOR key[i mod 4] (§5.3)" if header.masked else ""))
            if header.masked:
                lines.append(f"    masked:   {hex_bytes(bytes(frame.masked_kept), got)}")
                lines.append(f"    unmasked: {hex_bytes(kept, got)}")
            else:
                lines.append(f"    hex:  {hex_bytes(kept, got)}")
            if frame.compressed:
                lines.append("    compressed: inflated with the whole message (RFC 7692 §7.2.2)")
            elif is_text:
                lines.append(f"    text:{' ' * (6 if header.masked else 1)}{quote_text(kept, got)}")
        else:
            if frame.compressed:
                lines.append(f"  compressed: {hex_bytes(kept, got, 16)}")
            elif is_text:
                lines.append(f"  text: {quote_text(kept, got, COMPACT_PREVIEW)}")
            elif header.opcode != OP_CLOSE and got:
                lines.append(f"  hex: {hex_bytes(kept, got, 16)}")
        return lines + self._control_lines(frame, kept)

    @staticmethod
    def _is_text(frame: _Frame) -> bool:
        if frame.text or frame.header.opcode == OP_TEXT:
            return True
        # ping / pong data is often text; show it when it is
        return (frame.header.opcode in (OP_PING, OP_PONG) and frame.got > 0
                and _is_utf8(bytes(frame.kept)))

    def _control_lines(self, frame: _Frame, kept: bytes) -> list[str]:
        opcode = frame.header.opcode
        pad = "    " if self.verbose else "  "
        if opcode == OP_CLOSE:
            if not kept:
                return [f"{pad}close: no status code; the receiver reports 1005 (§7.1.5)"]
            if len(kept) < 2:
                return [f"{pad}close payload: 1 byte, too short for a 2-byte status code (§5.5.1)"]
            code = int.from_bytes(kept[:2], "big")
            lines = [f"{pad}close code: {code} ({describe_close_code(code)}; §7.4)"]
            if len(kept) > 2:
                lines.append(f"{pad}close reason: {quote_text(kept[2:])} (UTF-8, §5.5.1)")
            return lines
        if opcode == OP_PING and self.verbose and not frame.problems:
            return [f"{pad}the receiver answers with a Pong carrying the same data (§5.5.2)"]
        return []

    def _message_lines(self, msg: _Message) -> list[str]:
        kept = bytes(msg.kept)
        how = _plural(msg.frames, "frame")
        if msg.compressed:
            how += (f", inflated from {msg.wire_size} to {msg.size} bytes after appending "
                    "00 00 ff ff (RFC 7692 §7.2.2)")
        if msg.opcode == OP_TEXT:
            body = quote_text(kept, msg.size, KEEP if self.verbose else COMPACT_PREVIEW)
        else:
            body = hex_bytes(kept, msg.size, HEX_PREVIEW if self.verbose else 16)
        return [f"  message complete: {opcode_name(msg.opcode)}, {_plural(msg.size, 'byte')} "
                f"({how}): {body}"]

    def _partial_header_lines(self, head: bytes) -> list[str]:
        """The input ends inside a header: what its bytes say, and whether they break a rule."""
        self.frames += 1
        part = describe_partial_header(head, sender=self.sender,
                                       deflate_senders=frozenset(self.inflate))
        have = f"have {hex_bytes(head)}"
        lines = [f"Frame {self.frames} at byte {self._offset}: header incomplete ({have})"]
        if part.violation is not None:
            problem = Problem(f"{part.violation.reason}; decided at byte {part.decided_at}, "
                              "so an endpoint fails the connection without waiting for the rest",
                              part.violation.close_code)
            self.problems.append(problem)
            lines.append(f"  {problem}")
        lines += [f"  {line}" for line in part.lines]
        self.truncated = (f"the input ends inside frame {self.frames}'s header: "
                          f"{part.needed} needed (§5.2)")
        if part.violation is None and not self.problems:
            lines.append(f"  INCOMPLETE: {part.needed} needed to complete the frame header; "
                         "nothing wrong so far, an endpoint waits for them")
        elif part.violation is None:
            lines.append(f"  INCOMPLETE: {part.needed} needed to complete the frame header")
        return lines


def _compact_header(header: FrameHeader) -> str:
    """One line: the bits, then the fields."""
    b0, b1 = first_bytes(header)
    rsv = "".join("1" if header.rsv & bit else "0" for bit in (RSV1, RSV2, RSV3))
    line = (f"{bits_of(b0, b1)}  {opcode_name(header.opcode)} FIN={int(header.fin)} RSV={rsv} "
            f"MASK={int(header.masked)} len={header.length} ({header.length_bits}-bit)")
    if header.masked:
        line += f" key={header.mask.hex()}"
    return line


def _is_utf8(data: bytes) -> bool:
    """Printable UTF-8 text (worth showing as text)."""
    try:
        return data.decode("utf-8").isprintable()
    except UnicodeDecodeError:
        return False


# --- live tracing ---------------------------------------------------------------------


class _Direction:
    """One direction of a traced connection: an HTTP head, then frames (or raw bytes)."""

    __slots__ = ("arrow", "is_request", "mode", "reader", "annotator")

    def __init__(self, arrow: str, is_request: bool) -> None:
        self.arrow = arrow
        self.is_request = is_request    # carries the request (client to server)
        self.mode = "head"              # "head", then "frames" or "raw"
        self.reader: Optional[HeadReader] = HeadReader()
        self.annotator = FrameAnnotator(sender="client" if is_request else "server",
                                        verbose=False)


class ConnTrace:
    """The trace state of one connection (the one slot a traced connection adds)."""

    __slots__ = ("id", "_out", "_request", "_response", "_key", "_plain", "incoming",
                 "outgoing")

    def __init__(self, conn_id: int, out: Optional[TextIO], is_client: bool) -> None:
        self.id = conn_id
        self._out = out
        # The request goes client -> server, the response server -> client.
        request = _Direction("->" if is_client else "<-", True)
        response = _Direction("<-" if is_client else "->", False)
        self._request, self._response = request, response
        self.incoming = response if is_client else request
        self.outgoing = request if is_client else response
        self._key: Optional[str] = None
        self._plain = False             # a plain HTTP request, no upgrade asked for

    def write(self, arrow: Optional[str], lines: list[str]) -> None:
        """Print ``lines`` prefixed ``[conn N <-]``, and flush."""
        if not lines:
            return
        prefix = f"[conn {self.id} {arrow}] " if arrow else f"[conn {self.id}] "
        out = self._out or sys.stdout
        out.write("".join(prefix + line + "\n" for line in lines))
        out.flush()

    def bytes_seen(self, direction: _Direction, data) -> None:
        """Describe ``data`` (never raises: a trace must not change the protocol)."""
        try:
            self._bytes(direction, bytes(data))
        except Exception as exc:  # a bug here must not take the connection down
            direction.mode = "raw"
            try:
                self.write(direction.arrow, [f"(trace error, no more frames traced: {exc!r})"])
            except Exception:
                pass

    def _bytes(self, direction: _Direction, data: bytes) -> None:
        if direction.mode == "frames":
            return self.write(direction.arrow, direction.annotator.feed(data))
        if direction.mode == "raw":
            return self.write(direction.arrow, [f"{_plural(len(data), 'byte')} of body, not "
                                                f"WebSocket frames: {quote_text(data)}"])
        try:
            head = direction.reader.feed(data)
        except HeadTooLarge as exc:
            direction.mode = "raw"
            return self.write(direction.arrow, [f"HTTP head too large: {exc}"])
        if head is None:
            return
        rest = direction.reader.rest
        direction.reader = None
        lines = [line.rstrip("\r") for line in head.decode("latin-1").split("\n")]
        note = self._request_note(head) if direction.is_request else self._response_note(head)
        self.write(direction.arrow, lines + [f"  ({note})"])
        if rest:
            self._bytes(direction, rest)

    def _request_note(self, head: bytes) -> str:
        direction = self._request
        try:
            request = read_request(head)
            if not is_upgrade_request(request):
                direction.mode = "raw"
                self._plain = True
                return "a plain HTTP request, not a WebSocket upgrade"
            offer = check_upgrade_request(request)
        except InvalidRequest as exc:
            direction.mode = "raw"
            return f"invalid upgrade request: a server answers {exc.status}: {exc.reason} (§4.2.1)"
        direction.mode = "frames"
        self._key = offer.key
        return (f"upgrade request, valid per §4.2.1; expected Sec-WebSocket-Accept: "
                f"{accept_key(offer.key)} (§4.2.2)")

    def _response_note(self, head: bytes) -> str:
        try:
            response = read_response(head)
        except InvalidResponse as exc:
            self._response.mode = self._request.mode = "raw"
            return exc.reason
        if response.status != 101:
            self._response.mode = self._request.mode = "raw"
            if self._plain:
                return "a plain HTTP response: no WebSocket was asked for"
            return f"handshake refused: {response.status} {response.reason} (§4.1)"
        self._response.mode = "frames"
        notes = ["101: the handshake is complete, WebSocket frames follow (§4.2.2)"]
        if self._key is not None:
            ok = response.headers.get_all("Sec-WebSocket-Accept") == [accept_key(self._key)]
            notes.append("Sec-WebSocket-Accept matches the key (§4.1 item 4)" if ok
                         else "Sec-WebSocket-Accept does NOT match the key (§4.1 item 4)")
        try:
            agreed = parse_parameterized_list(response.headers.get("Sec-WebSocket-Extensions", ""))
        except HttpSyntaxError:
            agreed = []
        for name, params in agreed:
            if name != "permessage-deflate":
                continue
            try:
                parse_params(params, offer=False)
            except NegotiationError:
                continue
            # A 15-bit window that keeps context inflates whatever the sender did.
            for direction in (self._request, self._response):
                direction.annotator.inflate = {"client": (15, False), "server": (15, False)}
            notes.append("permessage-deflate agreed: RSV1 marks a compressed message "
                         "(RFC 7692 §6)")
        return "; ".join(notes)

    def closed(self, conn) -> None:
        """The connection's transport is closed: say how it ended."""
        if self._response.mode != "frames":
            return self.write(None, ["connection closed (no WebSocket was opened)"])
        code = conn.close_code
        if code is None:
            return self.write(None, ["connection closed"])
        reason = conn.close_reason
        self.write(None, [f"connection closed: {code} ({describe_close_code(code).split(':')[0]})"
                          + (f" {reason!r}" if reason else "")])


def _traced_class(base: type, out: Optional[TextIO], is_client: bool) -> type:
    """A subclass of ``base`` that reports its bytes to a :class:`ConnTrace`."""
    if getattr(base, "_wsframe_traced", False):
        return base
    ids = itertools.count(1)

    class Traced(base):
        __slots__ = ("_trace",)
        _wsframe_traced = True

        def __init__(self, *args, **kwargs) -> None:
            self._trace = ConnTrace(next(ids), out, is_client)
            super().__init__(*args, **kwargs)

        def receive_data(self, data) -> None:
            self._trace.bytes_seen(self._trace.incoming, data)
            super().receive_data(data)

        def _write(self, data) -> None:
            self._trace.bytes_seen(self._trace.outgoing, data)
            super()._write(data)

        def _plaintext_sent(self, data) -> None:  # over TLS, _write above is not reached
            self._trace.bytes_seen(self._trace.outgoing, data)

        def _transport_closed(self) -> None:
            try:
                self._trace.closed(self)
            except Exception:
                pass
            super()._transport_closed()

    Traced.__name__ = Traced.__qualname__ = f"Traced{base.__name__}"
    return Traced


def trace_server(server, out: Optional[TextIO] = None) -> None:
    """Print every connection of ``server``: handshake heads, then each frame, annotated.

    Sets ``server.conn_class`` to a traced subclass of the current one.
    ``out`` defaults to ``sys.stdout`` (looked up at each write). Lines are
    prefixed ``[conn N <-]`` (received) or ``[conn N ->]`` (sent) and flushed
    as they are written. Over TLS the plaintext is traced, both ways.
    """
    server.conn_class = _traced_class(server.conn_class, out, is_client=False)


def trace_client(client, out: Optional[TextIO] = None) -> None:
    """The same for a :class:`~wsframe.client.reconnecting.ReconnectingClient` (each reconnection gets a new id).

    Sets ``client.conn_class``; over ``wss://`` the plaintext is traced, both ways.
    """
    client.conn_class = _traced_class(client.conn_class, out, is_client=True)
