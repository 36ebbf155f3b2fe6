"""The live delivery tracking demo (``wsframe serve --demo``), on ``wsframe.v1``.

* ``GET /`` serves a page that follows ``/track/<order>`` with ``wsframe.js``
  (the browser client of docs/protocol.md, at ``/wsframe.js``): it resumes
  after a reconnect or a reload from the room's last offset, counts the
  positions it received and those it missed, shows which server process
  delivered them, sends acknowledged "contact driver" messages, and explains
  the frames it receives in a wire panel.
* ``/track/{order_id}``: watchers of one order. ``wsframe.v1`` clients get the
  route as a direct message, then the room's publications through
  :class:`~wsframe.delivery.Delivery` (numbered, kept in a bounded history,
  replayed after a reconnect). Plain WebSocket clients keep the old behaviour:
  a ``hello`` with the route, the latest position, then every update.
  ``{"id": ..., "action": "contact_driver", "text": ...}`` is acknowledged
  once the demo has taken it, and the simulated driver answers.
* ``/driver/{order_id}``: a driver app pushes JSON positions; each is
  published to the order's room (a real publisher can replace the simulator).
* A simulated driver per demo order moves along a route and publishes its
  position once a second. Its ``seq`` is the number of periods since 1970, so
  a page can count the positions it missed across a server restart too.
"""
from __future__ import annotations

import json
import math
import time
from importlib import resources
from typing import Any, Callable, Optional

from wsframe.delivery import Delivery
from wsframe.server.server import Endpoint, HttpResponse, Server

__all__ = ["install_demo", "Route", "DriverSimulator", "Track", "Driver", "room_name"]

# A delivery route through Berlin (lat, lon): restaurant -> customer.
BERLIN_ROUTE = [(52.5200, 13.4050), (52.5163, 13.3777), (52.5096, 13.3759),
                (52.5069, 13.3903), (52.5027, 13.4110), (52.4995, 13.4185),
                (52.4940, 13.4240), (52.4891, 13.4295)]
DEMO_ORDERS = ("42", "7", "1001")


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


class Route:
    """A polyline with the distance covered so far."""

    def __init__(self, points: list[tuple[float, float]]) -> None:
        self.points = points
        self.legs = [haversine_m(a, b) for a, b in zip(points, points[1:])]
        self.length = sum(self.legs)

    def position(self, travelled: float) -> tuple[float, float]:
        """The point ``travelled`` metres along the route (clamped to its ends)."""
        travelled = max(0.0, min(travelled, self.length))
        for (a, b), leg in zip(zip(self.points, self.points[1:]), self.legs):
            if travelled <= leg:
                f = travelled / leg if leg else 0.0
                return (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)
            travelled -= leg
        return self.points[-1]


class DriverSimulator:
    """A driver going round a route at ``speed`` m/s, publishing to the order's room.

    Where it is follows from the clock: position number ``seq`` (the number of
    ``period`` s since 1970) is ``seq * speed * period + offset`` metres along the
    loop (the route, then a minute at the door). A restarted server carries on
    where the driver would be, and ``seq`` carries on too."""

    def __init__(self, delivery: Delivery, order_id: str, route: Route, *,
                 speed: float = 9.0, period: float = 1.0, offset: float = 0.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.delivery = delivery
        self.server = delivery.server
        self.order_id = order_id
        self.route = route
        self.speed = speed
        self.period = period
        self.offset = offset
        self.clock = clock
        self.seq = 0
        self.last: Optional[dict] = None

    def start(self) -> None:
        self.server.loop.call_later(self._until_next(), self.step)

    def _until_next(self) -> float:
        now = self.clock()
        return max(0.0, (math.floor(now / self.period) + 1) * self.period - now) + 0.001

    def position(self, seq: int) -> dict:
        """Position number ``seq``, as published."""
        loop = self.route.length + 60 * self.speed   # a minute at the door
        travelled = (seq * self.speed * self.period + self.offset) % loop
        lat, lon = self.route.position(travelled)
        remaining = max(self.route.length - travelled, 0.0)
        return {"type": "position", "order": self.order_id, "seq": seq,
                "lat": round(lat, 6), "lon": round(lon, 6),
                "eta_s": round(remaining / self.speed), "remaining_m": round(remaining),
                "ts": round(seq * self.period, 3)}

    def step(self) -> None:
        seq = math.floor(self.clock() / self.period)
        if seq > self.seq:
            self.seq = seq
            self.last = self.position(seq)
            room = room_name(self.order_id)
            if self.delivery.owns(room):   # with --workers: one driver, in the room's owner
                self.delivery.publish(room, self.last)
        if not self.server._stopping:
            self.server.loop.call_later(self._until_next(), self.step)


def room_name(order_id: str) -> str:
    """The room of an order's watchers."""
    return f"order:{order_id}"


DRIVER_REPLIES = ("On my way!", "Got it, thanks.", "I'll ring the bell.", "Two minutes away.")


class Track:
    """Watchers of one order (the app behind ``delivery.endpoint``)."""

    def __init__(self, delivery: Delivery, drivers: dict[str, DriverSimulator]) -> None:
        self.delivery = delivery
        self.drivers = drivers
        self.contacts = 0

    def on_open(self, conn, request, params) -> None:
        order_id = params["order_id"]
        driver = self.drivers.get(order_id)
        self.delivery.send(conn, {"type": "hello", "order": order_id,
                                  "route": driver.route.points if driver else []})
        self.delivery.join(conn, room_name(order_id))   # wsframe.v1: joined, or the replay
        if conn.subprotocol is None and driver is not None and driver.last is not None:
            conn.send(json.dumps(driver.last, separators=(",", ":")))  # plain clients: the latest first

    def on_message(self, conn, message: Any) -> None:
        """``{"id": ..., "action": "contact_driver", "text": ...}``: returning acks it."""
        if isinstance(message, dict) and message.get("action") == "contact_driver":
            self.contacts += 1
            reply = DRIVER_REPLIES[self.contacts % len(DRIVER_REPLIES)]
            self.delivery.send(conn, {"type": "driver_reply", "re": message.get("id"),
                                      "text": reply})


class Driver(Endpoint):
    """A driver app pushing its own positions (JSON) for one order."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    def on_message(self, conn, message):
        if isinstance(message, str):
            try:
                data = json.loads(message)
            except ValueError:
                conn.close(1008, "a position is JSON")   # policy violation (RFC 6455 §7.4.1)
                return
            self.delivery.publish(room_name(conn.data), data)

    def on_open(self, conn, request, params):
        conn.data = params["order_id"]


def _static(name: str, content_type: str):
    body = resources.files(__package__).joinpath("static", name).read_bytes()

    def handler(request):
        return HttpResponse(200, body, content_type, (("Cache-Control", "no-cache"),))
    return handler


def install_demo(server: Server, orders=DEMO_ORDERS, *,
                 delivery: Optional[Delivery] = None) -> dict[str, DriverSimulator]:
    """Routes, page and one simulated driver per demo order, on ``delivery`` (a new
    :class:`~wsframe.delivery.Delivery` for ``server`` if not given)."""
    delivery = delivery or Delivery(server)
    route = Route(BERLIN_ROUTE)
    drivers = {order: DriverSimulator(delivery, order, route, offset=i * route.length / 3)
               for i, order in enumerate(orders)}
    server.route("/track/{order_id}", delivery.endpoint(Track(delivery, drivers)),
                 partition="order:{order_id}")   # with --workers: the room's owner
    server.route("/driver/{order_id}", Driver(delivery))
    server.http("/", _static("index.html", "text/html; charset=utf-8"))
    for driver in drivers.values():
        driver.start()
    return drivers
