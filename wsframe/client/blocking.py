"""A blocking client for scripts: ``connect(url)``, send, receive, iterate, close.

::

    from wsframe.client.blocking import connect

    with connect("ws://127.0.0.1:8765/room/42") as ws:
        ws.send("hello")
        print(ws.recv(timeout=5))
        for message in ws:          # until the connection closes
            print(message)

``wss://`` URLs use TLS with certificate verification on by default
(:func:`ssl.create_default_context`); pass ``ssl=`` to change that.
Failures raise: :class:`~wsframe.errors.InvalidResponse` when the server
refuses the upgrade, :class:`~wsframe.errors.ConnectionClosed` (with the
close code) when the connection is gone, :class:`TimeoutError` on timeouts.
"""
from __future__ import annotations

import select
import socket
import ssl as ssl_module
import time
from typing import Iterator, Optional, Sequence, Union

from wsframe.sansio import events as ev
from wsframe.sansio.roles import ClientProtocol
from wsframe.codec.url import WebSocketURL, parse_url
from wsframe.errors import ConnectionClosed
from wsframe.codec.permessage_deflate import DeflateSettings
from wsframe.sansio.protocol import CLOSED, CONNECTING, OPEN, Limits

__all__ = ["connect", "WebSocket", "parse_url", "WebSocketURL"]


class WebSocket:
    """A connected client; not thread-safe (one reader/writer at a time).

    There is no background thread: bytes are read inside ``recv()``,
    ``close()``, and also, without blocking, inside ``send()`` and ``ping()``,
    so a script that only sends still answers the server's Pings (§5.5.2).
    Messages read that way wait for ``recv()``; once ``max_queue`` or more
    wait, ``send()`` stops reading (the peer's writes then back up: memory
    stays bounded, and Pings wait too). A script that sleeps without sending
    or receiving answers nothing meanwhile.
    """

    def __init__(self, sock: socket.socket, conn: ClientProtocol, max_queue: int = 16,
                 send_timeout: Optional[float] = 10.0) -> None:
        self.sock = sock
        self.conn = conn
        self.max_queue = max_queue
        self.send_timeout = send_timeout  # a server that stops reading cannot block send() longer
        self._messages: list = []
        self._eof = False
        self._poller: Optional[select.poll] = None

    @property
    def subprotocol(self) -> Optional[str]:
        return self.conn.subprotocol

    @property
    def close_code(self) -> Optional[int]:
        return self.conn.close_code

    @property
    def close_reason(self) -> str:
        return self.conn.close_reason

    def send(self, message: Union[str, bytes], *, compress: Optional[bool] = None) -> None:
        """Send a text (``str``) or binary (bytes-like) message."""
        self._poll()
        self._check_open()
        self.conn.send(message, compress=compress)
        self._flush()

    def ping(self, data: bytes = b"") -> None:
        """Send a Ping (§5.5.2); its Pong is read by a later call."""
        self._poll()
        self._check_open()
        self.conn.ping(data)
        self._flush()

    def recv(self, timeout: Optional[float] = None) -> Union[str, bytes]:
        """The next message; raises ConnectionClosed once the connection has ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._messages:
            if self.conn.state is CLOSED or self._eof:
                raise ConnectionClosed(self.conn.close_code or 1006, self.conn.close_reason)
            self._read(deadline)
        return self._messages.pop(0)

    def __iter__(self) -> Iterator[Union[str, bytes]]:
        while True:
            try:
                yield self.recv()
            except ConnectionClosed:
                return

    def close(self, code: int = 1000, reason: str = "", timeout: float = 5.0) -> None:
        """Run the closing handshake (§7.1.2), then close the socket."""
        deadline = time.monotonic() + timeout
        try:
            if self.conn.state is OPEN:
                self.conn.close(code, reason)
                self._flush()
            # §7.1.1: the server closes TCP first; wait for its FIN (or the timeout).
            while not self._eof and (self.conn.state is not CLOSED or not self.conn.close_tcp):
                self._read(deadline)
        except (OSError, TimeoutError, ConnectionClosed):
            pass
        finally:
            self.sock.close()

    def __enter__(self) -> "WebSocket":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_open(self) -> None:
        if self.conn.state is not OPEN:
            raise ConnectionClosed(self.conn.close_code or 1006, self.conn.close_reason)

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.settimeout(self.send_timeout)
            try:
                self.sock.sendall(data)
            except socket.timeout:
                # Part of a frame may have gone out: nothing valid can follow it. Give up.
                self._eof = True
                self.conn.receive_eof()
                self.sock.close()
                raise TimeoutError(f"the server read nothing for {self.send_timeout:g} s: "
                                   "connection dropped") from None

    def _poll(self) -> None:
        """Process what has already arrived, without blocking (answers Pings)."""
        sock = self.sock
        if self._poller is None:
            self._poller = select.poll()
            self._poller.register(sock, select.POLLIN)
        while (len(self._messages) < self.max_queue and not self._eof
               and self.conn.state is not CLOSED):
            # TLS may hold decrypted bytes the kernel no longer shows as readable.
            buffered = isinstance(sock, ssl_module.SSLSocket) and sock.pending()
            if not buffered and not self._poller.poll(0):
                return
            sock.settimeout(0.0)
            try:
                data = sock.recv(65536)
            except (BlockingIOError, ssl_module.SSLWantReadError, ssl_module.SSLWantWriteError):
                return  # a partial TLS record, say: the rest is read later
            except OSError:
                data = b""
            self._process(data)

    def _read(self, deadline: Optional[float]) -> None:
        """Wait for bytes (until ``deadline``, or for ever) and process them."""
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message before the timeout")
            self.sock.settimeout(left)
        else:
            self.sock.settimeout(None)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no message before the timeout") from None
        except OSError:
            data = b""
        self._process(data)

    def _process(self, data: bytes) -> None:
        if data:
            self.conn.receive_data(data)
        else:
            self._eof = True
            self.conn.receive_eof()
        for event in self.conn.events():
            if isinstance(event, (ev.TextMessage, ev.BinaryMessage)):
                self._messages.append(event.data)
        self._flush()  # pongs, close replies, and the Close after a violation


def connect(url: str, *, subprotocols: Sequence[str] = (), origin: Optional[str] = None,
            headers: Sequence[tuple[str, str]] = (),
            compression: Optional[DeflateSettings] = DeflateSettings(),
            limits: Limits = Limits(), ssl: Optional[ssl_module.SSLContext] = None,
            timeout: float = 10.0, source_address: Optional[tuple[str, int]] = None,
            max_queue: int = 16, send_timeout: Optional[float] = 10.0) -> WebSocket:
    """Open a WebSocket connection (TCP, TLS for ``wss``, then the handshake).

    ``max_queue``: messages that ``send()`` may read ahead for ``recv()``
    (see :class:`WebSocket`). ``send_timeout``: how long a write may wait for a
    server that does not read; past it the connection is dropped and
    ``TimeoutError`` raised (``None``: wait for ever).
    """
    where = parse_url(url)
    sock = socket.create_connection((where.host, where.port), timeout=timeout,
                                    source_address=source_address)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if where.secure:
            context = ssl or ssl_module.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=where.host)
        conn = ClientProtocol(where.host_header, where.target, subprotocols=subprotocols,
                                origin=origin, headers=headers, limits=limits,
                                deflate=compression)
        sock.sendall(conn.data_to_send())
        deadline = time.monotonic() + timeout
        websocket = WebSocket(sock, conn, max_queue, send_timeout)
        while conn.state is CONNECTING:  # a refusal raises from _read
            try:
                websocket._read(deadline)
            except TimeoutError:
                raise TimeoutError(f"no handshake response from {url} in {timeout} s") from None
        sock.settimeout(None)
        return websocket
    except BaseException:
        sock.close()
        raise
