"""The built-in app of ``wsframe serve`` on picows (``ws_create_server`` + ``WSListener``).

Idiomatic use: a listener object per connection whose ``on_ws_frame`` gets
each frame as a view into picows' read buffer; ``transport.send`` copies it
out. picows works in frames, so fragmented messages are joined here before
they are echoed or broadcast. picows answers Pings itself
(``enable_auto_pong``); the Close handshake is the listener's job. Auto-ping
is off; frames up to 16 MiB. picows does not validate UTF-8 and neither
does this peer (the picows way: the payload is handed through as bytes).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

if __package__ in (None, ""):   # run as a script: make ``benchmarks.peers`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from picows import (
    WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server,
)

from benchmarks.peers import BACKLOG, MAX_MESSAGE, ready, room_name, run_asyncio

ROOMS: dict[str, set[WSTransport]] = {}
DATA = (WSMsgType.TEXT, WSMsgType.BINARY)


class Echo(WSListener):
    """Echo every message; joins fragments first."""

    def __init__(self) -> None:
        self.parts: Optional[bytearray] = None   # a fragmented message in progress
        self.msg_type = WSMsgType.TEXT

    def deliver(self, transport: WSTransport, msg_type: WSMsgType, payload) -> None:
        transport.send(msg_type, payload)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type in DATA:
            if frame.fin:
                self.deliver(transport, msg_type, frame.get_payload_as_memoryview())
            else:
                self.msg_type = msg_type
                self.parts = bytearray(frame.get_payload_as_memoryview())
        elif msg_type == WSMsgType.CONTINUATION and self.parts is not None:
            self.parts += frame.get_payload_as_memoryview()
            if len(self.parts) > MAX_MESSAGE:
                transport.send_close(WSCloseCode.MESSAGE_TOO_BIG)
                transport.disconnect()
            elif frame.fin:
                parts, self.parts = self.parts, None
                self.deliver(transport, self.msg_type, parts)
        elif msg_type == WSMsgType.CLOSE:
            code = frame.get_close_code()
            transport.send_close(WSCloseCode.OK if code == WSCloseCode.NO_INFO else code)
            transport.disconnect()


class Room(Echo):
    """Broadcast every message to the room, sender included."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def on_ws_connected(self, transport: WSTransport) -> None:
        ROOMS.setdefault(self.name, set()).add(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        members = ROOMS.get(self.name)
        if members is not None:
            members.discard(transport)
            if not members:
                del ROOMS[self.name]

    def deliver(self, transport: WSTransport, msg_type: WSMsgType, payload) -> None:
        for member in ROOMS.get(self.name, ()):
            member.send(msg_type, payload)


def listener_for(request: WSUpgradeRequest) -> WSListener:
    name = room_name(request.path.decode("latin-1"))
    return Echo() if name is None else Room(name)


async def main(host: str, port: int) -> None:
    server = await ws_create_server(listener_for, host, port, enable_auto_ping=False,
                                    enable_auto_pong=True, max_frame_size=MAX_MESSAGE,
                                    backlog=BACKLOG)
    ready(host, server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    run_asyncio(main, __doc__.splitlines()[0])
