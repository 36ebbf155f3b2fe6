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


class RedisCluster:
    """A Redis Cluster of ``size`` primaries with ``replicas`` replicas each, on loopback,
    nothing on disk but each node's ``nodes.conf`` (kept, so a node restarted on its
    port keeps its slots). Stopped by pid. The cluster bus gets a free port of its own
    (``--cluster-port``), not port + 10000, which may be taken or past 65535."""

    def __init__(self, size: int = 3, replicas: int = 0) -> None:
        self.cli_binary = require("redis-cli")
        self.dir = tempfile.mkdtemp(prefix="wsframe-redis-cluster-")
        self.nodes: list[RedisServer] = []
        self.replicas = size * replicas
        try:
            for _ in range(size * (1 + replicas)):
                port = free_port()
                self.nodes.append(RedisServer(
                    port, "--cluster-enabled", "yes",
                    "--cluster-config-file", os.path.join(self.dir, f"nodes-{port}.conf"),
                    "--cluster-port", str(free_port()), "--cluster-node-timeout", "5000"))
            out = subprocess.run(
                [self.cli_binary, "--cluster", "create",
                 *(f"127.0.0.1:{node.port}" for node in self.nodes),
                 "--cluster-replicas", str(replicas), "--cluster-yes"],
                capture_output=True, timeout=30)
            if out.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create: {out.stdout[-500:]!r} "
                                   f"{out.stderr[-500:]!r}")
            self.wait_ok()
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        """The URL wsframe takes for it: every node a seed."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every node says ``cluster_state:ok``, knows every node and every replica
        (as a replica), and every replica's link to its primary is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                infos = [node.cli("CLUSTER", "INFO") for node in self.nodes]
                replicas = [sum("slave" in line.split()[2]
                                for line in node.cli("CLUSTER", "NODES").splitlines())
                            for node in self.nodes]
                links = [node.cli("INFO", "replication") for node in self.nodes]
            except subprocess.SubprocessError:
                infos = []
            if infos and all("cluster_state:ok" in info and
                             f"cluster_known_nodes:{len(self.nodes)}" in info for info in infos) \
                    and all(count == self.replicas for count in replicas) \
                    and sum("master_link_status:up" in link for link in links) == self.replicas:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the cluster did not reach cluster_state:ok in {timeout:g} s")

    def node_of(self, key: str) -> RedisServer:
        """The node that serves ``key``'s slot now."""
        slot = int(self.nodes[0].cli("CLUSTER", "KEYSLOT", key))
        for node in self.nodes:
            if self.owns(node, slot):
                return node
        raise LookupError(f"no node serves slot {slot}")

    def owns(self, node: RedisServer, slot: int) -> bool:
        lines = node.cli("CLUSTER", "NODES").splitlines()
        mine = next(line for line in lines if "myself" in line).split()
        for part in mine[8:]:
            start, _, end = part.partition("-")
            if start.isdigit() and int(start) <= slot <= int(end or start):
                return True
        return False

    def node_id(self, node: RedisServer) -> str:
        return node.cli("CLUSTER", "MYID")

    def replica_of(self, primary: RedisServer) -> RedisServer:
        """A replica of ``primary``."""
        ports = {line.split()[1].split("@")[0].rsplit(":", 1)[1]
                 for line in primary.cli("CLUSTER", "REPLICAS", self.node_id(primary)).splitlines()
                 if line.strip()}
        return next(node for node in self.nodes if str(node.port) in ports)

    def move_slot(self, slot: int, source: RedisServer, target: RedisServer) -> None:
        """Move an empty ``slot`` as ``redis-cli --cluster reshard`` would (IMPORTING,
        MIGRATING, then SETSLOT NODE on the target, the source, and the others)."""
        source_id, target_id = self.node_id(source), self.node_id(target)
        target.cli("CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
        source.cli("CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
        for node in [target, source, *(n for n in self.nodes if n not in (source, target))]:
            node.cli("CLUSTER", "SETSLOT", str(slot), "NODE", target_id)

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_cluster():
    """A three-node cluster shared by a module's tests (each looks up where slots are
    now: a test may move a slot or restart a node)."""
    cluster = RedisCluster()
    try:
        yield cluster
    finally:
        cluster.close()
