"""Small loopback helpers shared by the load scripts: a free port, waiting for a
listener or a condition, and a server's ``/health``."""
from __future__ import annotations

import json
import socket
import time

__all__ = ["free_port", "wait_port", "wait_for", "health"]


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
