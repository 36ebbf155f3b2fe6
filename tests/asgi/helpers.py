"""uvicorn in the test's own event loop, and a transport to drive a protocol by hand."""
from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn

WS = "wsframe.asgi:WebSocketProtocol"


@contextlib.asynccontextmanager
async def running_uvicorn(app, *, http: str = "h11", **settings):
    """uvicorn serving ``app`` with wsframe's WebSocket protocol on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, ws=WS, http=http, lifespan="off", log_level="warning",
                            **settings)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield server, sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


class FakeTransport:
    """Records what the protocol writes; reading and closing are flags."""

    def __init__(self) -> None:
        self.buffer = b""
        self.writes = 0
        self.closed = False
        self.reading_paused = False

    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.buffer += data
        self.writes += 1

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False


def make_protocol(app, **settings):
    """A WebSocketProtocol as uvicorn builds it, on a FakeTransport."""
    from uvicorn.server import ServerState

    from wsframe.asgi import WebSocketProtocol

    config = uvicorn.Config(app, ws=WS, lifespan="off", **settings)
    config.load()
    state = ServerState()
    protocol = WebSocketProtocol(config=config, server_state=state, app_state={})
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport, state
