"""Real services for tests, each started on a free loopback port and stopped by pid.

Never the machine's own Redis on 6379: every test that needs Redis starts
``redis-server`` here (Debian's package; ``.ci/run`` installs it where
missing) and the test is skipped, saying why, only where it cannot be found.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Optional

import pytest

__all__ = ["free_port", "RedisServer", "require"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require(program: str) -> str:
    """The program's path, or a skip that says what to install."""
    path = shutil.which(program) or next(
        (p for p in (f"/usr/sbin/{program}", f"/usr/bin/{program}") if os.path.exists(p)), None)
    if path is None:
        pytest.skip(f"{program} is not installed (apt-get install {program}; .ci/run does)")
    return path


class RedisServer:
    """``redis-server`` on 127.0.0.1:<free port>, nothing on disk."""

    def __init__(self, port: Optional[int] = None, *extra: str) -> None:
        self.binary = require("redis-server")
        self.cli_binary = require("redis-cli")
        self.port = port or free_port()
        self.extra = extra
        self.dir = tempfile.mkdtemp(prefix="wsframe-redis-")
        self.proc: Optional[subprocess.Popen] = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no", *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            try:
                if self.cli("PING") == "PONG":
                    return
            except subprocess.SubprocessError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING in 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, pause: float = 0.0) -> None:
        self.stop()
        time.sleep(pause)
        self.start()

    def cli(self, *args: str, stdin: Optional[bytes] = None) -> str:
        """``redis-cli ARGS``; with ``stdin``, ``redis-cli -x ARGS`` (its last argument read
        from stdin, as bytes: how a shell passes binary data)."""
        argv = [self.cli_binary, "-p", str(self.port), *(["-x"] if stdin is not None else []),
                *args]
        out = subprocess.run(argv, input=stdin, capture_output=True, timeout=10, check=True)
        return out.stdout.decode().strip()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis_server():
    server = RedisServer()
    try:
        yield server
    finally:
        server.close()
