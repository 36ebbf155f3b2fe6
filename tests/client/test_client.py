"""Clients: the blocking one, TLS with verification, and the reconnecting loop client."""
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from wsframe.server.apps import install_builtin_app
from wsframe.client.blocking import connect, parse_url
from wsframe.errors import ConnectionClosed, InvalidResponse
from wsframe.loop.eventloop import Loop
from wsframe.client.reconnecting import ReconnectingClient
from wsframe.loop.connect import Backoff
from wsframe.server.server import Endpoint

from tests.helpers import running_server, wait_for


def test_parse_url():
    assert parse_url("ws://example.com/chat?x=1") == (False, "example.com", 80, "/chat?x=1")
    assert parse_url("wss://example.com:8443").target == "/"
    assert parse_url("wss://example.com:443/").host_header == "example.com"
    for bad in ("http://x/", "ws://", "ws://h/#frag"):
        with pytest.raises(ValueError):
            parse_url(bad)


def test_blocking_client_send_recv_iterate_close():
    class CountDown(Endpoint):
        def on_message(self, conn, message):
            for i in range(int(message), 0, -1):
                conn.send(str(i))
            conn.close(1000, "done")
    with running_server(lambda s: s.route("/count", CountDown())) as (server, port):
        with connect(f"ws://127.0.0.1:{port}/count") as ws:
            ws.send("3")
            assert list(ws) == ["3", "2", "1"]
            assert ws.close_code == 1000 and ws.close_reason == "done"
            with pytest.raises(ConnectionClosed) as info:
                ws.recv()
            assert info.value.code == 1000


def test_blocking_client_errors():
    with running_server(install_builtin_app) as (server, port):
        with connect(f"ws://127.0.0.1:{port}/x") as ws:
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.2)
    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        connect(f"ws://127.0.0.1:{free}/")

    def http_only(server):
        server.route("/ws", Endpoint())
    with running_server(http_only) as (server, port):
        with pytest.raises(InvalidResponse) as info:
            connect(f"ws://127.0.0.1:{port}/nope")
        assert info.value.status == 404


@pytest.fixture(scope="module")
def tls():
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


@pytest.fixture
def tls_server(tls):
    server_ctx, _ = tls
    from wsframe.server.server import Server
    server = Server(tick_interval=0.05, shutdown_timeout=1.0)
    install_builtin_app(server)
    _, port = server.listen("127.0.0.1", 0, ssl=server_ctx)
    thread = threading.Thread(target=server.serve_forever, kwargs={"signals": False}, daemon=True)
    thread.start()
    yield server, port
    server.loop.call_soon_threadsafe(server.shutdown)
    thread.join(5)


def test_wss_echo_with_verification(tls, tls_server):
    _, client_ctx = tls
    server, port = tls_server
    with connect(f"wss://localhost:{port}/x", ssl=client_ctx) as ws:
        ws.send("secret")
        assert ws.recv(timeout=5) == "secret"
        ws.send(b"\x01" * 300_000)
        assert ws.recv(timeout=5) == b"\x01" * 300_000
    with pytest.raises(ssl.SSLCertVerificationError):  # verification is on by default
        connect(f"wss://localhost:{port}/x")


def test_one_server_plain_and_tls_listeners(tls):
    """TLS is chosen per listening socket: ws:// and wss:// side by side in one server."""
    from wsframe.server.server import Server
    server_ctx, client_ctx = tls
    server = Server(tick_interval=0.05, shutdown_timeout=1.0)
    install_builtin_app(server)
    _, plain_port = server.listen("127.0.0.1", 0)
    _, tls_port = server.listen("127.0.0.1", 0, ssl=server_ctx)
    thread = threading.Thread(target=server.serve_forever, kwargs={"signals": False}, daemon=True)
    thread.start()
    try:
        with connect(f"ws://127.0.0.1:{plain_port}/room/both") as plain, \
                connect(f"wss://localhost:{tls_port}/room/both", ssl=client_ctx) as secure:
            plain.send("from ws")
            assert plain.recv(timeout=5) == "from ws" and secure.recv(timeout=5) == "from ws"
            secure.send("from wss")
            assert plain.recv(timeout=5) == "from wss" and secure.recv(timeout=5) == "from wss"
        with pytest.raises(ssl.SSLError):   # the plain port does not speak TLS
            connect(f"wss://localhost:{plain_port}/", ssl=client_ctx, timeout=3)
    finally:
        server.loop.call_soon_threadsafe(server.shutdown)
        thread.join(5)


def test_wss_with_a_peer_library(tls, tls_server):
    from websockets.sync.client import connect as ws_connect
    _, client_ctx = tls
    server, port = tls_server
    with ws_connect(f"wss://localhost:{port}/room/t", ssl=client_ctx) as ws:
        ws.send("over tls")
        assert ws.recv(timeout=5) == "over tls"


def test_reconnecting_client_over_wss(tls, tls_server):
    _, client_ctx = tls
    server, port = tls_server
    loop = Loop(tick_interval=0.05)
    got = []
    client = ReconnectingClient(f"wss://localhost:{port}/x", loop=loop, ssl=client_ctx,
                    on_open=lambda c: c.send("ping?"),
                    on_message=lambda c, m: (got.append(m), c.close()))
    client.start()
    deadline = time.monotonic() + 10
    loop.run(until=lambda: (got and client._conn is None) or time.monotonic() > deadline)
    assert got == ["ping?"]
    loop.close()


def test_trace_over_wss_shows_both_directions(tls):
    """Over TLS the tracers see the plaintext, both ways, on both ends."""
    import io
    from wsframe.server.server import Server
    from wsframe.tools.trace import trace_client, trace_server
    server_ctx, client_ctx = tls
    server_out, client_out = io.StringIO(), io.StringIO()
    server = Server(tick_interval=0.05, shutdown_timeout=1.0)
    install_builtin_app(server)
    trace_server(server, out=server_out)
    _, port = server.listen("127.0.0.1", 0, ssl=server_ctx)
    thread = threading.Thread(target=server.serve_forever, kwargs={"signals": False}, daemon=True)
    thread.start()
    try:
        loop = Loop(tick_interval=0.05)
        got = []
        client = ReconnectingClient(f"wss://localhost:{port}/x", loop=loop, ssl=client_ctx, reconnect=None,
                        on_open=lambda c: c.send("traced"), ping_interval=None,
                        on_message=lambda c, m: (got.append(m), c.close()))
        trace_client(client, out=client_out)
        client.start()
        deadline = time.monotonic() + 10
        loop.run(until=lambda: (got and client._conn is None) or time.monotonic() > deadline)
        loop.close()
        assert got == ["traced"]
        deadline = time.monotonic() + 5
        while "connection closed" not in server_out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        server.loop.call_soon_threadsafe(server.shutdown)
        thread.join(5)
    for text, mine, theirs in ((server_out.getvalue(), "->", "<-"),
                               (client_out.getvalue(), "<-", "->")):
        server_sent = [line for line in text.splitlines() if f" {mine}] " in line]
        client_sent = [line for line in text.splitlines() if f" {theirs}] " in line]
        assert any("GET /x HTTP/1.1" in line for line in client_sent)
        assert any("HTTP/1.1 101 Switching Protocols" in line for line in server_sent)
        assert any('text: "traced"' in line for line in client_sent)
        assert any('text: "traced"' in line for line in server_sent)
        assert any("close FIN=1" in line for line in server_sent)
        assert any("close FIN=1" in line for line in client_sent)
        assert "Sec-WebSocket-Accept matches the key" in text
        assert "connection closed: 1000" in text and "PROBLEM" not in text


def test_blocking_client_that_only_sends_answers_pings():
    """websockets' server pings every 0.1 s and drops a peer whose Pong is 0.3 s late:
    a script that sends for 1.5 s without ever calling recv() must stay connected."""
    sync_server = pytest.importorskip("websockets.sync.server")
    received = []

    def handler(ws):
        for message in ws:
            received.append(message)

    with sync_server.serve(handler, "127.0.0.1", 0, ping_interval=0.1,
                           ping_timeout=0.3) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        port = server.socket.getsockname()[1]
        ws = connect(f"ws://127.0.0.1:{port}/", max_queue=4)
        for n in range(30):
            ws.send(f"position {n}")
            time.sleep(0.05)
        ws.close()
        assert ws.close_code == 1000
        server.shutdown()
        thread.join(5)
    assert received == [f"position {n}" for n in range(30)]


def test_send_reads_ahead_at_most_max_queue_messages():
    with running_server(install_builtin_app) as (server, port):
        ws = connect(f"ws://127.0.0.1:{port}/echo", max_queue=3)
        for n in range(10):
            ws.send(str(n))
        time.sleep(0.3)     # the echoes are all in the socket by now
        ws.send("last")     # reads ahead: three messages wait at least
        waiting = len(ws._messages)
        assert waiting >= 3
        time.sleep(0.3)     # the echo of "last" is in the socket by now
        ws.send("more")     # three or more wait: send reads nothing
        assert len(ws._messages) == waiting
        assert ([ws.recv(timeout=5) for _ in range(12)]
                == [str(n) for n in range(10)] + ["last", "more"])
        ws.close()


def test_reconnecting_client_resolves_names_off_the_loop(monkeypatch):
    """A slow DNS answer never stalls the loop; a failed lookup is retried, then given up."""
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def slow_getaddrinfo(host, *args, **kwargs):
        if host != "slow.example":
            return real_getaddrinfo(host, *args, **kwargs)
        lookups.append(host)
        time.sleep(0.5)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    loop = Loop(tick_interval=0.05)
    gave_up, ticks = [], []
    client = ReconnectingClient("ws://slow.example:9/", loop=loop,
                    reconnect=Backoff(initial=0.01, max_attempts=1),
                    on_give_up=lambda c, why: gave_up.append(why))
    started = time.monotonic()
    client.start()
    loop.call_later(0.1, lambda: ticks.append(time.monotonic() - started))
    loop.run(until=lambda: gave_up or time.monotonic() - started > 10)
    loop.close()
    assert ticks and ticks[0] < 0.4        # the loop ran while the name was resolving
    assert lookups == ["slow.example", "slow.example"]
    assert gave_up and "resolve slow.example" in gave_up[0]


def test_backoff_full_jitter_bounds():
    backoff = Backoff(initial=0.5, factor=2, max_delay=4)
    ceilings = [backoff.delay(n, rng=lambda lo, hi: hi) for n in range(6)]
    assert ceilings == [0.5, 1, 2, 4, 4, 4]
    assert all(backoff.delay(n, rng=lambda lo, hi: lo) == 0 for n in range(6))
    assert 0 <= backoff.delay(3) <= 4


def start_server_process(port):
    proc = subprocess.Popen([sys.executable, "-m", "wsframe", "--log-level", "WARNING", "serve",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def ready():
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0
    assert wait_for(ready, timeout=10)
    return proc


def test_reconnects_with_backoff_when_the_server_is_killed_and_restarted():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = start_server_process(port)
    loop = Loop(tick_interval=0.05)
    events = []
    client = ReconnectingClient(f"ws://127.0.0.1:{port}/room/r", loop=loop,
                    reconnect=Backoff(initial=0.05, factor=2, max_delay=0.4, reset_after=0.2),
                    on_open=lambda c: (events.append(("open", c.connections)),
                                       c.send(f"hello {c.connections}")),
                    on_message=lambda c, m: events.append(("message", m)),
                    on_close=lambda c, code, reason: events.append(("close", code)))
    client.start()
    try:
        def run_until(predicate, timeout=10):
            deadline = time.monotonic() + timeout
            loop.run(until=lambda: predicate() or time.monotonic() > deadline)
            assert predicate(), events
        run_until(lambda: ("message", "hello 1") in events)
        server.send_signal(signal.SIGKILL)  # no close frame: an abnormal end
        server.wait()
        run_until(lambda: ("close", 1006) in events)
        run_until(lambda: client.attempt >= 3)  # retrying against a closed port
        assert client.last_error and "refused" in client.last_error.lower()
        server = start_server_process(port)
        run_until(lambda: ("message", "hello 2") in events)
        assert client.connections == 2
        client.close()
        run_until(lambda: client._conn is None)
    finally:
        server.terminate()
        server.wait(5)
        loop.close()
