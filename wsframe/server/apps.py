"""The built-in application of ``wsframe serve``.

* any path: every message is echoed back (text as text, binary as binary);
* ``/room/<name>``: the connection joins room ``<name>`` and every message
  it sends is broadcast to every member, sender included;
* ``/proxy/<name>``: the same without a partition key: with workers, members
  land on the least-loaded worker and join the room by proxy (measures rooms
  across workers);
* ``GET /health``: a JSON line with the server's counters.

``wsframe serve --demo`` adds the live tracking demo (see :mod:`wsframe.tools.demo`).

``wsframe serve --gateway --redis URL`` serves :func:`install_gateway_app`
instead: the same paths, but messages go to backends through Redis streams
(see :mod:`wsframe.server.gateway`).
"""
from __future__ import annotations

import json

from wsframe.server.gateway import Gateway
from wsframe.server.server import Endpoint, HttpResponse, Server

__all__ = ["Echo", "RoomBroadcast", "install_builtin_app", "install_gateway_app"]


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
    _install_health(server)


def install_gateway_app(server: Server, **options) -> Gateway:
    """Gateway mode (``wsframe serve --gateway``): ``/room/{name}`` joins room ``<name>``
    and its messages go to stream ``wsframe:in:room``; any other path's to
    ``wsframe:in:default``; ``/health`` as above, with the gateway's counters.
    ``options`` go to :class:`~wsframe.server.gateway.Gateway` (``maxlen=`` ...);
    the server needs a backplane (``ValueError`` otherwise)."""
    gateway = Gateway(server, **options)
    server.route("/room/{name}", gateway.endpoint("room", room="{name}"), partition="{name}")
    server.default = gateway.endpoint("default")
    _install_health(server)
    return gateway


def _install_health(server: Server) -> None:
    def health(request):
        body = {"status": "ok", "connections": len(server._conns), "rooms": len(server.rooms),
                **server.stats.as_dict()}
        if server.backplane is not None:
            body["backplane"] = server.backplane.stats()
            if body["backplane"].get("state") != "ready":
                body["status"] = "degraded"
        if server.gateway is not None:
            body["gateway"] = server.gateway.stats()
        return HttpResponse(200, (json.dumps(body) + "\n").encode(), "application/json")
    server.http("/health", health)
