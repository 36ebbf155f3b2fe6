"""Peer servers for side-by-side benchmarks: the built-in app of ``wsframe serve``
written with other WebSocket libraries.

Each module is a script, ``python benchmarks/peers/<name>.py --port P [--host H]``:

* every message is echoed on any path (text as text, binary as binary);
* on ``/room/<name>`` the connection joins room ``<name>`` and every message
  it sends goes to every member, sender included;
* no compression, messages up to 16 MiB, no heartbeats, listen backlog 4096;
* one line ``listening on HOST:PORT`` on stdout when ready (``--port 0``
  picks a free port and prints it).

``bare_selectors`` is the memory floor instead: it answers the handshake and
then only holds the sockets. All of them run on the default asyncio loop.

``socketio/`` is no Python module: Socket.IO servers sharing a Redis through
``@socket.io/redis-adapter``, with socket.io-client members and publisher, in
Node, for ``benchmarks/socketio_redis.py`` (``npm ci`` there installs the
versions in its ``package-lock.json``).

This module holds what they share and imports nothing outside the stdlib.
"""
from __future__ import annotations

import argparse
import re
import sys
from typing import Optional

__all__ = ["MAX_MESSAGE", "BACKLOG", "parse_args", "room_name", "ready", "run_asyncio"]

MAX_MESSAGE = 16 * 1024 * 1024   # the largest message a peer accepts
BACKLOG = 4096                   # listen() queue; the kernel caps it at net.core.somaxconn

_ROOM = re.compile(r"/room/([^/?#]+)")


def parse_args(description: str, argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    return parser.parse_args(argv)


def room_name(target: str) -> Optional[str]:
    """The room of a request target ``/room/<name>[?query]``, else None."""
    match = _ROOM.fullmatch(target.split("?", 1)[0])
    return match.group(1) if match else None


def ready(host: str, port: int) -> None:
    """Tell whoever started us that we accept connections."""
    print(f"listening on {host}:{port}", flush=True)
    sys.stdout.flush()


def run_asyncio(main, description: str) -> None:
    """The script entry point of an asyncio peer: parse --host/--port, run until killed."""
    import asyncio
    args = parse_args(description)
    try:
        asyncio.run(main(args.host, args.port))
    except KeyboardInterrupt:
        pass
