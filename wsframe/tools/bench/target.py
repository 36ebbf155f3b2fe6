"""The server under test: one ``wsframe bench`` starts, or any URL (with ``--pid``)."""
from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

__all__ = ["Target", "start_own_server", "server_command", "parse_target", "LOOPBACK_HOSTS"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost")  # the engine speaks IPv4 only


@dataclass
class Target:
    host: str
    port: int
    path: str
    pid: Optional[int] = None
    process: Optional[subprocess.Popen] = None
    label: str = ""

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.path}"

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        if self.pid is not None:
            try:
                os.kill(self.pid, 0)
            except OSError:
                return False
        return True

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def parse_target(url: str, default_path: str, allow_remote: bool) -> Target:
    """``ws://host:port/path`` -> Target; the engine needs an IPv4 literal."""
    parts = urlsplit(url)
    if parts.scheme != "ws":
        raise ValueError("bench drives plain ws:// URLs (put TLS in front of the server "
                         "separately if you need it measured)")
    host = parts.hostname or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    if host not in LOOPBACK_HOSTS and not allow_remote:
        raise ValueError(f"{host} is not loopback; pass --allow-remote to load another host")
    try:
        socket.inet_pton(socket.AF_INET, host)
    except OSError:
        raise ValueError(f"the load engine needs an IPv4 address, not {host!r}") from None
    path = parts.path or default_path
    if parts.query:
        path += "?" + parts.query
    return Target(host, parts.port or 80, path, label=url)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(port: int, extra_args: str = "") -> list[str]:
    """The command line of ``wsframe serve`` as this interpreter runs it.

    The current directory must not shadow the installed package: started from
    a folder holding a ``wsframe/`` directory (a checkout, a project named so),
    ``python -m wsframe`` would import that folder instead. ``-P`` (Python
    3.11+) leaves the current directory off ``sys.path``; on 3.10 the child
    removes it itself before importing wsframe.
    """
    serve = ["--log-level", "WARNING", "serve", "--port", str(port), *shlex.split(extra_args)]
    if sys.version_info >= (3, 11):
        return [sys.executable, "-P", "-m", "wsframe", *serve]
    return [sys.executable, "-c",
            "import sys; del sys.path[0]; from wsframe.tools.cli import main; sys.exit(main())",
            *serve]


def start_own_server(path: str, extra_args: str = "", cpu: Optional[int] = None,
                     timeout: float = 15.0) -> Target:
    """Start ``wsframe serve`` on a free loopback port (pinned to ``cpu`` if given)."""
    port = _free_port()
    command = server_command(port, extra_args)
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"wsframe serve exited with status {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return Target("127.0.0.1", port, path, process.pid, process,
                              label=f"wsframe serve {extra_args}".strip())
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("wsframe serve did not start listening")
