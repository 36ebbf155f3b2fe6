"""The app of the delivery drills with worker processes (``tests.delivery.workers_app:make_server``).

* ``/track/{order_id}``: partition key ``order:{order_id}`` (the room's owner worker);
  joins room ``order:{order_id}``;
* ``/watch/{order_id}/{via}``: partition key ``{via}``, so a test can place a watcher on
  another worker than the room's owner; joins ``order:{order_id}`` by proxy;
* ``/driver/{order_id}/{via}``: partition key ``{via}``; every acknowledged message is
  published to ``order:{order_id}`` from whichever worker holds the driver.
"""
from __future__ import annotations

from wsframe.delivery import Delivery
from wsframe.server.server import Server


class _Watch:
    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    def on_open(self, conn, request, params):
        self.delivery.join(conn, f"order:{params['order_id']}")


class _Driver:
    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    def on_open(self, conn, request, params):
        conn.data = f"order:{params['order_id']}"

    def on_message(self, conn, message):
        self.delivery.publish(conn.data, {"seq": message["seq"]})


def make_server() -> Server:
    server = Server(handshake_timeout=2.0, shutdown_timeout=1.0, tick_interval=0.05,
                    heartbeat=None)
    delivery = Delivery(server, session_ttl=30.0)
    watch = delivery.endpoint(_Watch(delivery))
    server.route("/track/{order_id}", watch, partition="order:{order_id}")
    server.route("/watch/{order_id}/{via}", watch, partition="{via}")
    server.route("/driver/{order_id}/{via}", delivery.endpoint(_Driver(delivery)),
                 partition="{via}")
    return server
