"""The live delivery tracking demo (``wsframe serve --demo``).

* ``GET /`` serves a page that opens ``/track/<order>`` with the browser's
  native WebSocket, reconnects with exponential backoff and full jitter,
  and draws the driver's position and ETA as they arrive.
* ``/track/{order_id}``: watchers of one order share a room; a new (or
  reconnecting) watcher first gets the latest position, then every update.
* ``/driver/{order_id}``: a driver app pushes JSON positions; each is
  broadcast to the order's room (a real publisher can replace the simulator).
* A simulated driver per demo order moves along a route and pushes its
  position once a second, encoded once per broadcast for all watchers.
"""
from __future__ import annotations

import json
import math
import time
from importlib import resources
from typing import Optional

from wsframe.server.server import Endpoint, HttpResponse, Server

__all__ = ["install_demo", "Route", "DriverSimulator", "Track", "Driver"]

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
    """A driver going round a route at ``speed`` m/s, pushing to the order's room."""

    def __init__(self, server: Server, order_id: str, route: Route, *,
                 speed: float = 9.0, period: float = 1.0, offset: float = 0.0) -> None:
        self.server = server
        self.order_id = order_id
        self.route = route
        self.speed = speed
        self.period = period
        self.travelled = offset
        self.seq = 0
        self.last: Optional[str] = None

    def start(self) -> None:
        self.server.loop.call_later(self.period, self.step)

    def step(self) -> None:
        self.travelled += self.speed * self.period
        if self.travelled > self.route.length + 60 * self.speed:  # a minute at the door
            self.travelled = 0.0
        lat, lon = self.route.position(self.travelled)
        remaining = max(self.route.length - self.travelled, 0.0)
        self.seq += 1
        self.last = json.dumps({
            "type": "position", "order": self.order_id, "seq": self.seq,
            "lat": round(lat, 6), "lon": round(lon, 6),
            "eta_s": round(remaining / self.speed), "remaining_m": round(remaining),
            "ts": round(time.time(), 3)})
        publish(self.server, self.order_id, self.last)
        self.server.loop.call_later(self.period, self.step)


def room_name(order_id: str) -> str:
    return f"order:{order_id}"


def publish(server: Server, order_id: str, message: str) -> None:
    """Broadcast one position to the order's watchers (encoded once)."""
    room = server.rooms.get(room_name(order_id))
    if room is not None:
        room.broadcast(message)


class Track(Endpoint):
    """Watchers of one order: the latest position first, then live updates."""

    def __init__(self, drivers: dict[str, DriverSimulator]) -> None:
        self.drivers = drivers

    def on_open(self, conn, request, params):
        order_id = params["order_id"]
        conn.join(room_name(order_id))
        driver = self.drivers.get(order_id)
        conn.send(json.dumps({"type": "hello", "order": order_id,
                              "route": driver.route.points if driver else []}))
        if driver is not None and driver.last is not None:
            conn.send(driver.last)


class Driver(Endpoint):
    """A driver app pushing its own positions for one order."""

    def on_message(self, conn, message):
        if isinstance(message, str):
            publish(conn.server, conn.data, message)

    def on_open(self, conn, request, params):
        conn.data = params["order_id"]


def _static(name: str, content_type: str):
    body = resources.files(__package__).joinpath("static", name).read_bytes()

    def handler(request):
        return HttpResponse(200, body, content_type, (("Cache-Control", "no-cache"),))
    return handler


def install_demo(server: Server, orders=DEMO_ORDERS) -> dict[str, DriverSimulator]:
    """Routes, page and one simulated driver per demo order."""
    route = Route(BERLIN_ROUTE)
    drivers = {order: DriverSimulator(server, order, route, offset=i * route.length / 3)
               for i, order in enumerate(orders)}
    server.route("/track/{order_id}", Track(drivers))
    server.route("/driver/{order_id}", Driver())
    server.http("/", _static("index.html", "text/html; charset=utf-8"))
    for driver in drivers.values():
        driver.start()
    return drivers
