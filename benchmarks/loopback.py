"""Small loopback helpers shared by the load scripts: a free port, waiting for a
listener or a condition, a server's ``/health``, stopping a server process, and
writing a report."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

__all__ = ["free_port", "wait_port", "wait_for", "health", "serve_app", "stop_process",
           "write_report", "commit"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    """Return once something accepts on 127.0.0.1:``port``; RuntimeError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def wait_for(predicate, timeout: float, interval: float = 0.01):
    """``predicate()``'s first true value within ``timeout`` s (errors count as not yet),
    else None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError):
            pass
        time.sleep(interval)
    return None


def health(port: int) -> dict:
    """The JSON of ``GET /health`` on 127.0.0.1:``port``."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    return json.loads(raw.partition(b"\r\n\r\n")[2])


def serve_app(source: str, module: str, *serve_args: str) -> tuple[subprocess.Popen, int]:
    """``wsframe serve module:make_server`` of an app whose ``source`` is written to a
    temporary folder, on a free port: (the process, its port). Stop it with
    :func:`stop_process`."""
    import sys
    import tempfile
    workdir = tempfile.mkdtemp(prefix="wsframe-bench-app-")
    with open(os.path.join(workdir, module + ".py"), "w") as f:
        f.write(source)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": workdir + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "wsframe", "--log-level", "WARNING", "serve",
                             f"{module}:make_server", "--port", str(port), *serve_args],
                            env=env, stdin=subprocess.DEVNULL)
    return proc, port


def stop_process(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM (a server's graceful shutdown), then SIGKILL after ``timeout`` s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def commit() -> str:
    """The checkout's short commit id (for the report)."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


def write_report(path, report: dict) -> None:
    """``report`` as indented JSON at ``path`` (its folder made); nothing for ``None``."""
    if not path:
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
