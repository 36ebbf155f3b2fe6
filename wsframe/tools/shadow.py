"""One sender's frames as its receiver's own :class:`~wsframe.sansio.protocol.Protocol` judges them.

``wsframe explain`` and ``--trace`` must say what an endpoint would do with
the bytes they show. Rather than re-checking the rules themselves, they feed
every sender's bytes to a :class:`ShadowReceiver`: a sans-IO ``Protocol`` in
the receiving role (a server for what a client sends, so frames must be
masked; a client for what a server sends, §5.1), with the negotiated
permessage-deflate agreement when the sender compresses (RFC 7692). Its
verdict is the protocol's :attr:`~wsframe.sansio.protocol.Protocol.failure`
(a :class:`~wsframe.errors.RemoteProtocolError` with ``reason`` and
``close_code``); what it delivers (validated, inflated message pieces) comes
out through ``on_piece`` as it arrives.

A real receiver stops at the first violation (§7.1.7) or after a Close
(§5.5.1). A teaching tool should go on, so :meth:`ShadowReceiver.frame_boundary`
replaces a stopped shadow with a fresh one before the next frame. The fresh
one knows nothing of what came before except, when the caller says a
fragmented message is still in progress, that much: it is told so with an
empty, unfinished binary frame (§5.4), so the message's continuations are
judged as continuations, but their content (UTF-8, §8.1) is no longer
checked, and a fresh deflate window (RFC 7692 §7.2.3) means a later message
that refers back into the old one is reported as invalid compressed data.

The limits match what explain promises: no local frame-size or fragment
limit (those are a server's choice, not the RFC's), and a compressed sender's
messages inflate to at most :data:`INFLATE_LIMIT` bytes, which is the only way
a shadow fails with :class:`~wsframe.errors.MessageTooBig` (1009).
"""
from __future__ import annotations

from typing import Callable, Optional

from wsframe.codec.frames import OP_BINARY, build_frame
from wsframe.codec.permessage_deflate import Agreement
from wsframe.errors import RemoteProtocolError
from wsframe.sansio.protocol import CLOSED, Limits, Protocol

__all__ = ["INFLATE_LIMIT", "ShadowReceiver", "shadow_limits"]

INFLATE_LIMIT = 64 << 20  # a message inflating past this is reported, not inflated further
_UNLIMITED = (1 << 63) - 1  # the largest frame length §5.2 allows; fits the compiled parser

#: ``on_piece(data, last)``: a validated (inflated) piece of a message; ``last`` ends it.
PieceHook = Callable[[bytes, bool], None]


def shadow_limits(inflating: bool) -> Limits:
    """Explain's limits: none of a server's own, but inflation capped at INFLATE_LIMIT."""
    # Streamed pieces: nothing is buffered, so an uncompressed message needs no cap.
    return Limits(max_message_size=INFLATE_LIMIT if inflating else _UNLIMITED,
                  max_frame_size=_UNLIMITED, max_fragments=_UNLIMITED, stream_messages=True)


def receiving_agreement(sender: str, window_bits: int, no_context_takeover: bool) -> Agreement:
    """An :class:`Agreement` under which ``sender``'s messages inflate with these parameters."""
    client = sender == "client"
    # Only the receiving side matters (the shadow never compresses): RFC 7692 §7.1.
    return Agreement(
        client_max_window_bits=window_bits if client else 15,
        client_no_context_takeover=no_context_takeover if client else False,
        server_max_window_bits=15 if client else window_bits,
        server_no_context_takeover=False if client else no_context_takeover,
        level=6, mem_level=8, threshold=0)


class _Receiver(Protocol):
    """A Protocol whose answers go nowhere and whose message pieces go to ``on_piece``."""

    __slots__ = ("_on_piece",)

    def __init__(self, is_client: bool, limits: Limits, deflate: Optional[Agreement],
                 on_piece: PieceHook) -> None:
        self._on_piece = on_piece
        super().__init__(is_client, limits=limits, deflate=deflate)

    def _write(self, data: bytes) -> None:
        pass  # its Pongs and Close frames are not part of what is explained

    def _on_fragment(self, data: bytes, is_text: bool, first: bool, last: bool) -> None:
        self._on_piece(data, last)  # bytes or a bytearray; not copied (only a prefix is kept)


class ShadowReceiver:
    """The receiving endpoint of one sender's frames: feed it their bytes as they arrive.

    ``sender`` is ``"client"`` or ``"server"``; ``inflate`` the sender's
    (window bits, no context takeover), or ``None`` when permessage-deflate
    was not negotiated (RSV1 is then a violation, §5.2).
    """

    __slots__ = ("sender", "inflate", "_on_piece", "_limits", "_agreement", "_proto")

    def __init__(self, sender: str, inflate: Optional[tuple[int, bool]],
                 on_piece: PieceHook) -> None:
        if sender not in ("client", "server"):
            raise ValueError("sender must be 'client' or 'server'")
        self.sender = sender
        self.inflate = inflate
        self._on_piece = on_piece
        self._limits = shadow_limits(inflate is not None)
        self._agreement = None if inflate is None else receiving_agreement(sender, *inflate)
        self._proto = self._new()

    def _new(self) -> _Receiver:
        # A client's frames are received by a server, and the other way round.
        return _Receiver(self.sender == "server", self._limits, self._agreement, self._on_piece)

    @property
    def stopped(self) -> bool:
        """The receiver reads no more: it failed the connection, or got a Close."""
        return self._proto.state is CLOSED

    def feed(self, data) -> Optional[RemoteProtocolError]:
        """Receive ``data``; the violation it revealed, if any (only once per shadow)."""
        proto = self._proto
        if proto.state is CLOSED:
            return None  # like a real receiver: nothing after the end counts (§5.5.1, §7.1.7)
        proto.receive_data(data)
        return proto.failure

    def frame_boundary(self, message_in_progress: bool) -> None:
        """Before a new frame: replace a stopped receiver (see the module docstring)."""
        if self._proto.state is not CLOSED:
            return
        self._proto = self._new()
        if message_in_progress:
            # An empty first fragment (§5.4), masked when a client sends it (§5.1).
            mask = b"\0\0\0\0" if self.sender == "client" else None
            self._proto.receive_data(build_frame(OP_BINARY, b"", fin=False, mask=mask))
