"""The tracking demo's server side: wsframe.v1 watchers through Delivery, plain watchers
as before, acknowledged "contact driver" messages, and /wsframe.js on every server.
(The page itself runs in a real Chromium: tests/delivery/test_browser.py.)"""
import json
import urllib.request

import pytest

from wsframe.client.blocking import connect
from wsframe.delivery import Delivery
from wsframe.delivery.browser import browser_client_source, install_browser_client
from wsframe.errors import ConnectionClosed
from wsframe.server.server import HttpResponse, Server
from wsframe.tools.demo import BERLIN_ROUTE, DriverSimulator, Route, install_demo
from tests.helpers import call_in_loop, running_server

V1 = ["wsframe.v1"]
T0 = 1_800_000_000.0   # a fixed "now" for the simulated drivers


def frames(ws, count):
    return [json.loads(ws.recv(timeout=5)) for _ in range(count)]


@pytest.fixture
def demo():
    box = {}

    def configure(server):
        box["drivers"] = install_demo(server, orders=("42",))
        install_browser_client(server)
        for driver in box["drivers"].values():
            driver.clock = lambda: box["now"]
        box["now"] = T0
    with running_server(configure) as (server, port):
        driver = box["drivers"]["42"]

        def tick():   # one period later: the driver publishes its next position
            box["now"] += driver.period
            call_in_loop(server, driver.step)
        yield server, port, driver, tick


def test_the_driver_follows_the_clock_and_publishes_once_a_period():
    server = Server()
    delivery = Delivery(server)
    now = [T0 + 0.25]
    driver = DriverSimulator(delivery, "42", Route(BERLIN_ROUTE), clock=lambda: now[0])
    driver.step()
    driver.step()                       # the same period: nothing new
    assert delivery.counts["published"] == 1 and driver.seq == int(T0)
    first = driver.last
    now[0] += 1.0
    driver.step()
    assert delivery.counts["published"] == 2 and driver.last["seq"] == first["seq"] + 1
    assert driver.last["remaining_m"] == first["remaining_m"] - 9   # 9 m/s for one second
    # a restarted server's driver is where this one is: position() depends on seq only
    again = DriverSimulator(Delivery(Server()), "42", Route(BERLIN_ROUTE), clock=lambda: now[0])
    assert again.position(driver.seq) == driver.last


def test_a_wsframe_v1_watcher_gets_the_route_numbered_positions_and_acks(demo):
    server, port, driver, tick = demo
    ws = connect(f"ws://127.0.0.1:{port}/track/42", subprotocols=V1)
    assert ws.subprotocol == "wsframe.v1"
    ws.send(json.dumps({"op": "hello", "session": None, "rooms": {}}))
    welcome, hello, joined = frames(ws, 3)
    assert welcome["op"] == "welcome" and welcome["node"]
    assert hello == {"op": "msg", "data": {"type": "hello", "order": "42",
                                           "route": [list(p) for p in BERLIN_ROUTE]}}
    assert joined["op"] == "joined" and joined["room"] == "order:42"
    tick()
    pub, = frames(ws, 1)
    assert pub["op"] == "pub" and pub["offset"] == joined["offset"] + 1
    assert pub["data"]["type"] == "position" and pub["data"]["seq"] == driver.seq
    ws.send(json.dumps({"id": "msg_123", "action": "contact_driver"}))   # the seed's example
    reply, ack = frames(ws, 2)
    assert reply["op"] == "msg" and reply["data"]["type"] == "driver_reply"
    assert reply["data"]["re"] == "msg_123"
    assert ack == {"ack": "msg_123"}
    ws.send(json.dumps({"id": "msg_123", "action": "contact_driver"}))   # a retry
    assert frames(ws, 1) == [{"ack": "msg_123", "duplicate": True}]
    ws.close()


def test_a_plain_watcher_keeps_the_old_messages(demo):
    server, port, driver, tick = demo
    tick()
    ws = connect(f"ws://127.0.0.1:{port}/track/42")
    assert ws.subprotocol is None
    hello, latest = frames(ws, 2)
    assert hello == {"type": "hello", "order": "42", "route": [list(p) for p in BERLIN_ROUTE]}
    assert latest == driver.last
    tick()
    assert frames(ws, 1) == [driver.last]
    ws.close()


def test_a_driver_app_publishes_json_positions_and_is_closed_for_anything_else(demo):
    server, port, driver, tick = demo
    watcher = connect(f"ws://127.0.0.1:{port}/track/42", subprotocols=V1)
    watcher.send(json.dumps({"op": "hello", "session": None, "rooms": {}}))
    frames(watcher, 3)
    app = connect(f"ws://127.0.0.1:{port}/driver/42")
    app.send(json.dumps({"type": "position", "lat": 52.5, "lon": 13.4, "seq": 1}))
    pub, = frames(watcher, 1)
    assert pub["op"] == "pub" and pub["data"] == {"type": "position", "lat": 52.5, "lon": 13.4, "seq": 1}
    app.send("not json")
    with pytest.raises(ConnectionClosed) as closed:
        app.recv(timeout=5)
    assert closed.value.code == 1008
    watcher.close()


def test_wsframe_js_and_its_types_are_served(demo):
    server, port, driver, tick = demo
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/wsframe.js", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/javascript")   # module scripts need it
        body = r.read()
    assert body == browser_client_source("wsframe.js")
    assert b"export class WsFrame" in body
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/wsframe.d.ts", timeout=5) as r:
        assert b"export declare class WsFrame" in r.read()
    with pytest.raises(ValueError):
        browser_client_source("../secrets")


def test_an_apps_own_wsframe_js_route_is_kept():
    server = Server()
    mine = lambda request: HttpResponse(200, b"mine")   # noqa: E731
    server.http("/wsframe.js", mine)
    install_browser_client(server)
    assert server.http_routes["/wsframe.js"] is mine
    assert "/wsframe.d.ts" in server.http_routes
