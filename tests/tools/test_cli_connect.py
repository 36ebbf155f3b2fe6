"""``wsframe connect``: one clear line for each way it can fail (issue 10)."""
import contextlib
import socket
import subprocess
import sys
import threading

from wsframe.server.apps import install_builtin_app

from tests.helpers import running_server


def connect(*args, stdin=subprocess.DEVNULL, timeout=30):
    return subprocess.run([sys.executable, "-m", "wsframe", "connect", *args], stdin=stdin,
                          capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def refusing_server(status=b"403 Forbidden"):
    """A loopback server that answers every upgrade with an HTTP error."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(20)

    def serve():
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n"
                             b"Connection: close\r\n\r\nno")
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(10)


def test_url_without_scheme_is_one_line():
    out = connect("127.0.0.1:8765")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        "error: not a WebSocket URL (ws:// or wss://): '127.0.0.1:8765' "
        "(did you mean ws://127.0.0.1:8765?)"]


def test_refused_upgrade_is_reported_once():
    with refusing_server() as port:
        out = connect(f"ws://127.0.0.1:{port}/")
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1
    assert len(lines) == 1 and "403" in lines[0] and lines[0].startswith("error: "), lines


def test_connection_refused_is_reported_once():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]   # nobody listens once it is closed
    out = connect(f"ws://127.0.0.1:{port}/")
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1 and "refused" in lines[0], lines


def test_stdin_from_a_file_is_sent_then_closed(tmp_path):
    # epoll cannot watch a regular file (EPERM): it was a traceback in on_open.
    lines = tmp_path / "in.txt"
    lines.write_text("hello\nworld\n")
    with running_server(install_builtin_app, heartbeat=None) as (_, port):
        with open(lines) as stdin:
            out = connect(f"ws://127.0.0.1:{port}/", stdin=stdin)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["hello", "world"]
    assert "Traceback" not in out.stderr and "closed: 1000" in out.stderr
