"""Buggy handlers, timers and broadcasts cost at most their own connection, never the loop."""
import logging

import pytest

from wsframe.client.blocking import connect
from wsframe.errors import ConnectionClosed
from wsframe.server.apps import install_builtin_app
from wsframe.server.connection import Endpoint
from tests.helpers import call_in_loop, running_server, wait_for


class BadBroadcaster(Endpoint):
    """On any message: a good broadcast, then (same turn, so batched) a bad one."""

    def __init__(self):
        self.errors = []

    def on_open(self, conn, request, params):
        conn.join("r")

    def on_message(self, conn, message):
        room = conn.server.rooms.get("r")
        room.broadcast("first")
        try:
            room.broadcast(12345)
        except TypeError as exc:
            self.errors.append(exc)
        buffer = bytearray(b"before")
        room.broadcast(buffer)
        buffer[:] = b"AFTER!"      # changed after the call: must not change what is sent


def test_a_bad_broadcast_raises_to_its_caller_and_the_server_keeps_serving():
    endpoint = BadBroadcaster()

    def configure(server):
        install_builtin_app(server)
        server.route("/bad", endpoint)
    with running_server(configure) as (server, port):
        with connect(f"ws://127.0.0.1:{port}/bad") as ws:
            ws.send("go")
            assert ws.recv(timeout=5) == "first"
            assert ws.recv(timeout=5) == b"before"
        assert len(endpoint.errors) == 1 and "int" in str(endpoint.errors[0])
        with connect(f"ws://127.0.0.1:{port}/echo") as ws:
            ws.send("alive")
            assert ws.recv(timeout=5) == "alive"


def test_failing_timers_ticks_and_turn_end_callbacks_do_not_end_the_loop(caplog):
    caplog.set_level(logging.ERROR, logger="wsframe.loop")
    with running_server(install_builtin_app) as (server, port):
        def boom():
            raise RuntimeError("boom")
        call_in_loop(server, lambda: server.loop.call_later(0, boom))
        call_in_loop(server, lambda: server.loop.at_turn_end(boom))
        call_in_loop(server, lambda: server.loop.on_tick(boom))
        assert wait_for(lambda: sum("boom" in r.getMessage() or (r.exc_info and "boom" in str(
            r.exc_info[1])) for r in caplog.records) >= 3)
        with connect(f"ws://127.0.0.1:{port}/echo") as ws:
            ws.send("alive")
            assert ws.recv(timeout=5) == "alive"


def test_a_handler_that_raises_costs_its_connection_1011():
    class Raises(Endpoint):
        def on_message(self, conn, message):
            raise ValueError("bug")

    with running_server(lambda s: s.route("/", Raises())) as (server, port):
        with connect(f"ws://127.0.0.1:{port}/") as ws:
            ws.send("x")
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)
            assert ws.close_code == 1011
        assert server.stats.handler_errors == 1
