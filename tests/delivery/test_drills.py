"""The Python ReliableClient through drops and restarts: every publication exactly once and
in order, or a discontinuity reported; every acked message taken exactly once."""
import threading
import time

from wsframe.delivery import Delivery, ReliableClient
from wsframe.loop.connect import Backoff
from wsframe.loop.eventloop import Loop
from wsframe.server.server import Server
from tests.helpers import call_in_loop, wait_for


class Track:
    def __init__(self):
        self.delivery = None
        self.taken = []

    def on_open(self, conn, request, params):
        self.delivery.join(conn, f"order:{params['order_id']}")

    def on_message(self, conn, message):
        self.taken.append(message["id"])


class Node:
    """A server with Delivery on its own loop thread, on a given port."""

    def __init__(self, port=0, backplane=None, **delivery_options):
        self.server = Server(tick_interval=0.05, shutdown_timeout=0.5, heartbeat=None,
                             backplane=backplane)
        self.app = Track()
        self.delivery = self.app.delivery = Delivery(self.server, **delivery_options)
        self.server.route("/track/{order_id}", self.delivery.endpoint(self.app))
        _, self.port = self.server.listen("127.0.0.1", port)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"signals": False}, daemon=True)
        self.thread.start()

    def publish(self, room, data):
        return call_in_loop(self.server, self.delivery.publish, room, data)

    def drop_everyone(self):
        """Every connection lost at once, as a WiFi-to-4G switch looks from the server."""
        call_in_loop(self.server, lambda: [c._abort() for c in self.server.connections])

    def stop(self):
        self.server.loop.call_soon_threadsafe(self.server.shutdown)
        self.thread.join(10)


class Watcher:
    """A ReliableClient on its own loop thread. ``timeline``: publications and
    discontinuities in the order they happened."""

    def __init__(self, port, store=None, path="/track/42"):
        self.loop = Loop(tick_interval=0.05)
        self.received = []
        self.events = []
        self.timeline = []

        def got(c, data, room):
            self.received.append(data)
            self.timeline.append(("pub", data))

        def broken(c, room, why):
            self.events.append(("discontinuity", why))
            self.timeline.append(("discontinuity", why))
        self.client = ReliableClient(
            f"ws://127.0.0.1:{port}{path}", loop=self.loop, store=store,
            reconnect=Backoff(initial=0.05, max_delay=0.2), ack_timeout=0.5,
            on_message=got,
            on_recovered=lambda c, room, n: self.events.append(("recovered", n)),
            on_discontinuity=broken,
            on_ack=lambda c, ident: self.events.append(("ack", ident)),
            ping_interval=None)
        self.thread = threading.Thread(target=self.loop.run, daemon=True)

    def start(self):
        self.loop.call_soon(self.client.start)
        self.thread.start()
        return self

    def send(self, message):
        box = {}
        done = threading.Event()

        def run():
            box["id"] = self.client.send(message)
            done.set()
        self.loop.call_soon_threadsafe(run)
        done.wait(5)
        return box["id"]

    def stop(self):
        self.loop.call_soon_threadsafe(self.client.close)
        time.sleep(0.2)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_drops_mid_stream_lose_nothing_and_duplicate_nothing():
    node = Node()
    watcher = Watcher(node.port).start()
    try:
        assert wait_for(lambda: watcher.client.welcomed and "order:42" in watcher.client.rooms, 5)
        for i in range(300):
            node.publish("order:42", {"seq": i})
            if i % 60 == 30:
                node.drop_everyone()   # five drops during the route
            time.sleep(0.002)
        assert wait_for(lambda: len(watcher.received) >= 300, 15), len(watcher.received)
        time.sleep(0.3)
        assert [m["seq"] for m in watcher.received] == list(range(300))   # once, in order
        assert any(e[0] == "recovered" for e in watcher.events)
        assert not [e for e in watcher.events if e[0] == "discontinuity"]
    finally:
        watcher.stop()
        node.stop()


def test_acked_messages_survive_drops_taken_exactly_once():
    node = Node()
    watcher = Watcher(node.port).start()
    try:
        assert wait_for(lambda: watcher.client.welcomed, 5)
        ids = []
        for i in range(40):
            ids.append(watcher.send({"action": "contact_driver", "n": i}))
            if i % 10 == 5:
                node.drop_everyone()
            time.sleep(0.01)
        assert wait_for(lambda: not watcher.client.outbox, 15), len(watcher.client.outbox)
        assert sorted(node.app.taken) == sorted(ids)       # every one, exactly once
        assert node.app.taken == ids                       # and in the order sent
    finally:
        watcher.stop()
        node.stop()


def test_a_server_restart_is_reported_as_a_discontinuity_never_a_silent_gap():
    node = Node()
    port = node.port
    watcher = Watcher(port).start()
    try:
        assert wait_for(lambda: "order:42" in watcher.client.rooms, 5)
        for i in range(10):
            node.publish("order:42", {"seq": i})
        assert wait_for(lambda: len(watcher.received) == 10, 5)
        node.stop()   # its history (in this process) is gone with it
        node = Node(port)
        node.publish("order:42", {"seq": "new"})
        assert wait_for(lambda: ("discontinuity", "epoch") in watcher.events, 10), watcher.events
        node.publish("order:42", {"seq": "after"})
        assert wait_for(lambda: watcher.received[-1] == {"seq": "after"}, 5)
    finally:
        watcher.stop()
        node.stop()


def test_a_client_restart_resumes_from_its_store():
    node = Node()
    store = {}
    first = Watcher(node.port, store).start()
    try:
        assert wait_for(lambda: "order:42" in first.client.rooms, 5)
        for i in range(5):
            node.publish("order:42", i)
        assert wait_for(lambda: len(first.received) == 5, 5)
    finally:
        first.stop()
    for i in range(5, 9):
        node.publish("order:42", i)   # while no process of the client runs
    second = Watcher(node.port, store).start()   # a new client, the same store
    try:
        assert wait_for(lambda: second.received == [5, 6, 7, 8], 5), second.received
        assert ("recovered", 4) in second.events
    finally:
        second.stop()
        node.stop()


def test_a_client_whose_session_another_resumed_starts_a_session_of_its_own():
    """A duplicated browser tab copies the session id: the newer hello takes the session
    (4409 for the older connection), and the older client goes on with a new one
    instead of taking it back (no tug of war), its room position kept."""
    import json

    from wsframe.client.blocking import connect

    node = Node()
    watcher = Watcher(node.port).start()
    try:
        assert wait_for(lambda: watcher.client.welcomed and "order:42" in watcher.client.rooms, 5)
        first = watcher.client.session
        twin = connect(f"ws://127.0.0.1:{node.port}/track/42", subprotocols=["wsframe.v1"])
        twin.send(json.dumps({"op": "hello", "session": first, "rooms": {}}))
        assert json.loads(twin.recv(timeout=5))["resumed"] is True
        assert wait_for(lambda: watcher.client.welcomed and watcher.client.session not in (None, first), 5)
        node.publish("order:42", {"seq": 1})
        assert wait_for(lambda: watcher.received == [{"seq": 1}], 5), watcher.received
        assert not [e for e in watcher.events if e[0] == "discontinuity"]
        assert node.delivery.sessions[first].conn is not None   # the twin keeps it
        twin.close()
    finally:
        watcher.stop()
        node.stop()
