"""The classic sans-IO API: bytes in, events out; calls in, bytes out.

:class:`EventProtocol` is a :class:`~wsframe.sansio.protocol.Protocol` that collects
what happens as event values (:mod:`wsframe.sansio.events`) and outgoing bytes in
lists. :class:`ServerProtocol` and :class:`ClientProtocol` add the
opening handshake (RFC 6455 §4) with permessage-deflate negotiation, so an
embedding server or client needs nothing else::

    conn = ServerProtocol()
    conn.receive_data(sock.recv(65536))
    for event in conn.events():
        if isinstance(event, RequestReceived):
            conn.accept()                    # or conn.reject(403, "go away")
        elif isinstance(event, TextMessage):
            conn.send(event.data)
    sock.sendall(conn.data_to_send())
    if conn.close_tcp:
        sock.close()

``events()`` and ``data_to_send()`` hand over (and forget) what has
accumulated since their last call.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence, Union

from wsframe import codec

from wsframe.codec.http import DEFAULT_MAX_HEAD_SIZE, Headers, Request
from wsframe.codec.handshake import check_upgrade_request, reject_response
from wsframe.codec.permessage_deflate import DeflateSettings
from wsframe.errors import InvalidHandshake, InvalidRequest, InvalidState
from wsframe.codec.frames import OP_BINARY, OP_CONT, OP_TEXT
from wsframe.sansio import events as ev
from wsframe.sansio.handshake import ClientHandshake, ServerHandshake, accept_upgrade
from wsframe.sansio.protocol import CLOSED, CONNECTING, DEFAULT_LIMITS, OPEN, Limits, Protocol

__all__ = ["EventProtocol", "ServerProtocol", "ClientProtocol"]


class EventProtocol(Protocol):
    """A protocol whose hooks collect events and bytes (starts OPEN)."""

    __slots__ = ("_events", "_out", "_failing", "_closed_reported", "_streaming")

    def __init__(self, is_client: bool, **kwargs) -> None:
        self._events: list = []
        self._out: list[bytes] = []
        self._failing = None
        self._closed_reported = False  # a pending failure's Closed was handed out by events()
        self._streaming = 0            # opcode of a fragmented message being sent, 0 if none
        super().__init__(is_client, **kwargs)

    def receive_data(self, data) -> None:
        if self._failing is None:
            super().receive_data(data)

    def events(self) -> list:
        """The events since the last call, in wire order.

        When the peer broke the protocol, the list ends with the
        :class:`~wsframe.sansio.events.Closed` event of the failure at once;
        its Close frame comes with the next ``data_to_send()``, after any
        answers to the events before it.
        """
        events, self._events = self._events, []
        failing = self._failing
        if failing is not None and not self._closed_reported and self.state is not CLOSED:
            self._closed_reported = True
            events.append(ev.Closed(failing.close_code, failing.reason))
        return events

    def data_to_send(self) -> bytes:
        """The bytes to write to the peer since the last call.

        When the peer broke the protocol, the events before the bad frame were
        handed out first, and the application may have answered them (an echo,
        say); the connection fails here, after those answers, so the Close
        frame follows them on the wire.
        """
        if self._failing is not None and self.state is not CLOSED:
            self.fail(self._failing)
        out = b"".join(self._out)
        self._out.clear()
        return out

    def _write(self, data: bytes) -> None:
        self._out.append(data)

    def _protocol_error(self, error) -> None:
        self._failing = error  # applied by data_to_send(), after earlier events are handled

    def _on_message(self, data: bytes, is_text: bool) -> None:
        self._events.append(ev.TextMessage(data.decode()) if is_text else ev.BinaryMessage(data))

    def _on_text(self, text: str, raw) -> None:
        self._events.append(ev.TextMessage(text))

    def _on_fragment(self, data: bytes, is_text: bool, first: bool, last: bool) -> None:
        self._events.append(ev.Fragment(data, is_text, first, last))

    def _on_ping(self, data: bytes) -> None:
        self._events.append(ev.Ping(data))

    def _on_pong(self, data: bytes) -> None:
        self._events.append(ev.Pong(data))

    def _on_close(self, code: int, reason: str) -> None:
        self._events.append(ev.CloseReceived(code, reason))

    def _on_closed(self) -> None:
        if not self._closed_reported:
            self._events.append(ev.Closed(self.close_code, self.close_reason))

    def send(self, data: Union[str, bytes, bytearray, memoryview], *,
             text: Optional[bool] = None, compress: Optional[bool] = None) -> None:
        if self._streaming:
            # §5.4: the fragments of one message are not interleaved with another message.
            raise InvalidState(self.state, "send a message inside a fragmented one")
        super().send(data, text=text, compress=compress)

    def send_encoded(self, frame: bytes) -> None:
        """Queue a whole message already encoded for this connection.

        ``frame`` comes from :meth:`encode`, or is one unmasked server frame
        shared by many connections without compression (§5.1): a broadcast
        builds it once.
        """
        if self.state is not OPEN or self._streaming:
            raise InvalidState(self.state, "send a message")
        self._write(frame)

    def send_fragment(self, data: Union[str, bytes, bytearray, memoryview], *,
                      text: Optional[bool] = None, fin: bool = False) -> None:
        """Send a message piece by piece, one frame per call (§5.4).

        The first call fixes the type (``str`` or ``text=True`` for text); the
        call with ``fin=True`` ends the message. Fragments are sent
        uncompressed (RFC 7692 §6: RSV1 is clear, which any peer accepts);
        control frames and :meth:`close` may come between them.
        """
        if self.state is not OPEN:
            raise InvalidState(self.state, "send a message")
        payload = data.encode() if isinstance(data, str) else data
        if self._streaming:
            opcode = OP_CONT
        else:
            opcode = OP_TEXT if isinstance(data, str) or text else OP_BINARY
        frame = codec.client_frame if self.is_client else codec.server_frame
        self._write(frame(opcode, payload, fin=fin))
        self._streaming = 0 if fin else (self._streaming or opcode)


class ServerProtocol(EventProtocol):
    """The server side, from the first byte of the request.

    ``receive_data`` reads the request head; a valid upgrade request gives a
    :class:`~wsframe.sansio.events.RequestReceived` event, after which the caller
    answers with :meth:`accept` or :meth:`reject`. A malformed request is
    answered with the right HTTP error by the connection itself (400, 426,
    431) and closes it. ``deflate=None`` turns compression off.
    """

    __slots__ = ("_reader", "_offer", "_settings", "_pending", "request", "subprotocol")

    def __init__(self, *, limits: Limits = DEFAULT_LIMITS,
                 deflate: Optional[DeflateSettings] = DeflateSettings(),
                 max_head_size: int = DEFAULT_MAX_HEAD_SIZE) -> None:
        super().__init__(False, limits=limits, state=CONNECTING)
        self._reader: Optional[ServerHandshake] = ServerHandshake(max_head_size)
        self._offer = None
        self._pending = b""
        self._settings = deflate
        self.request: Optional[Request] = None
        self.subprotocol: Optional[str] = None

    def receive_data(self, data) -> None:
        if self.state is not CONNECTING:
            return super().receive_data(data)
        if self._reader is None:
            if self._offer is not None:  # waiting for an asynchronous accept() / reject()
                self._buffer_early(data)
            return
        try:
            request = self._reader.read(data)
            if request is None:
                return
        except InvalidRequest as exc:
            return self.reject(exc.status, exc.reason, exc.headers)
        rest = self._reader.rest  # a client may send frames right after its head
        self._reader = None
        self._check_request(request)
        if rest and self._offer is not None:
            self._buffer_early(rest)

    def receive_request(self, method: str, target: str,
                        headers: Iterable[tuple[Union[str, bytes], Union[str, bytes]]],
                        version: tuple[int, int] = (1, 1)) -> None:
        """Start from a request head another parser (h11, httptools) already read.

        Use instead of feeding the head to :meth:`receive_data`; bytes that
        followed the head go to :meth:`receive_data` afterwards. Header names
        and values may be ``bytes`` (decoded as ISO-8859-1, RFC 7230 §3.2.4).
        An invalid upgrade is answered with its HTTP error, as for bytes.
        """
        if self._reader is None or self.state is not CONNECTING:
            raise InvalidState(self.state, "receive a second request")
        fields = [(n.decode("latin-1") if isinstance(n, bytes) else n,
                   v.decode("latin-1") if isinstance(v, bytes) else v) for n, v in headers]
        self._reader = None
        self._check_request(Request(method, target, version, Headers(fields)))

    def _check_request(self, request: Request) -> None:
        try:
            self._offer = check_upgrade_request(request)
        except InvalidRequest as exc:
            return self.reject(exc.status, exc.reason, exc.headers)
        self.request = request
        self._events.append(ev.RequestReceived(request, tuple(self._offer.subprotocols)))

    def _buffer_early(self, data) -> None:
        # §4.1: a client waits for the response before sending frames; a lenient
        # server keeps what came early for accept(), within one frame's worth.
        if len(self._pending) + len(data) > self.limits.max_frame_size + 14:
            return self.reject(400, "data sent before the handshake response (§4.1)")
        self._pending += bytes(data)

    def accept(self, subprotocol: Optional[str] = None,
               headers: Iterable[tuple[str, str]] = (), *,
               deflate: Union[Optional[DeflateSettings], str] = "default") -> None:
        """Complete the handshake (101); negotiates permessage-deflate.

        ``deflate`` overrides the settings given to the constructor for this
        connection (``None``: no compression).
        """
        if self.state is not CONNECTING or self._offer is None:
            raise InvalidState(self.state, "accept")
        if subprotocol is not None and subprotocol not in self._offer.subprotocols:
            raise InvalidHandshake(f"subprotocol {subprotocol!r} was not offered")
        settings = self._settings if deflate == "default" else deflate
        response, self.deflate = accept_upgrade(self._offer, subprotocol=subprotocol,
                                                compression=settings, headers=headers)
        self._write(response)
        self.subprotocol = subprotocol
        self._offer = None
        self.request = None  # handed out in RequestReceived; not kept (memory per connection)
        self._transition("handshake accepted")
        self._start_parser()
        pending, self._pending = self._pending, b""
        if pending:
            self.receive_data(pending)

    def reject(self, status: int, reason: str = "", headers: Iterable[tuple[str, str]] = (),
               body: Optional[bytes] = None) -> None:
        """Refuse the upgrade with an HTTP response (status, headers, body), then close.

        Without ``body`` the body is the reason as plain text.
        """
        if self.state is not CONNECTING:
            raise InvalidState(self.state, "reject")
        if not 100 <= status < 600 or status == 101:
            raise ValueError(f"cannot refuse an upgrade with status {status}")
        self._write(reject_response(status, reason, headers, body))
        self._reader = None
        self._offer = None
        self._pending = b""
        self.failure = None
        self._transition("handshake refused")
        self._events.append(ev.Closed(1006, f"handshake refused: {status} {reason}"))


class ClientProtocol(EventProtocol):
    """The client side, from the first byte of the request.

    The request is ready in ``data_to_send()`` at once. The response gives an
    :class:`~wsframe.sansio.events.Accepted` event; a refused or invalid response
    raises :class:`~wsframe.errors.InvalidResponse` from ``receive_data``, and
    an oversized head or an EOF before the response raises its base class,
    :class:`~wsframe.errors.InvalidHandshake`.
    """

    __slots__ = ("_handshake", "subprotocol", "response")

    def __init__(self, host: str, target: str = "/", *, subprotocols: Sequence[str] = (),
                 origin: Optional[str] = None, headers: Iterable[tuple[str, str]] = (),
                 limits: Limits = DEFAULT_LIMITS,
                 deflate: Optional[DeflateSettings] = DeflateSettings(),
                 max_head_size: int = DEFAULT_MAX_HEAD_SIZE) -> None:
        super().__init__(True, limits=limits, state=CONNECTING)
        self._handshake: Optional[ClientHandshake] = ClientHandshake(
            host, target, subprotocols=subprotocols, origin=origin, headers=headers,
            compression=deflate, max_head_size=max_head_size)
        self.subprotocol: Optional[str] = None
        self.response = None
        self._write(self._handshake.request)

    def receive_data(self, data) -> None:
        if self.state is not CONNECTING:
            return super().receive_data(data)
        try:
            accepted = self._handshake.read(data)
        except InvalidHandshake:
            self._refused()
            raise
        if accepted is None:
            return
        self._handshake = None
        self.response = accepted.response
        self.subprotocol = accepted.subprotocol
        self.deflate = accepted.agreement
        self._transition("handshake accepted")
        self._start_parser()
        self._events.append(ev.Accepted(accepted.subprotocol, accepted.extensions,
                                        accepted.response.headers))
        if accepted.rest:
            super().receive_data(accepted.rest)

    def _refused(self) -> None:
        self._handshake = None
        self._transition("handshake refused")

    def receive_eof(self) -> None:
        if self.state is CONNECTING:
            self._refused()
            raise InvalidHandshake("connection closed during the opening handshake")
        super().receive_eof()
