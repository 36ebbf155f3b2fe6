"""wsframe on asyncio: one adapter over the sans-IO core, for applications and for uvicorn.

::

    import wsframe.asyncio

    async with wsframe.asyncio.connect("ws://127.0.0.1:8765/") as ws:
        await ws.send("hello")
        async for message in ws:
            ...

    async with wsframe.asyncio.serve(handler, "127.0.0.1", 8765) as server:
        await server.serve_forever()

Works on the default event loop and on uvloop. The same
:class:`~wsframe.asyncio.adapter.Adapter` drives :mod:`wsframe.asgi`.
"""
from wsframe.asyncio.adapter import Adapter
from wsframe.asyncio.client import ClientConnection, connect
from wsframe.asyncio.connection import Connection
from wsframe.asyncio.rooms import BroadcastResult, Room, Rooms
from wsframe.asyncio.server import Server, ServerConnection, serve

__all__ = ["connect", "serve", "Connection", "ClientConnection", "ServerConnection", "Server",
           "Adapter", "Room", "Rooms", "BroadcastResult"]
