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

    def __init__(self, port: Optional[int] = None, *extra: str,
                 password: Optional[str] = None) -> None:
        self.binary = require("redis-server")
        self.password = password
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
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no", *self.extra,
             *(["--requirepass", self.password] if self.password else [])],
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
        self.stop()   # never leave it running behind a failed start
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
        argv = [self.cli_binary, "-p", str(self.port),
                *(["-a", self.password, "--no-auth-warning"] if self.password else []),
                *(["-x"] if stdin is not None else []), *args]
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


NGINX_CONF = """\
# wsframe's sticky-session recipe (docs/howto/redis.md), with test paths.
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    upstream wsframe {{
        {balance};
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://wsframe;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_connect_timeout 2s;
            proxy_read_timeout 75s;
            proxy_send_timeout 75s;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


class Nginx:
    """A real nginx on 127.0.0.1:<free port> in front of ``backends`` (ports)."""

    def __init__(self, backends, balance: str = "hash $uri consistent") -> None:
        self.binary = require("nginx")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="wsframe-nginx-")
        servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;"
                            for p in backends)
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.dir, port=self.port, balance=balance,
                                      servers=servers))
        self.proc = subprocess.Popen([self.binary, "-p", self.dir, "-c", self.conf, "-e",
                                      os.path.join(self.dir, "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "nginx")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)   # graceful; its worker exits with it
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_port(port: int, proc: subprocess.Popen, name: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on {port} in {timeout:g} s")


class WsframeServe:
    """``wsframe serve ARGS`` as its own process, on a free port."""

    def __init__(self, *args: str) -> None:
        import sys
        self.port = free_port()
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wsframe", "--log-level", "WARNING", "serve",
             "--port", str(self.port), *args], stdin=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "wsframe serve")

    def health(self) -> dict:
        import json
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
            return json.loads(r.read())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


HAPROXY_CONF = """\
# wsframe's sticky-session recipe for HAProxy (docs/howto/redis.md), with test ports.
global
    maxconn 1024
defaults
    mode http
    timeout connect 2s
    timeout client  75s
    timeout server  75s
    timeout tunnel  1h
    timeout client-fin 5s
    retries 3
    option redispatch
frontend ws
    bind 127.0.0.1:{port}
    default_backend wsframe
backend wsframe
    balance uri path-only
    hash-type consistent
    option httpchk GET /health
    http-check expect status 200
{servers}
"""


class Haproxy:
    """A real HAProxy on 127.0.0.1:<free port> in front of ``backends`` (ports)."""

    def __init__(self, backends) -> None:
        self.binary = require("haproxy")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="wsframe-haproxy-")
        servers = "\n".join(f"    server ws{i} 127.0.0.1:{p} check inter 300ms fall 1 rise 1"
                            for i, p in enumerate(backends))
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        with open(self.conf, "w") as f:
            f.write(HAPROXY_CONF.format(port=self.port, servers=servers))
        self.proc = subprocess.Popen([self.binary, "-db", "-f", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "haproxy")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


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
