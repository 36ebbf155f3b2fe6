"""A supervisor with its workers, started as processes and stopped by pid."""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from wsframe.client.blocking import connect
from tests.services import free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(predicate, timeout=20.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except OSError:
            pass
        time.sleep(interval)
    return bool(predicate())


def established_per_process(pids, port: int) -> dict:
    """pid -> how many ESTABLISHED TCP sockets on local ``port`` it holds (from /proc)."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":
                inodes.add(fields[9])
    counts = {}
    for pid in pids:
        held = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                held += 1
        counts[pid] = held
    return counts

trustme = pytest.importorskip("trustme")


class Cluster:
    def __init__(self, app: str, workers: int, extra=()) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="wsframe-cluster-")
        self.publish_path = os.path.join(self.dir, "publish.sock")
        self.workers = workers
        argv = [sys.executable, "-m", "wsframe", "--log-level", "WARNING", "serve"]
        if app:
            argv.append(app)
        argv += ["--workers", str(workers), "--port", str(self.port),
                 "--publish-socket", self.publish_path, *extra]
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL)
        self.seen_pids: set[int] = set()
        self.clients = []

    def health(self) -> dict:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            raw = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        report = json.loads(body)
        self.seen_pids.update(w["pid"] for w in report["workers"] if w["pid"])
        return report

    def pids(self) -> list:
        return [w["pid"] for w in self.health()["workers"]]

    def ready(self) -> bool:
        report = self.health()
        return report["status"] == "ok"

    def connect(self, path: str):
        """A client and the pid of the worker serving it."""
        client = connect(f"ws://127.0.0.1:{self.port}{path}", timeout=10)
        self.clients.append(client)
        hello = client.recv(timeout=10)
        assert hello.startswith("pid "), hello
        return client, int(hello.split()[1])

    def children(self) -> set:
        """The supervisor's child processes, as /proc says."""
        found = set()
        try:
            for task in os.listdir(f"/proc/{self.proc.pid}/task"):
                with open(f"/proc/{self.proc.pid}/task/{task}/children") as f:
                    found.update(int(pid) for pid in f.read().split())
        except OSError:
            pass
        return found

    def stop(self) -> None:
        self.seen_pids |= self.children()
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.sock.close()
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.health()  # the last pids
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        left = [pid for pid in self.seen_pids if wait_for(lambda: not alive(pid), 10) is False]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.unlink(self.publish_path)
        with contextlib.suppress(OSError):
            os.rmdir(self.dir)
        assert not left, f"worker processes left behind: {left}"


@pytest.fixture
def start_cluster():
    started = []

    def start(app: str = "tests.cluster.app:make_server", workers: int = 2, extra=()):
        cluster = Cluster(app, workers, extra)
        started.append(cluster)
        assert wait_for(cluster.ready, 30), "cluster did not become ready"
        return cluster
    yield start
    for cluster in started:
        cluster.stop()
