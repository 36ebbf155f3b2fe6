"""TLS (``wss://``) for loop connections, through :class:`ssl.SSLObject` and memory BIOs.

The loop keeps reading and writing raw fds; TLS sits between those bytes
and the protocol: received ciphertext goes into the incoming BIO and comes
out of ``SSLObject.read`` as plaintext for ``receive_data``; frames written
by the protocol go through ``SSLObject.write`` and leave as ciphertext.
Only connections that use TLS pay for it (a subclass with one more slot).
"""
from __future__ import annotations

import ssl

from wsframe.loop.eventloop import IO_EOF, FdStream

__all__ = ["TlsState", "TlsStream", "tls_class"]


class TlsState:
    """An SSLObject with its two memory BIOs."""

    __slots__ = ("obj", "incoming", "outgoing", "ready")

    def __init__(self, context: ssl.SSLContext, *, server_side: bool,
                 server_hostname: str | None = None) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_side=server_side,
                                    server_hostname=server_hostname)
        self.ready = False

    def handshake(self) -> bool:
        """Advance the TLS handshake; True once it is complete."""
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            return False
        self.ready = True
        return True

    def read_plaintext(self) -> bytes:
        chunks = []
        while True:
            try:
                chunk = self.obj.read(65536)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


class TlsStream:
    """Mixin (before the FdStream class): TLS between the fd and the protocol.

    Needs a ``_tls`` slot holding a :class:`TlsState`; calls ``_tls_ready()``
    (see :class:`~wsframe.loop.eventloop.FdStream`) once the handshake completes.
    """

    __slots__ = ()

    def _on_readable(self) -> None:
        n = self._read()
        if n <= 0:
            return self._eof() if n == 0 else None
        loop = self.loop
        tls = self._tls
        self._seen = loop.tick
        tls.incoming.write(loop.rview[:n])
        try:
            if not tls.ready:
                done = tls.handshake()
                self._send_ciphertext()
                if not done:
                    return
                self._tls_ready()
            plaintext = tls.read_plaintext()
        except ssl.SSLError:
            self._io |= IO_EOF
            self.receive_eof()
            return self._close_fd()
        self._send_ciphertext()
        if plaintext:
            self.receive_data(plaintext)
        if self.close_tcp:
            self._finish()
        elif self._out_size > self._high_water():
            self._pause_reading()

    def _write(self, data: bytes) -> None:
        self._plaintext_sent(data)  # this override hides the ones below it: tell them
        self._tls.obj.write(data)
        self._send_ciphertext()

    def _send_ciphertext(self) -> None:
        pending = self._tls.outgoing.read()
        if pending:
            FdStream._write(self, pending)


_classes: dict[type, type] = {}


def tls_class(base: type) -> type:
    """``base`` (a ServerConnection or ClientConnection class) with TLS between fd and protocol.

    Built once per base class, so a subclass that observes connections (the
    tracer) works over TLS too.
    """
    cls = _classes.get(base)
    if cls is None:
        def _transport_closed(self) -> None:
            self._tls = None
            base._transport_closed(self)
        cls = _classes[base] = type(f"Tls{base.__name__}", (TlsStream, base), {
            "__slots__": ("_tls",), "_transport_closed": _transport_closed,
            "__doc__": f"{base.__name__} over TLS."})
    return cls
