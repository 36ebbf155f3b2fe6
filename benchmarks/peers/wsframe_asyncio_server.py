"""The built-in app of ``wsframe serve`` on ``wsframe.asyncio.serve`` (the asyncio API).

One handler coroutine per connection, ``async for`` over its messages and
``send`` to echo; rooms send to every member in turn. Compression and
keepalive are off; messages up to 16 MiB. ``WSFRAME_UVLOOP=1`` runs it on uvloop.
"""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

if __package__ in (None, ""):   # run as a script: make ``benchmarks.peers`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import wsframe.asyncio as wsa
from wsframe.errors import ConnectionClosed
from wsframe.sansio.protocol import Limits

from benchmarks.peers import BACKLOG, MAX_MESSAGE, parse_args, ready, room_name

ROOMS: dict[str, set] = {}
LIMITS = Limits(max_message_size=MAX_MESSAGE, max_frame_size=MAX_MESSAGE)


async def handler(ws) -> None:
    name = room_name(ws.request.target)
    try:
        if name is None:
            async for message in ws:
                await ws.send(message)
            return
        members = ROOMS.setdefault(name, set())
        members.add(ws)
        try:
            async for message in ws:
                for member in list(members):
                    try:
                        await member.send(message)
                    except ConnectionClosed:
                        members.discard(member)
        finally:
            members.discard(ws)
            if not members:
                ROOMS.pop(name, None)
    except ConnectionClosed:
        pass


async def main(host: str, port: int) -> None:
    async with wsa.serve(handler, host, port, deflate=None, limits=LIMITS, ping_interval=None,
                         backlog=BACKLOG) as server:
        ready(host, server.port)
        await asyncio.get_running_loop().create_future()   # until killed


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0])
    try:
        if os.environ.get("WSFRAME_UVLOOP") == "1":
            import uvloop
            uvloop.run(main(args.host, args.port))
        else:
            asyncio.run(main(args.host, args.port))
    except KeyboardInterrupt:
        pass
