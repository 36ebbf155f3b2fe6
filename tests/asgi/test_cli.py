"""The documented command line: ``uvicorn app:app --ws wsframe.asgi:WebSocketProtocol``."""
import pathlib
import socket
import subprocess
import sys
import time

from wsframe.client.blocking import connect

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_uvicorn_flag_serves_websockets_on_wsframe():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.asgi.echo_app:app", "--app-dir", str(ROOT),
         "--host", "127.0.0.1", "--port", str(port), "--ws", "wsframe.asgi:WebSocketProtocol",
         "--lifespan", "off", "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        with connect(f"ws://127.0.0.1:{port}/") as ws:
            ws.send("through the flag")
            assert ws.recv(timeout=10) == "through the flag"
            ws.send(b"\x00\xff")
            assert ws.recv(timeout=10) == b"\x00\xff"
        assert ws.close_code == 1000
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
