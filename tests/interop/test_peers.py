"""The peer servers of benchmarks/peers: each runs, echoes and broadcasts like ``wsframe serve``."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PEERS = ROOT / "benchmarks" / "peers"

connect = pytest.importorskip("websockets.sync.client").connect

# peer script -> the library it needs (None: stdlib only)
SCRIPTS = {
    "websockets_server": "websockets",
    "aiohttp_server": "aiohttp",
    "picows_server": "picows",
    "bare_selectors": None,
}


def start(script: str) -> tuple[subprocess.Popen, int]:
    """Run a peer on a free port; returns the process and the port it printed."""
    proc = subprocess.Popen([sys.executable, str(PEERS / f"{script}.py"), "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    box = {}
    reader = threading.Thread(target=lambda: box.update(line=proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=20)
    line = box.get("line", "")
    if not line.startswith("listening on "):
        proc.kill()
        _, err = proc.communicate(timeout=5)
        pytest.fail(f"{script} did not start: {line!r} {err[-2000:]}")
    return proc, int(line.rsplit(":", 1)[1])


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture(params=list(SCRIPTS), ids=list(SCRIPTS))
def peer(request):
    needs = SCRIPTS[request.param]
    if needs is not None and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{needs} is not installed")
    proc, port = start(request.param)
    try:
        yield request.param, port
    finally:
        stop(proc)


def url(port: int, path: str = "/") -> str:
    return f"ws://127.0.0.1:{port}{path}"


def test_peer(peer):
    name, port = peer
    if name == "bare_selectors":   # it holds connections and answers nothing more
        with connect(url(port), compression=None, close_timeout=0.5) as ws:
            ws.send("ignored")
            assert ws.protocol.state.name == "OPEN"
        return
    with connect(url(port, "/anything"), compression=None, max_size=None) as ws:
        ws.send("héllo")
        assert ws.recv(timeout=5) == "héllo"
        ws.send(b"\x00\xffbinary")
        assert ws.recv(timeout=5) == b"\x00\xffbinary"
        big = b"x" * (2 << 20)
        ws.send(big)
        assert ws.recv(timeout=10) == big
        ws.send(["frag", "mented"])               # one text message in two frames
        assert ws.recv(timeout=5) == "fragmented"
    # A member hears its own messages: once it has, it is in the room.
    with connect(url(port, "/room/r1"), compression=None) as a:
        a.send("a joined")
        assert a.recv(timeout=5) == "a joined"
        with connect(url(port, "/room/r1"), compression=None) as b, \
                connect(url(port, "/room/r2"), compression=None) as other:
            b.send("b joined")
            assert b.recv(timeout=5) == "b joined" and a.recv(timeout=5) == "b joined"
            a.send("ping")
            assert a.recv(timeout=5) == "ping" and b.recv(timeout=5) == "ping"
            b.send(b"bin")
            assert a.recv(timeout=5) == b"bin" and b.recv(timeout=5) == b"bin"
            with pytest.raises(TimeoutError):
                other.recv(timeout=0.2)           # another room hears nothing


def test_load_generator_against_peer(peer):
    """The C load generator interoperates with every peer (and closes cleanly)."""
    loadgen = pytest.importorskip("wsframe._compiled.loadgen")
    name, port = peer
    mode = "hold" if name == "bare_selectors" else "echo"
    result = loadgen.run_load(port=port, mode=mode, connections=10, inflight=2, duration=0.3,
                              warmup=0.0, close_timeout=0.5)
    assert result["connected"] == result["survivors"] == 10
    assert result["failed"] == {}
    if mode == "echo":
        assert result["messages_received"] > 0
        assert result["latency_us"]["count"] == result["messages_received"]
