"""The sans-IO WebSocket protocol core (RFC 6455 §5-§7, RFC 7692 §6).

:class:`Protocol` turns received bytes into messages and calls into bytes to
send. It owns no socket, no clock and no thread. It does the routine work
itself: answers Pings (§5.5.2), runs the closing handshake (§7), fails the
connection with the right close code when the peer breaks a rule (§7.1.7),
and says when the TCP connection should be closed (§7.1.1).

Call order, for any I/O layer::

    proto.receive_data(data)   # bytes read from the socket (any amount)
    proto.receive_eof()        # the peer closed its side of TCP
    ...                        # hooks fire in wire order while receive_* run
    proto.send(...) / ping() / pong() / close()   # queue frames via _write()
    if proto.close_tcp: ...    # time to close the socket (after writing)

What happens to received messages and outgoing bytes is decided by a
subclass through the hooks (``_on_message``, ``_on_ping`` ... and
``_write``): :class:`wsframe.sansio.roles.EventProtocol` collects events and bytes
in lists (the classic sans-IO API, ``events()`` / ``data_to_send()``); the
epoll server calls the application and the socket directly, with no event
objects on its hot path.

Memory per connection is part of the design: slots only, one shared
:class:`Limits` object, no buffer while idle (a message in progress keeps one
bytearray, bounded by the size limit whatever the number of fragments), and
zlib state created on first use and released when the agreement allows.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Optional, Union

from wsframe import codec
from wsframe.codec.close import ABNORMAL_CLOSURE, build_close_payload, parse_close_payload
from wsframe.errors import (
    InvalidPayload, InvalidState, LocalProtocolError, MessageTooBig, ProtocolViolation,
    RemoteProtocolError,
)
from wsframe.codec.frames import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RSV1
from wsframe.codec.permessage_deflate import Agreement

__all__ = ["State", "Limits", "DEFAULT_LIMITS", "derived_fragment_cap", "Protocol",
           "TRANSITIONS", "ALLOWED"]


class State(IntEnum):
    """The connection's state (§4, §7)."""

    CONNECTING = 0   # opening handshake in progress
    OPEN = 1         # messages flow both ways
    CLOSING = 2      # we sent a Close frame and wait for the peer's (§7.1.2)
    CLOSED = 3       # closing handshake done, or the connection failed / dropped


CONNECTING, OPEN, CLOSING, CLOSED = State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED

#: Every state change, in one place: (state, what happened) -> new state.
TRANSITIONS: dict[tuple[State, str], State] = {
    (CONNECTING, "handshake accepted"): OPEN,
    (CONNECTING, "handshake refused"): CLOSED,
    (OPEN, "close sent"): CLOSING,           # §7.1.2: wait for the peer's Close
    (OPEN, "close received"): CLOSED,        # §5.5.1: we answer it at once
    (CLOSING, "close received"): CLOSED,     # §7.1.4: the closing handshake is done
    (CONNECTING, "failed"): CLOSED,          # §7.1.7: _Fail the WebSocket Connection_
    (OPEN, "failed"): CLOSED,
    (CLOSING, "failed"): CLOSED,
    (CONNECTING, "eof"): CLOSED,             # §7.1.5: TCP closed, code 1006
    (OPEN, "eof"): CLOSED,
    (CLOSING, "eof"): CLOSED,
}

#: The API calls each state allows; any other raises InvalidState.
ALLOWED: dict[str, frozenset[State]] = {
    "send a message": frozenset({OPEN}),
    "send a ping": frozenset({OPEN}),
    "send a pong": frozenset({OPEN}),
}


#: A message may have one frame per this many bytes of ``max_message_size``
#: (at least :data:`MIN_FRAGMENT_CAP`) unless ``max_fragments`` says otherwise.
BYTES_PER_FRAGMENT = 16
#: The smallest derived fragment cap: a small size limit still allows messages
#: sent in many tiny pieces (a keystroke per frame, say).
MIN_FRAGMENT_CAP = 4096


@dataclass(frozen=True)
class Limits:
    """Resource limits, shared by every connection that uses them (one object).

    Each default comes with its reason; the Autobahn testee raises only
    ``max_message_size`` (to 16 MiB, because the suite's own messages go that
    high) and every other limit follows from it.

    ``max_fragments`` bounds the frames of one message. Memory is already
    bounded by the message size; the frame count bounds the *CPU* a message
    costs (each frame has a fixed cost, even an empty one). Left at ``None``
    it is derived from the size limit: one frame per
    :data:`BYTES_PER_FRAGMENT` bytes (at least :data:`MIN_FRAGMENT_CAP`), so
    the work per message stays proportional to the bytes a message may carry
    and raising the size limit never leaves the fragment cap failing
    legitimate traffic (Autobahn 9.3.1 sends 4 MiB in 65,537 frames).
    Read the cap in force from :attr:`fragment_cap`.
    """

    max_message_size: int = 1 << 20   # 1 MiB: memory per connection is bounded by it; over it -> 1009
    max_frame_size: int = 1 << 20     # a frame is checked against it from its header, before buffering
    max_fragments: Optional[int] = None  # frames per message (1009 past it); None: derived
    stream_messages: bool = False     # deliver messages as Fragment pieces instead of one buffer
    #: The frames-per-message cap in force (``max_fragments`` or the derived one).
    fragment_cap: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        explicit = self.max_fragments
        if min(self.max_message_size, self.max_frame_size,
               1 if explicit is None else explicit) < 1:
            raise ValueError("limits must be positive")
        cap = explicit if explicit is not None else derived_fragment_cap(self.max_message_size)
        # Computed once (init=False), so the per-frame check reads a plain attribute.
        object.__setattr__(self, "fragment_cap", cap)



def derived_fragment_cap(max_message_size: int) -> int:
    """The fragment cap that goes with a message size limit (see :class:`Limits`)."""
    return max(MIN_FRAGMENT_CAP, -(-max_message_size // BYTES_PER_FRAGMENT))  # rounded up


DEFAULT_LIMITS = Limits()

# Shared compressors for "no context takeover" directions, one per parameter set
# and thread: such a compressor starts every message from an empty window, so it
# can serve any number of connections -- of one loop at a time. Per thread, not per
# process: zlib releases the GIL while it compresses (and free-threaded Python has
# none), so two loops in two threads must never share one.
_shared = threading.local()


def shared_deflater(window_bits: int, mem_level: int, level: int):
    """This thread's compressor for these parameters (no context takeover)."""
    deflaters = getattr(_shared, "deflaters", None)
    if deflaters is None:
        deflaters = _shared.deflaters = {}
    key = (window_bits, mem_level, level)
    deflater = deflaters.get(key)
    if deflater is None:
        deflater = deflaters[key] = codec.Deflater(window_bits, mem_level, level)
    return deflater


class Protocol:
    """One WebSocket connection after the opening handshake, either role.

    ``is_client`` selects the role: a client masks what it sends and rejects
    masked frames, a server the opposite (§5.1). ``deflate`` is the
    permessage-deflate :class:`Agreement`, or ``None``.
    """

    __slots__ = (
        "is_client", "state", "limits", "deflate", "close_sent", "close_received", "failure",
        "_parser", "_msg_opcode", "_msg_buf", "_msg_size", "_msg_frames", "_msg_compressed",
        "_frame_open", "_utf8", "_inflater", "_deflater",
    )

    def __init__(self, is_client: bool, *, limits: Limits = DEFAULT_LIMITS,
                 deflate: Optional[Agreement] = None, state: State = OPEN) -> None:
        self.is_client = is_client
        self.state = state
        self.limits = limits
        self.deflate = deflate
        self.close_sent: Optional[tuple[int, str]] = None      # (code, reason) we sent
        self.close_received: Optional[tuple[int, str]] = None  # (code, reason) the peer sent
        self.failure: Optional[RemoteProtocolError] = None     # why we failed the connection
        self._parser = None
        if state is not CONNECTING:
            self._start_parser()
        self._msg_opcode = 0          # opcode of the message in progress, 0 if none
        self._msg_buf = None          # its bytes so far (a bytearray), unless streamed
        self._msg_size = 0
        self._msg_frames = 0
        self._msg_compressed = False
        self._frame_open = False      # inside a data frame whose payload is still arriving
        self._utf8 = None             # incremental validator, made for the first split text
        self._inflater = None
        self._deflater = None

    def _start_parser(self) -> None:
        self._parser = codec.FrameParser(
            require_mask=not self.is_client,  # §5.1
            allowed_rsv=RSV1 if self.deflate is not None else 0,  # RFC 7692 §6
            max_frame_size=self.limits.max_frame_size)

    def _transition(self, event: str) -> None:
        try:
            self.state = TRANSITIONS[self.state, event]
        except KeyError:
            raise InvalidState(self.state, f"handle '{event}'") from None

    def _check_allowed(self, action: str) -> None:
        if self.state not in ALLOWED[action]:
            raise InvalidState(self.state, action)

    # ---- hooks: override in a subclass -------------------------------------

    def _handshake_data(self, data) -> None:
        """Bytes received before the connection is OPEN (the opening handshake)."""

    def _write(self, data: bytes) -> None:
        """Bytes to send to the peer, in order."""
        raise NotImplementedError

    def _on_message(self, data: bytes, is_text: bool) -> None:
        """A whole binary message (or a text one's UTF-8 bytes, from :meth:`_on_text`)."""

    def _on_text(self, text: str, raw) -> None:
        """A whole text message, decoded; ``raw`` is its UTF-8 (bytes, or a bytearray when
        it came in pieces). By default handed to :meth:`_on_message` as bytes."""
        self._on_message(raw, True)

    def _on_fragment(self, data: bytes, is_text: bool, first: bool, last: bool) -> None:
        """A piece of a message, when ``limits.stream_messages`` is set."""

    def _on_ping(self, data: bytes) -> None:
        """A Ping arrived; the Pong is already on its way."""

    def _on_pong(self, data: bytes) -> None:
        """A Pong arrived."""

    def _answer_ping(self, payload: bytes) -> None:
        """§5.5.2: answer a Ping with a Pong carrying the same data (hook: an I/O layer
        may answer only the most recent of several, as the RFC allows)."""
        self._send_frame(OP_PONG, payload)

    def _on_close(self, code: int, reason: str) -> None:
        """The peer's Close frame arrived (our answer, if due, is already sent)."""

    def _on_closed(self) -> None:
        """The WebSocket connection is now CLOSED; see :attr:`close_code`."""

    # ---- receiving ---------------------------------------------------------------

    def receive_data(self, data) -> None:
        """Process bytes received from the peer (any amount, any split).

        Hooks are called in wire order. A protocol violation fails the
        connection (a Close frame with the error's code is written and the
        state becomes CLOSED); everything received before the bad frame has
        been delivered by then. Data after a Close frame is ignored (§5.5.1).
        """
        state = self.state
        if state is not OPEN and state is not CLOSING:
            if state is CONNECTING:
                self._handshake_data(data)
            return
        parser = self._parser
        parser.feed(data)
        next_chunk = parser.next_chunk
        limits = self.limits
        max_size = limits.max_message_size
        stream = limits.stream_messages
        validate_utf8 = codec.validate_utf8
        try:
            while True:
                chunk = next_chunk()
                if chunk is None:
                    return
                opcode, fin, rsv, payload, remaining = chunk
                if fin and not remaining and 0 < opcode < OP_CLOSE and not self._msg_opcode:
                    # The common case, kept short: a whole message in one whole frame.
                    is_text = opcode == OP_TEXT
                    if rsv:  # RFC 7692 §6: RSV1 (the parser allows it only if negotiated)
                        payload = self._inflate(payload, True)
                    if len(payload) > max_size:
                        raise MessageTooBig(f"message over {max_size} bytes")
                    if not is_text:
                        if stream:
                            self._on_fragment(payload, False, True, True)
                        else:
                            self._on_message(payload, False)
                    elif stream:
                        if not validate_utf8(payload):
                            raise InvalidPayload("invalid UTF-8 in a text message (§8.1)")
                        self._on_fragment(payload, True, True, True)
                    else:
                        try:  # §8.1: the whole message is here: check and decode in one pass
                            text = str(payload, "utf-8")
                        except UnicodeDecodeError:
                            raise InvalidPayload("invalid UTF-8 in a text message (§8.1)") from None
                        self._on_text(text, payload)
                elif opcode >= OP_CLOSE:
                    self._control_frame(opcode, rsv, payload)
                else:
                    self._data_chunk(opcode, fin, rsv, payload, remaining)
                if self.state is CLOSED:  # a Close arrived, or a hook closed the connection
                    return
        except RemoteProtocolError as exc:
            self._protocol_error(exc)

    def _protocol_error(self, error: RemoteProtocolError) -> None:
        """The peer broke the protocol; by default fail the connection at once.

        Hooks run synchronously, so whatever the application did with the
        messages before the bad frame (an echo, say) is already written.
        """
        self.fail(error)

    def _data_chunk(self, opcode: int, fin: bool, rsv: int, payload: bytes, remaining: int) -> None:
        """A piece of a data frame (see ``FrameParser`` for what a chunk is)."""
        limits = self.limits
        if not self._frame_open:  # the first chunk of a frame
            if opcode == OP_CONT:
                if not self._msg_opcode:
                    raise ProtocolViolation("continuation frame with no message to continue (§5.4)")
                if rsv:
                    raise ProtocolViolation("RSV1 on a continuation frame (RFC 7692 §6.1)")
            else:
                if self._msg_opcode:
                    raise ProtocolViolation("new message inside a fragmented one (§5.4)")
                self._msg_opcode = opcode
                self._msg_compressed = bool(rsv)
            self._msg_frames += 1
            if self._msg_frames > limits.fragment_cap:
                # §10.4: an endpoint may limit what it accepts; over the cap -> 1009.
                raise MessageTooBig(f"message in more than {limits.fragment_cap} frames")
            if (not self._msg_compressed
                    and self._msg_size + len(payload) + remaining > limits.max_message_size):
                # §10.4: refuse before buffering, from the frame's header alone.
                raise MessageTooBig(f"message over {limits.max_message_size} bytes")
            self._frame_open = True
        end = fin and not remaining
        if self._msg_compressed:
            payload = self._inflate(payload, end)
        self._accept_payload(payload, end)
        if not remaining:
            self._frame_open = False
            if fin:
                self._end_message()

    def _inflate(self, payload: bytes, end: bool) -> bytes:
        """RFC 7692 §7.2.2: inflate as the compressed bytes arrive, within the size limit."""
        inflater = self._inflater
        if inflater is None:
            bits, _ = self.deflate.receiving(self.is_client)
            inflater = self._inflater = codec.Inflater(bits)
        budget = self.limits.max_message_size - self._msg_size
        data = inflater.decompress(payload, budget) if payload else b""
        if end:
            _, no_takeover = self.deflate.receiving(self.is_client)
            tail = inflater.finish(budget - len(data), no_takeover)
            if tail:
                data += tail
            if no_takeover:  # nothing to remember between messages: free the zlib state
                self._inflater = None
        return data

    def _accept_payload(self, data: bytes, end: bool) -> None:
        """Check a piece of a message's (inflated) payload and buffer or stream it."""
        is_text = self._msg_opcode == OP_TEXT
        if is_text:
            validator = self._utf8
            if validator is None:
                validator = self._utf8 = codec.Utf8Validator()
            # §8.1 fail fast: the byte that breaks UTF-8 fails the connection when it arrives.
            if validator.feed(data) >= 0 or (end and not validator.finish()):
                validator.reset()
                raise InvalidPayload("invalid UTF-8 in a text message (§8.1)")
        first = self._msg_size == 0 and self._msg_buf is None
        self._msg_size += len(data)
        if self.limits.stream_messages:
            if data or end:
                self._msg_buf = b""  # marks "first piece delivered"
                self._on_fragment(data, is_text, first, end)
        elif self._msg_buf is None:
            self._msg_buf = bytearray(data)
        else:
            self._msg_buf += data

    def _end_message(self) -> None:
        opcode, buf = self._msg_opcode, self._msg_buf
        self._msg_opcode = 0
        self._msg_buf = None
        self._msg_size = 0
        self._msg_frames = 0
        self._msg_compressed = False
        if not self.limits.stream_messages:
            # Text is decoded straight from the buffer; binary must become immutable bytes.
            if opcode == OP_TEXT:  # checked piece by piece as it arrived (fail fast)
                self._on_text(buf.decode(), buf)
            else:
                self._on_message(bytes(buf), False)

    def _control_frame(self, opcode: int, rsv: int, payload: bytes) -> None:
        if rsv:
            # RFC 7692 §6.1: permessage-deflate never sets RSV1 on control frames.
            raise ProtocolViolation("RSV1 on a control frame (RFC 7692 §6.1)")
        if opcode == OP_PING:
            if self.state is OPEN:
                self._answer_ping(payload)
            self._on_ping(payload)
        elif opcode == OP_PONG:
            self._on_pong(payload)  # §5.5.3: an unsolicited Pong needs no answer
        else:
            self._receive_close(payload)

    def _receive_close(self, payload: bytes) -> None:
        code, reason = parse_close_payload(payload)  # 1002 / 1007 on a bad payload
        self.close_received = (code, reason)
        if self.state is OPEN:
            # §5.5.1: answer with a Close frame, echoing the status code.
            echo = b"" if code == 1005 else build_close_payload(code)
            self._send_frame(OP_CLOSE, echo)
            self.close_sent = (code, "")
        self._transition("close received")
        self._on_close(code, reason)
        self._on_closed()

    def receive_eof(self) -> None:
        """The peer closed its side of the TCP connection.

        Without a completed closing handshake this is an abnormal closure:
        :attr:`close_code` becomes 1006 (§7.1.5), a code never sent.
        """
        if self.state is CLOSED:
            return
        self._transition("eof")
        self._on_closed()

    # ---- sending -----------------------------------------------------------------

    def send(self, data: Union[str, bytes, bytearray, memoryview], *,
             text: Optional[bool] = None, compress: Optional[bool] = None) -> None:
        """Send one message: ``str`` as text, bytes-like as binary.

        ``text=True`` sends bytes as a text message without re-validating them
        (they must be UTF-8: an echo of a received text message is).
        ``compress=False`` skips compression for this message (already
        compressed data); ``True`` compresses even below the threshold.
        """
        if self.state is not OPEN:
            raise InvalidState(self.state, "send a message")
        if isinstance(data, str):
            payload, opcode = data.encode(), OP_TEXT
        else:
            payload, opcode = data, (OP_TEXT if text else OP_BINARY)
        self._write(self.encode(payload, opcode, compress))

    def encode(self, payload, opcode: int = OP_BINARY, compress: Optional[bool] = None) -> bytes:
        """The wire bytes of one message for this connection (compressed if agreed)."""
        rsv = 0
        agreement = self.deflate
        if agreement is not None and compress is not False and (
                compress or len(payload) >= agreement.threshold):
            payload = self.compress(payload)
            rsv = RSV1
        if self.is_client:
            return codec.client_frame(opcode, payload, rsv=rsv)
        return codec.server_frame(opcode, payload, rsv=rsv)

    def compress(self, payload) -> bytes:
        """``payload`` deflated for this connection's sending direction (RFC 7692 §7.2.1):
        with the process-wide compressor when the agreement has no context takeover."""
        bits, no_takeover = self.deflate.sending(self.is_client)
        agreement = self.deflate
        if no_takeover:
            deflater = shared_deflater(bits, agreement.mem_level, agreement.level)
        else:
            deflater = self._deflater
            if deflater is None:
                deflater = self._deflater = codec.Deflater(bits, agreement.mem_level,
                                                           agreement.level)
        return deflater.compress(payload, no_takeover)

    def ping(self, data: bytes = b"") -> None:
        """Send a Ping (§5.5.2); its payload is at most 125 bytes."""
        self._check_allowed("send a ping")
        self._send_frame(OP_PING, data)

    def pong(self, data: bytes = b"") -> None:
        """Send an unsolicited Pong (§5.5.3), e.g. as a unidirectional heartbeat."""
        self._check_allowed("send a pong")
        self._send_frame(OP_PONG, data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (§7.1.2); a no-op once closing or closed."""
        if self.state is CONNECTING:
            raise InvalidState(self.state, "close (reject the handshake instead)")
        if self.state is not OPEN:
            return
        self._send_frame(OP_CLOSE, build_close_payload(code, reason))
        self.close_sent = (code, reason)
        self._transition("close sent")

    def fail(self, error: RemoteProtocolError, *, send_close: bool = True) -> None:
        """_Fail the WebSocket Connection_ (§7.1.7): send a Close with the error's code.

        ``send_close=False``: the I/O layer will drop TCP without one (it cannot
        follow a half-written frame); :attr:`close_code` still says why.
        """
        if self.state is CLOSED:
            return
        if self.state is OPEN and send_close:
            reason = error.reason.encode()[:123].decode("utf-8", "ignore")
            self._send_frame(OP_CLOSE, build_close_payload(error.close_code, reason))
            self.close_sent = (error.close_code, reason)
        self.failure = error
        self._transition("failed")
        self._release()
        self._on_closed()

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        if len(payload) > 125:
            raise LocalProtocolError("control frame payload over 125 bytes (§5.5)")
        if self.is_client:
            self._write(codec.client_frame(opcode, payload))
        else:
            self._write(codec.server_frame(opcode, payload))

    def _release(self) -> None:
        """Drop buffers and zlib state: the connection will carry no more messages."""
        self._msg_buf = None
        self._inflater = None
        self._deflater = None
        self._utf8 = None

    # ---- outcome -----------------------------------------------------------------

    @property
    def close_code(self) -> Optional[int]:
        """How the connection ended, once CLOSED (None before).

        The peer's close code after a closing handshake (1005 if it sent
        none), the code we failed it with after a protocol error, else 1006.
        """
        if self.state is not CLOSED:
            return None
        if self.failure is not None:
            return self.failure.close_code
        if self.close_received is not None:
            return self.close_received[0]
        return ABNORMAL_CLOSURE

    @property
    def close_reason(self) -> str:
        if self.failure is not None:
            return self.failure.reason
        if self.close_received is not None:
            return self.close_received[1]
        return ""

    @property
    def close_tcp(self) -> bool:
        """Should the I/O layer close the TCP connection now (after writing)?

        A server closes first once the WebSocket is CLOSED (§7.1.1). A client
        waits for the server to do it after a clean closing handshake (the
        I/O layer applies a timeout), but closes at once after a failure.
        """
        if self.state is not CLOSED:
            return False
        return not self.is_client or self.failure is not None or self.close_received is None
