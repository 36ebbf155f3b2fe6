"""The built-in application of ``wsframe serve``.

* any path: every message is echoed back (text as text, binary as binary);
* ``/room/<name>``: the connection joins room ``<name>`` and every message
  it sends is broadcast to every member, sender included;
* ``/proxy/<name>``: the same without a partition key: with workers, members
  land on the least-loaded worker and join the room by proxy (measures rooms
  across workers);
* ``GET /health``: a JSON line with the server's counters.

``wsframe serve --demo`` adds the live tracking demo (see :mod:`wsframe.tools.demo`).
"""
from __future__ import annotations

import json

from wsframe.server.server import Endpoint, HttpResponse, Server

__all__ = ["Echo", "RoomBroadcast", "install_builtin_app"]


class Echo(Endpoint):
    """Send every message back to its sender."""

    def on_message(self, conn, message):
        conn.send(message)


class RoomBroadcast(Endpoint):
    """Join the room named in the path; broadcast every message to it."""

    def on_open(self, conn, request, params):
        conn.data = conn.join(params["name"])  # the room, kept for on_message

    def on_message(self, conn, message):
        conn.data.broadcast(message)


def install_builtin_app(server: Server) -> None:
    """Echo on every path, rooms on ``/room/{name}``, counters on ``/health``."""
    server.route("/room/{name}", RoomBroadcast(), partition="{name}")  # owner: by name
    server.route("/proxy/{name}", RoomBroadcast())  # no key: spread, joined by proxy
    server.default = Echo()

    def health(request):
        body = {"status": "ok", "connections": len(server._conns), "rooms": len(server.rooms),
                **server.stats.as_dict()}
        if server.backplane is not None:
            body["backplane"] = server.backplane.stats()
            if body["backplane"].get("state") != "ready":
                body["status"] = "degraded"
        return HttpResponse(200, (json.dumps(body) + "\n").encode(), "application/json")
    server.http("/health", health)
