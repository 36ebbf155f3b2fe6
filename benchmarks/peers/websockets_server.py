"""The built-in app of ``wsframe serve`` on websockets' asyncio server (``websockets.asyncio.server``).

Idiomatic use: one handler coroutine per connection, ``async for`` over its
messages, ``send`` to echo and :func:`websockets.broadcast` (which writes to
every member without awaiting) for rooms. Compression and keepalive pings
are off; messages up to 16 MiB.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

if __package__ in (None, ""):   # run as a script: make ``benchmarks.peers`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from websockets import broadcast
from websockets.asyncio.server import ServerProtocol, serve
from websockets.exceptions import ConnectionClosed

from benchmarks.peers import BACKLOG, MAX_MESSAGE, ready, room_name, run_asyncio

ROOMS: dict[str, set[ServerProtocol]] = {}


async def handler(ws: ServerProtocol) -> None:
    name = room_name(ws.request.path)
    try:
        if name is None:
            async for message in ws:          # str for text, bytes for binary
                await ws.send(message)
            return
        members = ROOMS.setdefault(name, set())
        members.add(ws)
        try:
            async for message in ws:
                broadcast(members, message)
        finally:
            members.discard(ws)
            if not members:
                ROOMS.pop(name, None)
    except ConnectionClosed:   # closed without a closing handshake: nothing to do
        pass


async def main(host: str, port: int) -> None:
    async with serve(handler, host, port, compression=None, max_size=MAX_MESSAGE,
                     ping_interval=None, ping_timeout=None, backlog=BACKLOG) as server:
        ready(host, server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().create_future()   # until killed


if __name__ == "__main__":
    run_asyncio(main, __doc__.splitlines()[0])
