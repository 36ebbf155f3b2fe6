"""The tracking demo in a real headless Chromium: nothing lost across a network cut, a
silent network and a page reload; across a kill -9 restart an explicit discontinuity
with the missed positions counted, or, with the Redis history, nothing lost (issue 13).

Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it) is
driven over the DevTools protocol: the test reads its port from the
``DevToolsActivePort`` file and speaks CDP's JSON over a WebSocket with wsframe's
own blocking client. ``wsframe serve --demo`` runs as a process behind a small
TCP proxy in this file, so the test can cut the network. The page's counters
(``window.tracking``) are read with ``Runtime.evaluate``.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from wsframe.client.blocking import connect
from wsframe.sansio.protocol import Limits
from tests.services import RedisServer

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)")


class Proxy:
    """A TCP forwarder on a free loopback port whose connections the test can cut."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.sockets = set()
        self.stalled = set()    # connections whose bytes are dropped, as on a dead network
        self.down_until = 0.0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self.down_until:   # the network is down: refuse
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:                           # the server is down
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if source not in self.stalled:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                self._kill(s)

    def _kill(self, s: socket.socket) -> None:
        with self.lock:
            self.sockets.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def cut(self, down_for: float) -> None:
        """Drop every connection now and refuse new ones for ``down_for`` seconds."""
        self.down_until = time.monotonic() + down_for
        with self.lock:
            victims = list(self.sockets)
        for s in victims:
            self._kill(s)

    def stall(self) -> None:
        """Keep every connection open but forward nothing more on it (new ones work):
        only the client's own liveness check can tell."""
        with self.lock:
            self.stalled.update(self.sockets)

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        self.cut(0)


class DemoServer:
    """``wsframe serve --demo`` as a process on a free port."""

    def __init__(self, tmp_path, name: str, *args: str) -> None:
        self.log = tmp_path / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wsframe", "serve", "--demo", "--port", "0", *args],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w"), start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            match = re.search(r"serving ws://127\.0\.0\.1:(\d+)", self.log.read_text())
            if match:
                self.port = int(match.group(1))
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the demo server did not start: {self.log.read_text()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """kill -9: no goodbye, its in-memory history is gone."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()


class Chromium:
    """Headless Chromium with a DevTools port, and one page to drive over CDP."""

    def __init__(self, tmp_path) -> None:
        profile = tmp_path / "profile"
        flags = ["--headless", "--remote-debugging-port=0", f"--user-data-dir={profile}",
                 "--no-first-run", "--no-default-browser-check", "--disable-gpu",
                 "--disable-extensions", "--disable-background-networking",
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                 "--disable-backgrounding-occluded-windows", "about:blank"]
        if os.geteuid() == 0:
            flags.insert(0, "--no-sandbox")   # Chromium refuses to sandbox as root
        self.stderr = tmp_path / "chromium.log"
        self.proc = subprocess.Popen([CHROMIUM, *flags], stdout=subprocess.DEVNULL,
                                     stderr=open(self.stderr, "w"), start_new_session=True)
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and active.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError(f"chromium did not start: {self.stderr.read_text()[-2000:]}")
            time.sleep(0.05)
        port = int(active.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], compression=None,   # screenshots are big
                          limits=Limits(max_message_size=64 << 20, max_frame_size=64 << 20))
        self.ids = 0

    def call(self, method: str, **params):
        """One CDP command; its result (events in between are not needed here)."""
        self.ids += 1
        self.ws.send(json.dumps({"id": self.ids, "method": method, "params": params}))
        deadline = time.monotonic() + 15
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == self.ids:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def tracking(self) -> dict:
        return self.evaluate("window.tracking ? JSON.parse(JSON.stringify(window.tracking)) : null") or {}

    def wait(self, what: str, predicate, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            state = self.tracking()
            if state and predicate(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the page: {state}")
            time.sleep(0.2)

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)   # its own session: the renderers too
        self.proc.wait(timeout=10)


def assert_in_order(state: dict) -> None:
    """Offsets consecutive within each epoch, seq increasing; the seq numbers skipped
    within an epoch (the driver's server was down, nothing published) are the page's
    "not published", those skipped where the epoch changed its "missed"."""
    history = state["history"]
    skipped = {"same epoch": 0, "new epoch": 0}
    for (e1, o1, s1), (e2, o2, s2) in zip(history, history[1:]):
        if e1 == e2:
            assert o2 == o1 + 1, f"offset {o1} then {o2} in epoch {e1}"
        assert s2 > s1, f"seq {s1} then {s2}"
        skipped["same epoch" if e1 == e2 else "new epoch"] += s2 - s1 - 1
    assert skipped == {"same epoch": state["unpublished"], "new epoch": state["missed"]}, state


@pytest.fixture
def demo(tmp_path):
    """(browser, proxy, servers, start): ``start(*args)`` starts a demo server (the
    proxy forwards to the latest one)."""
    servers, proxy, browser = [], None, None

    def start(*args):
        servers.append(DemoServer(tmp_path, f"server-{len(servers) + 1}", *args))
        proxy.upstream_port = servers[-1].port
        return servers[-1]
    try:
        proxy = Proxy(0)
        browser = Chromium(tmp_path)
        yield browser, proxy, servers, start
    finally:
        if browser is not None:
            browser.close()
        if proxy is not None:
            proxy.close()
        for server in servers:
            server.stop()


def test_the_demo_page_loses_nothing_across_a_cut_and_a_reload_and_says_so_across_a_restart(demo):
    """(a) a cut, (a') a silent network, (b) a reload: every position, in order, none
    missed; (c) a kill -9 restart: a discontinuity, the missed positions counted."""
    browser, proxy, servers, start = demo
    start()
    # backoff capped at 2 s: after the cut's failed attempts, the resume after the silent
    # network must not wait for a 30 s backoff (tests/tools/test_backoff_js.py covers it)
    browser.call("Page.navigate",
                 url=f"http://127.0.0.1:{proxy.port}/?order=42&keepalive=1000&backoff_max=2000")
    first = browser.wait("the first positions", lambda s: s["connected"] and s["received"] >= 1)
    node = first["node"]
    assert first["missed"] == 0 and first["unpublished"] == 0 and first["errors"] == []

    # (a) the network drops mid-route for 2.5 s; a message is sent while it is down.
    proxy.cut(down_for=2.5)
    browser.evaluate('client.send({id: "msg_123", action: "contact_driver"})')
    cut = browser.wait("the resume after the cut",
                       lambda s: s["recovered"] >= 1 and s["received"] >= first["received"] + 3)
    assert cut["replayed"] >= 1, cut          # positions published while it was down came back
    assert cut["missed"] == 0 and cut["discontinuities"] == 0 and cut["outOfOrder"] == 0, cut
    assert cut["reconnects"] >= 1 and cut["node"] == node
    assert cut["session"] == first["session"] and cut["resumed"] is True
    browser.wait("the ack of msg_123", lambda s: s["contacts"].get("msg_123", "").startswith("acked"))
    assert_in_order(cut)

    # (a') the network goes silent without closing anything: the page's keepalive
    # (1 s here, ?keepalive=1000) finds the connection dead after 2 s and resumes.
    proxy.stall()
    stalled = browser.wait("the resume after a silent network",
                           lambda s: s["recovered"] >= cut["recovered"] + 1
                           and s["received"] >= cut["received"] + 2, timeout=25)
    assert 4003 in stalled["closes"], stalled   # "nothing received for 2 x keepalive"
    # the server still held the silent connection: the new hello resumed the session anyway
    assert stalled["session"] == first["session"] and stalled["resumed"] is True, stalled
    assert stalled["replayed"] > cut["replayed"], stalled
    assert stalled["missed"] == 0 and stalled["outOfOrder"] == 0, stalled
    cut = stalled

    # (b) a page reload resumes from sessionStorage.
    browser.call("Page.reload")
    reloaded = browser.wait("the resume after the reload",
                            lambda s: s["loads"] == 2 and s["recovered"] >= cut["recovered"] + 1
                            and s["received"] >= cut["received"] + 2)
    assert reloaded["missed"] == 0 and reloaded["discontinuities"] == 0, reloaded
    assert reloaded["session"] == first["session"] and reloaded["resumed"] is True
    assert reloaded["outOfOrder"] == 0 and reloaded["errors"] == [], reloaded
    assert_in_order(reloaded)

    # (c) kill -9 and restart the server: its in-memory history is gone, and the page
    # says so (a discontinuity, the missed positions counted) and carries on.
    servers[0].kill()
    time.sleep(2.5)
    start()
    restarted = browser.wait("the discontinuity after the restart",
                             lambda s: s["discontinuities"] == 1
                             and s["received"] >= reloaded["received"] + 2)
    assert restarted["node"] != node            # a new process delivers now
    assert restarted["missed"] >= 2, restarted  # 2.5 s down at one position a second
    assert restarted["outOfOrder"] == 0 and restarted["errors"] == [], restarted
    assert_in_order(restarted)
    history = restarted["history"]
    jumps = [b[2] - a[2] - 1 for a, b in zip(history, history[1:]) if a[0] != b[0]]
    assert jumps == [restarted["missed"]]       # counted exactly where the epoch changed


def test_with_the_redis_history_a_kill_9_restart_loses_nothing(demo):
    """``wsframe serve --demo --redis URL``: the room's epoch, offsets and history are in
    Redis, so the restarted server continues the same epoch and the page recovers
    exactly what it missed: no discontinuity, "missed: 0". (The driver, simulated in
    the server process, publishes nothing while it is down: "not published".)"""
    browser, proxy, servers, start = demo
    redis = RedisServer()
    try:
        start("--redis", redis.url)
        browser.call("Page.navigate", url=f"http://127.0.0.1:{proxy.port}/?order=7")
        first = browser.wait("the first positions", lambda s: s["connected"] and s["received"] >= 2)
        servers[0].kill()
        time.sleep(2.5)
        start("--redis", redis.url)
        back = browser.wait("the resume after the restart",
                            lambda s: s["recovered"] >= 1 and s["node"] != first["node"]
                            and s["received"] >= first["received"] + 2)
        assert back["discontinuities"] == 0 and back["missed"] == 0, back
        assert back["epoch"] == first["epoch"], back          # the same history, from Redis
        assert back["unpublished"] >= 2, back                 # 2.5 s without a driver
        assert back["outOfOrder"] == 0 and back["errors"] == [], back
        assert_in_order(back)
    finally:
        redis.close()
