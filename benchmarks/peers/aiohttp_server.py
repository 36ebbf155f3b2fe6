"""The built-in app of ``wsframe serve`` on aiohttp (``web.WebSocketResponse``).

Idiomatic use: one request handler per connection that prepares a
``WebSocketResponse`` (``autoping`` answers Pings, ``autoclose`` answers
Closes, ``compress=False``, no ``heartbeat``) and iterates over its messages;
``send_str`` / ``send_bytes`` to echo, and the same to every member of a room.
Text is decoded (and so validated as UTF-8), as the RFC asks of every peer.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

if __package__ in (None, ""):   # run as a script: make ``benchmarks.peers`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiohttp import WSMsgType, web

from benchmarks.peers import BACKLOG, MAX_MESSAGE, ready, room_name, run_asyncio

ROOMS: dict[str, set[web.WebSocketResponse]] = {}


async def handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(autoping=True, heartbeat=None, compress=False,
                               max_msg_size=MAX_MESSAGE)
    await ws.prepare(request)
    name = room_name(request.path)
    if name is None:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type is WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws
    members = ROOMS.setdefault(name, set())
    members.add(ws)
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                for member in tuple(members):
                    try:
                        await member.send_str(msg.data)
                    except (ConnectionError, RuntimeError):   # it is closing
                        pass
            elif msg.type is WSMsgType.BINARY:
                for member in tuple(members):
                    try:
                        await member.send_bytes(msg.data)
                    except (ConnectionError, RuntimeError):
                        pass
    finally:
        members.discard(ws)
        if not members:
            ROOMS.pop(name, None)
    return ws


async def main(host: str, port: int) -> None:
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=BACKLOG)
    await site.start()
    ready(host, runner.addresses[0][1])
    try:
        await asyncio.get_running_loop().create_future()   # until killed
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    run_asyncio(main, __doc__.splitlines()[0])
