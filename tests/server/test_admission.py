"""Origins, connection caps, and upgrade decisions that take time."""
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from wsframe.client.blocking import connect
from wsframe.errors import InvalidRequest, InvalidResponse
from wsframe.server.apps import install_builtin_app
from wsframe.server.connection import Endpoint
from tests.helpers import running_server, wait_for


def refused(url: str, **kwargs) -> InvalidResponse:
    with pytest.raises(InvalidResponse) as info:
        connect(url, **kwargs)
    return info.value


def test_origin_allow_list():
    with running_server(install_builtin_app,
                        origins=("https://track.example",)) as (server, port):
        url = f"ws://127.0.0.1:{port}/echo"
        with connect(url, origin="https://TRACK.example") as ws:  # scheme/host: any case
            ws.send("ok")
            assert ws.recv(timeout=5) == "ok"
        assert refused(url, origin="https://evil.example").status == 403
        assert refused(url).status == 403          # no Origin at all, while a list is set
        assert server.stats.bad_origin == 2


def test_server_wide_cap_answers_503_with_retry_after():
    with running_server(install_builtin_app, max_connections=2) as (server, port):
        url = f"ws://127.0.0.1:{port}/echo"
        first, second = connect(url), connect(url)
        error = refused(url)
        assert error.status == 503 and server.stats.over_capacity == 1
        second.close()
        assert wait_for(lambda: server.stats.open == 1)
        with connect(url) as third:                  # room again once one left
            third.send("in")
            assert third.recv(timeout=5) == "in"
        first.close()


def test_per_address_cap():
    with running_server(install_builtin_app, max_connections_per_address=1,
                        ) as (server, port):
        url = f"ws://127.0.0.1:{port}/echo"
        one = connect(url, source_address=("127.0.0.1", 0))
        assert refused(url, source_address=("127.0.0.1", 0)).status == 503
        other = connect(url, source_address=("127.0.0.2", 0))   # another client address
        one.close()
        assert wait_for(lambda: server.stats.open == 1)
        again = connect(url, source_address=("127.0.0.1", 0))
        again.close()
        other.close()


class SlowAuth(Endpoint):
    """on_upgrade looks the token up elsewhere (a thread standing for a database)."""

    def __init__(self, delay: float):
        self.pool = ThreadPoolExecutor(2)
        self.delay = delay

    def on_upgrade(self, request, params):
        def lookup():
            time.sleep(self.delay)
            if "token=good" not in request.query:
                raise InvalidRequest(401, "bad token")
        return self.pool.submit(lookup)

    def on_message(self, conn, message):
        conn.send(f"authorized: {message}")


def test_a_slow_deferred_auth_does_not_delay_other_connections():
    auth = SlowAuth(0.5)

    def configure(server):
        install_builtin_app(server)
        server.route("/secure", auth)
    with running_server(configure) as (server, port):
        order = []

        def slow_client():
            with connect(f"ws://127.0.0.1:{port}/secure?token=good") as ws:
                ws.send("hi")                          # pipelined right after the 101
                order.append(ws.recv(timeout=5))
        thread = threading.Thread(target=slow_client)
        thread.start()
        assert wait_for(lambda: server.stats.deferred == 1)
        with connect(f"ws://127.0.0.1:{port}/echo") as ws:  # served while the auth waits
            for i in range(20):
                ws.send(str(i))
                assert ws.recv(timeout=5) == str(i)
            order.append("echoes done")
        thread.join(10)
        assert order == ["echoes done", "authorized: hi"]
        assert refused(f"ws://127.0.0.1:{port}/secure?token=bad").status == 401
    auth.pool.shutdown()


def test_a_decision_that_never_comes_is_answered_503():
    class Never(Endpoint):
        def on_upgrade(self, request, params):
            return Future()                            # nobody will ever complete it
    with running_server(lambda s: s.route("/", Never()), upgrade_timeout=0.2) as (server, port):
        error = refused(f"ws://127.0.0.1:{port}/")
        assert error.status == 503 and server.stats.deferred_timeouts == 1


def test_wsframe_serve_origin_flag():
    import subprocess, sys, socket as _socket
    with _socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "wsframe", "--log-level", "WARNING", "serve",
                             "--port", str(port), "--origin", "https://a.example",
                             "--origin", "https://b.example"])
    try:
        url = f"ws://127.0.0.1:{port}/echo"
        assert wait_for(lambda: _can_connect(port), timeout=10)
        for origin in ("https://a.example", "https://b.example"):
            connect(url, origin=origin).close()
        assert refused(url, origin="https://c.example").status == 403
    finally:
        proc.terminate()
        proc.wait(10)


def _can_connect(port: int) -> bool:
    import socket as _socket
    try:
        _socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
