"""wsframe.v1 on a real server, spoken by a plain blocking client frame by frame."""
import json
import time

import pytest

from wsframe.client.blocking import connect
from wsframe.delivery import LATER, SESSION_TAKEN, Delivery
from wsframe.delivery.history import RoomHistory
from wsframe.errors import ConnectionClosed
from tests.helpers import call_in_loop, running_server, wait_for

V1 = ["wsframe.v1"]


class Track:
    def __init__(self):
        self.delivery = None
        self.opened = []
        self.messages = []
        self.later = []

    def on_open(self, conn, request, params):
        self.opened.append(params)
        self.delivery.join(conn, f"order:{params['order_id']}")

    def on_message(self, conn, message):
        self.messages.append(message)
        if isinstance(message, dict) and message.get("action") == "explode":
            raise RuntimeError("a buggy handler")
        if isinstance(message, dict) and message.get("action") == "slow":
            self.later.append((conn, message["id"]))
            return LATER
        return None


@pytest.fixture
def served():
    app = Track()
    box = {}

    def configure(server):
        box["delivery"] = app.delivery = Delivery(server, history_size=50, hello_timeout=0.5)
        server.route("/track/{order_id}", app.delivery.endpoint(app))
    with running_server(configure) as (server, port):
        yield server, port, box["delivery"], app


def frames(ws, count, timeout=5):
    return [json.loads(ws.recv(timeout=timeout)) for _ in range(count)]


def hello(ws, session=None, rooms=None):
    ws.send(json.dumps({"op": "hello", "session": session, "rooms": rooms or {}}))


def test_hello_welcome_then_the_app_opens_and_joins(served):
    server, port, delivery, app = served
    ws = connect(f"ws://127.0.0.1:{port}/track/42", subprotocols=V1)
    assert ws.subprotocol == "wsframe.v1"
    time.sleep(0.1)
    assert app.opened == []   # on_open waits for the hello
    hello(ws)
    welcome, joined = frames(ws, 2)
    assert welcome["op"] == "welcome" and welcome["resumed"] is False and welcome["session"]
    assert joined == {"op": "joined", "room": "order:42", "epoch": joined["epoch"], "offset": 0}
    assert app.opened == [{"order_id": "42"}]
    ws.close()


def test_the_seed_example_acked_once_and_duplicates_acked_again(served):
    server, port, delivery, app = served
    ws = connect(f"ws://127.0.0.1:{port}/track/42", subprotocols=V1)
    hello(ws)
    frames(ws, 2)
    ws.send('{"id": "msg_123", "action": "contact_driver"}')
    assert frames(ws, 1) == [{"ack": "msg_123"}]
    ws.send('{"id": "msg_123", "action": "contact_driver"}')   # a retry whose ack was lost
    assert frames(ws, 1) == [{"ack": "msg_123", "duplicate": True}]
    assert app.messages == [{"id": "msg_123", "action": "contact_driver"}]   # taken once
    ws.send('{"op": "ping"}')
    assert frames(ws, 1) == [{"op": "pong"}]
    ws.close()


def test_dedupe_survives_a_reconnect_with_the_session(served):
    server, port, delivery, app = served
    ws = connect(f"ws://127.0.0.1:{port}/track/1", subprotocols=V1)
    hello(ws)
    session = frames(ws, 2)[0]["session"]
    ws.send('{"id": "a1", "action": "contact_driver"}')
    assert frames(ws, 1) == [{"ack": "a1"}]
    ws.close()
    again = connect(f"ws://127.0.0.1:{port}/track/1", subprotocols=V1)
    hello(again, session)
    welcome = frames(again, 2)[0]
    assert welcome["resumed"] is True and welcome["session"] == session
    again.send('{"id": "a1", "action": "contact_driver"}')
    assert frames(again, 1) == [{"ack": "a1", "duplicate": True}]
    assert len(app.messages) == 1
    again.close()


def test_a_session_still_held_by_a_connection_left_behind_is_resumed_and_that_one_closed(served):
    """WiFi to 4G: the server has not noticed that the old connection is gone when the
    client's new hello arrives. The session resumes (dedupe kept); the old connection
    is closed with 4409, and a live client there would start a session of its own (§4.5)."""
    server, port, delivery, app = served
    left = connect(f"ws://127.0.0.1:{port}/track/1", subprotocols=V1)
    hello(left)
    session = frames(left, 2)[0]["session"]
    left.send('{"id": "w1", "action": "contact_driver"}')
    assert frames(left, 1) == [{"ack": "w1"}]
    new = connect(f"ws://127.0.0.1:{port}/track/1", subprotocols=V1)
    hello(new, session)
    welcome = frames(new, 2)[0]
    assert welcome["resumed"] is True and welcome["session"] == session
    new.send('{"id": "w1", "action": "contact_driver"}')   # the retry of an ack lost on the way
    assert frames(new, 1) == [{"ack": "w1", "duplicate": True}]
    assert len(app.messages) == 1
    with pytest.raises(ConnectionClosed):
        left.recv(timeout=5)
    assert left.close_code == SESSION_TAKEN == 4409
    assert delivery.counts["taken_over"] == 1
    new.close()


def test_an_ack_waits_for_asynchronous_work(served):
    server, port, delivery, app = served
    ws = connect(f"ws://127.0.0.1:{port}/track/1", subprotocols=V1)
    hello(ws)
    frames(ws, 2)
    ws.send('{"id": "s1", "action": "slow"}')
    with pytest.raises(TimeoutError):
        ws.recv(timeout=0.3)
    ws.send('{"id": "s1", "action": "slow"}')   # retried while pending: not taken twice
    with pytest.raises(TimeoutError):
        ws.recv(timeout=0.3)
    conn, ident = app.later[0]
    call_in_loop(server, delivery.ack, conn, ident)
    assert frames(ws, 1) == [{"ack": "s1"}]
    assert len(app.later) == 1
    ws.close()


def test_a_failing_handler_is_not_acked_and_the_retry_is_handled_afresh(served):
    server, port, delivery, app = served
    ws = connect(f"ws://127.0.0.1:{port}/track/1", subprotocols=V1)
    hello(ws)
    session = frames(ws, 2)[0]["session"]
    ws.send('{"id": "x1", "action": "explode"}')
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=5)
    assert ws.close_code == 1011
    again = connect(f"ws://127.0.0.1:{port}/track/1", subprotocols=V1)
    hello(again, session)
    frames(again, 2)
    again.send('{"id": "x1", "action": "explode"}')
    with pytest.raises(ConnectionClosed):
        again.recv(timeout=5)
    assert len(app.messages) == 2   # not deduped: it was never taken


@pytest.mark.parametrize("first, reason", [
    ('{"id": 5}', "id is a string"), ("not json", "not JSON"), ('[1, 2]', "JSON object"),
    ('{"op": "launch"}', "unknown op"), ('{"id": "m1"}', "first frame is a hello"),
])
def test_a_bad_frame_closes_with_1008_and_says_why(served, first, reason):
    server, port, delivery, app = served
    ws = connect(f"ws://127.0.0.1:{port}/track/1", subprotocols=V1)
    ws.send(first)
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=5)
    assert ws.close_code == 1008 and reason in ws.close_reason


def test_no_hello_in_time_closes_with_1008(served):
    server, port, delivery, app = served
    ws = connect(f"ws://127.0.0.1:{port}/track/1", subprotocols=V1)
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=5)
    assert ws.close_code == 1008 and "no hello" in ws.close_reason
    assert app.opened == []


def test_publications_have_offsets_and_a_rejoin_gets_exactly_what_it_missed(served):
    server, port, delivery, app = served
    ws = connect(f"ws://127.0.0.1:{port}/track/42", subprotocols=V1)
    hello(ws)
    epoch = frames(ws, 2)[1]["epoch"]
    for i in range(3):
        call_in_loop(server, delivery.publish, "order:42", {"seq": i})
    got = frames(ws, 3)
    assert [(f["offset"], f["data"]) for f in got] == [(1, {"seq": 0}), (2, {"seq": 1}),
                                                        (3, {"seq": 2})]
    ws.close()
    for i in range(3, 7):   # published while it is away
        call_in_loop(server, delivery.publish, "order:42", {"seq": i})
    back = connect(f"ws://127.0.0.1:{port}/track/42", subprotocols=V1)
    hello(back, rooms={"order:42": {"epoch": epoch, "offset": 3}})
    welcome, *replayed, recovered = frames(back, 6)
    assert [f["offset"] for f in replayed] == [4, 5, 6, 7]
    assert [f["data"]["seq"] for f in replayed] == [3, 4, 5, 6]
    assert recovered == {"op": "recovered", "room": "order:42", "epoch": epoch, "offset": 7,
                         "replayed": 4}
    call_in_loop(server, delivery.publish, "order:42", {"seq": 7})
    assert frames(back, 1)[0]["offset"] == 8   # and live from there, nothing in between
    back.close()


def test_never_a_partial_replay(served):
    server, port, delivery, app = served
    for i in range(60):   # history_size is 50: offsets 1-10 are gone
        call_in_loop(server, delivery.publish, "order:9", i)
    epoch = delivery.histories.get("order:9").epoch
    ws = connect(f"ws://127.0.0.1:{port}/track/9", subprotocols=V1)
    hello(ws, rooms={"order:9": {"epoch": epoch, "offset": 5}})
    assert frames(ws, 2)[1] == {"op": "discontinuity", "room": "order:9", "epoch": epoch,
                                "offset": 60, "reason": "trimmed"}
    ws.close()
    ws = connect(f"ws://127.0.0.1:{port}/track/9", subprotocols=V1)
    hello(ws, rooms={"order:9": {"epoch": "another", "offset": 59}})
    assert frames(ws, 2)[1]["reason"] == "epoch"
    ws.close()


def test_plain_clients_on_the_same_route_are_unaffected(served):
    server, port, delivery, app = served
    plain = connect(f"ws://127.0.0.1:{port}/track/5")
    v1 = connect(f"ws://127.0.0.1:{port}/track/5", subprotocols=V1)
    hello(v1)
    frames(v1, 2)
    assert plain.subprotocol is None
    call_in_loop(server, delivery.publish, "order:5", {"lat": 1})
    call_in_loop(server, delivery.publish, "order:5", "plain text")
    assert plain.recv(timeout=5) == '{"lat":1}'
    assert plain.recv(timeout=5) == "plain text"
    assert [f["data"] for f in frames(v1, 2)] == [{"lat": 1}, "plain text"]
    plain.send("hi")
    assert wait_for(lambda: "hi" in app.messages)
    plain.close()
    v1.close()


def test_room_history_bounds():
    history = RoomHistory(max_count=3, max_age=10.0, epoch="e")
    for i in range(5):
        history.append(str(i), now=100.0 + i)
    assert [e[0] for e in history.entries] == [3, 4, 5]
    assert history.since("e", 2, now=105.0) == [(3, 102.0, "2"), (4, 103.0, "3"), (5, 104.0, "4")]
    assert history.since("e", 1, now=105.0) == "trimmed"
    assert history.since("e", 5, now=105.0) == []
    assert history.since("e", 6, now=105.0) == "epoch"
    assert history.since("e", 3, now=113.5) == "trimmed"   # offsets 4 aged out by then
