"""The app the cluster tests serve (``tests.cluster.app:make_server``).

* ``/track/{order_id}``: partition key ``order:{order_id}``; joins that room;
* ``/member/{room}``: no key (least-loaded worker); joins ``room``, by proxy
  when another worker owns it;
* every message on those routes is broadcast to the room; any other path echoes;
* on open, every connection is told its worker's pid (``pid <n>``).
"""
from __future__ import annotations

import os

from wsframe.server.server import Endpoint, Server


class _Room(Endpoint):
    prefix = ""
    param = "room"

    def on_open(self, conn, request, params):
        conn.data = conn.join(self.prefix + params[self.param])
        conn.send(f"pid {os.getpid()}")

    def on_message(self, conn, message):
        if message == "exclude-me":
            conn.data.broadcast("excluded", exclude=conn)
        else:
            conn.data.broadcast(message)


class Track(_Room):
    prefix = "order:"
    param = "order_id"


class Echo(Endpoint):
    def on_open(self, conn, request, params):
        conn.send(f"pid {os.getpid()}")

    def on_message(self, conn, message):
        conn.send(message)


def make_server() -> Server:
    server = Server(handshake_timeout=1.0, shutdown_timeout=2.0, tick_interval=0.1,
                    heartbeat=None)
    server.route("/track/{order_id}", Track(), partition="order:{order_id}")
    server.route("/member/{room}", _Room())
    server.default = Echo()
    return server


def broken_in_workers() -> Server:
    """Loads in the supervisor, fails in every worker (the supervisor must give up)."""
    if os.environ.get("WSFRAME_CLUSTER_WORKER"):
        raise RuntimeError("this worker cannot start")
    return make_server()
