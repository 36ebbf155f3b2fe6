"""uvicorn's WebSocket protocol, on wsframe: ``uvicorn app:app --ws wsframe.asgi:WebSocketProtocol``.

uvicorn's HTTP protocol hands an upgrade request over by constructing this
class with ``config``, ``server_state`` and ``app_state``, calling
``connection_made`` with the transport and replaying the request head into
``data_received``; from then on the transport talks to this object. Bytes
that arrive after the head (even in the same read) wait in the sans-IO core
until the application accepts.

The ASGI WebSocket spec (2.4) is served whole: ``websocket.connect`` ->
``websocket.accept`` (subprotocol, headers) / ``websocket.close`` before
accepting (403) / the ``websocket.http.response`` denial extension (any
status, headers and body, in several pieces); messages both ways with
backpressure; ``websocket.close`` with code and reason; ``websocket.disconnect``
with the close code. uvicorn's ``ws_max_size``, ``ws_max_queue``,
``ws_ping_interval``, ``ws_ping_timeout`` and ``ws_per_message_deflate`` apply.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from wsframe.asgi.scope import (
    Disconnected, build_scope, chunk, decode_headers, response_head, server_error,
)
from wsframe.asyncio.adapter import Adapter
from wsframe.codec.permessage_deflate import DeflateSettings
from wsframe.sansio import events as ev
from wsframe.sansio.protocol import CLOSED, CONNECTING, OPEN, Limits
from wsframe.sansio.roles import ServerProtocol

__all__ = ["WebSocketProtocol"]

logger = logging.getLogger("uvicorn.error")

_limits_cache: dict[int, Limits] = {}


def _limits(max_size: int) -> Limits:
    """One shared Limits object per size (memory per connection)."""
    limits = _limits_cache.get(max_size)
    if limits is None:
        limits = _limits_cache[max_size] = Limits(max_message_size=max_size,
                                                  max_frame_size=max_size)
    return limits


_DEFLATE = DeflateSettings()


class WebSocketProtocol(Adapter):
    """An ASGI WebSocket connection for uvicorn, on the wsframe engine."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: Any = None) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers = server_state.default_headers
        proto = ServerProtocol(limits=_limits(config.ws_max_size),
                               deflate=_DEFLATE if config.ws_per_message_deflate else None)
        super().__init__(proto, max_queue=config.ws_max_queue,
                         ping_interval=config.ws_ping_interval,
                         ping_timeout=config.ws_ping_timeout, loop=_loop)
        self.scope: Optional[dict[str, Any]] = None
        self.server: Optional[tuple] = None
        self.client: Optional[tuple] = None
        self.scheme = "ws"
        self.handshake_complete = False   # accepted or refused
        self.close_sent = False           # the app sent websocket.close or a denial response
        self._response: Optional[int] = None   # status of a denial response in progress
        self._response_chunked = False
        self._response_headers: list[tuple[str, str]] = []
        self._response_head_sent = False
        self._disconnect: Optional[dict[str, Any]] = None

    # ---- transport ---------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.connections.add(self)
        self.server = _address(transport.get_extra_info("sockname"))
        self.client = _address(transport.get_extra_info("peername"))
        self.scheme = "wss" if transport.get_extra_info("sslcontext") else "ws"

    def on_lost(self, exc: Optional[Exception]) -> None:
        self.connections.discard(self)

    def shutdown(self) -> None:
        """uvicorn is stopping: close with 1012 (Service Restart), or 500 before the handshake."""
        self.stop_keepalive()
        if self.close_sent or self.closing:
            self.close_transport()
            return
        if self.handshake_complete and self.proto.state is OPEN:
            self.closing = True
            self.proto.close(1012)
            self.flush()
            self._closed_by_server(1012)
        elif not self.handshake_complete:
            self._send_500()
        self.close_transport()

    # ---- events from the core -----------------------------------------------------

    def on_event(self, event: Any) -> None:
        if type(event) is ev.RequestReceived:
            self.scope = build_scope(
                event.request, event.subprotocols, scheme=self.scheme, server=self.server,
                client=self.client, root_path=self.config.root_path,
                asgi_version=self.config.asgi_version, state=self.app_state)
            self.put({"type": "websocket.connect"})
            task = self.loop.create_task(self.run_asgi())
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)

    def on_message(self, data: Any, is_text: bool) -> None:
        if is_text:
            self.put({"type": "websocket.receive", "text": data}, message=True)
        else:
            self.put({"type": "websocket.receive", "bytes": data}, message=True)

    def on_closed(self, event: ev.Closed) -> None:
        if self._disconnect is not None:
            return
        message: dict[str, Any] = {"type": "websocket.disconnect", "code": event.code}
        if self.proto.close_received is not None or self.proto.failure is not None:
            message["reason"] = event.reason
        self._disconnect = message
        self.put(message)

    def _closed_by_server(self, code: int) -> None:
        """The server ended it (shutdown, refusal): disconnect with ``code``, once."""
        self.closed_event = self.closed_event or ev.Closed(code)
        if self._disconnect is None:
            self._disconnect = {"type": "websocket.disconnect", "code": code}
            self.put(self._disconnect)

    # ---- the application ----------------------------------------------------------

    async def run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except Disconnected:
            pass
        except BaseException:
            logger.exception("Exception in ASGI application\n")
            self._send_500()
        else:
            if not self.handshake_complete and self._response is None:
                logger.error("ASGI callable returned without completing handshake.")
                self._send_500()
            elif result is not None:
                logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None:
            self.close_transport()

    async def receive(self) -> dict[str, Any]:
        """The ASGI ``receive`` callable."""
        if not self._queue and self._disconnect is not None:
            return self._disconnect  # asked again after the disconnect: the same answer
        return await self.get()

    async def send(self, message: dict[str, Any]) -> None:
        """The ASGI ``send`` callable."""
        if self._write_paused:
            await self.drain()
        kind = message["type"]
        if self.lost:
            raise Disconnected("the client is gone")
        if not self.handshake_complete and self._response is None:
            self._before_handshake(kind, message)
        elif self._response is not None:
            self._response_message(kind, message)
        elif self.close_sent:
            raise RuntimeError(f"Unexpected ASGI message '{kind}', after sending 'websocket.close'.")
        elif self.proto.state is not OPEN:
            raise Disconnected("the WebSocket connection is closed")
        elif kind == "websocket.send":
            data = message.get("bytes")
            if data is None:
                data = message.get("text")
                if data is None:
                    raise RuntimeError("websocket.send needs 'bytes' or 'text'")
            self.proto.send(data)
            self.sent(len(data))
        elif kind == "websocket.close":
            self.close_sent = True
            self.start_close(message.get("code") or 1000, message.get("reason") or "")
        else:
            raise RuntimeError(
                f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'.")

    def _before_handshake(self, kind: str, message: dict[str, Any]) -> None:
        if kind == "websocket.accept":
            headers = decode_headers(list(self.default_headers) + list(message.get("headers", ())))
            if self.proto.state is not CONNECTING or self.transport.is_closing():
                raise Disconnected("the client is gone")
            self.proto.accept(message.get("subprotocol"), headers)
            self.handshake_complete = True
            logger.info('%s - "WebSocket %s" [accepted]', _client(self.scope), _target(self.scope))
            self.flush()
            events = self.proto.events()  # frames that came early, now parsed
            if events:
                self._dispatch(events)
                self.flush()
            self.start_keepalive()
        elif kind == "websocket.close":
            logger.info('%s - "WebSocket %s" 403', _client(self.scope), _target(self.scope))
            self.handshake_complete = self.close_sent = True
            if self.proto.state is CONNECTING:
                self.proto.reject(403, "Forbidden")
            self.proto.events()
            self.flush()
            self._closed_by_server(1006)
            self.close_transport()
        elif kind == "websocket.http.response.start":
            status = message["status"]
            if not 100 <= status < 600:
                raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
            logger.info('%s - "WebSocket %s" %d', _client(self.scope), _target(self.scope), status)
            self._response = status
            self._response_headers = decode_headers(message.get("headers", ()))
            if any(name.lower() == "content-length" for name, _ in self._response_headers):
                self._write_head(None)  # the length is known: the head can go at once
        else:
            raise RuntimeError(
                "Expected ASGI message 'websocket.accept', 'websocket.close' "
                f"or 'websocket.http.response.start' but got '{kind}'.")

    def _response_message(self, kind: str, message: dict[str, Any]) -> None:
        if kind != "websocket.http.response.body":
            raise RuntimeError(
                f"Expected ASGI message 'websocket.http.response.body' but got '{kind}'.")
        if self.close_sent:
            raise RuntimeError("the denial response is complete")
        body = bytes(message.get("body", b""))
        more = message.get("more_body", False)
        if not self._response_head_sent:
            if not more:  # all of it at once: a Content-Length response
                self._write_head(len(body))
            else:  # pieces of unknown total length: chunked (RFC 7230 §4.1)
                self._response_chunked = True
                self._write_head(None)
        if self._response_chunked:
            self.transport.write(chunk(body, not more))
        elif body:
            self.transport.write(body)
        if not more:
            self.handshake_complete = self.close_sent = True
            self._closed_by_server(1006)
            self.close_transport()

    def _write_head(self, length: Optional[int]) -> None:
        self._response_head_sent = True
        self.transport.write(response_head(self._response, self._response_headers,
                                           length=length))

    def _send_500(self) -> None:
        if self.handshake_complete or self._response_head_sent or self.lost:
            return
        self.handshake_complete = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(server_error())
        self._closed_by_server(1006)


def _address(value: Any) -> Optional[tuple]:
    if isinstance(value, (list, tuple)) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None


def _client(scope: Optional[dict]) -> str:
    client = scope and scope.get("client")
    return "%s:%d" % client if client else ""


def _target(scope: Optional[dict]) -> str:
    if not scope:
        return ""
    query = scope["query_string"].decode("latin-1")
    return scope["path"] + (f"?{query}" if query else "")
