"""What the wsframe.v1 layer costs, against plain WebSocket on the same server code.

1. **Broadcast**: 1,000 members of one room, one publication per loop turn,
   ``Delivery.publish`` to wsframe.v1 members (offset, history entry, one
   JSON frame for all) against ``Room.broadcast`` to plain members.
2. **Messages in**: 16 pipelined client messages per read, each acknowledged
   (``{"id": ...}`` -> parse, dedupe, app, ``{"ack": ...}``), against plain
   echo of the same bytes.
3. **Recovery**: a client rejoins 1,000 publications behind: time from its
   hello to its ``recovered`` frame.
4. **Memory per idle connection** with a session, against plain: N
   connections to a ``wsframe serve`` process of an app with a Delivery
   route, RSS before and after; each in its own room (a room, a history and
   an epoch per connection), in rooms of 3, and all in one room (what a
   session costs, the history not counted).

Members are real sockets (socketpairs); a forked process reads and discards
their other ends, on the other core. Loopback only, bounded.

    python benchmarks/delivery.py --runs 3 --json benchmarks/results/delivery.json
"""
from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.loopback import (commit, serve_app, stop_process,  # noqa: E402
                                 wait_port, write_report)
from wsframe.codec.frames import OP_TEXT, client_frame  # noqa: E402
from wsframe.delivery import Delivery  # noqa: E402
from wsframe.server.server import Endpoint, Server  # noqa: E402

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def request(path: str, v1: bool) -> bytes:
    protocol = "Sec-WebSocket-Protocol: wsframe.v1\r\n" if v1 else ""
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{protocol}\r\n").encode()


def text_frame(text: str) -> bytes:
    return client_frame(OP_TEXT, text.encode())


HELLO = '{"op":"hello","session":null,"rooms":{}}'


class App:
    def __init__(self, delivery=None):
        self.delivery = delivery

    def on_open(self, conn, request, params):
        if self.delivery is not None:
            self.delivery.join(conn, "r")
        else:
            conn.join("r")

    def on_message(self, conn, message):
        return None


class PlainByHand(Endpoint):
    """What an app without the protocol does for the same job: parse, answer."""

    def on_open(self, conn, request, params):
        conn.join("r")

    def on_message(self, conn, message):
        frame = json.loads(message)
        conn.send(json.dumps({"ack": frame["id"]}))


class PlainEcho(Endpoint):
    def on_open(self, conn, request, params):
        conn.join("r")

    def on_message(self, conn, message):
        conn.send(message)


def drainer(fds: list[int]) -> int:
    """A child process that reads and discards everything on ``fds`` until killed."""
    pid = os.fork()
    if pid:
        return pid
    poller = select.epoll()
    for fd in fds:
        poller.register(fd, select.EPOLLIN)
    buf = bytearray(1 << 16)
    while True:
        for fd, _ in poller.poll():
            try:
                os.readv(fd, [buf])
            except OSError:
                pass


def setup(members: int, v1: bool, path: str = ""):
    server = Server(heartbeat=None, compression=None)
    delivery = Delivery(server)
    server.route("/v1", delivery.endpoint(App(delivery)))
    server.route("/plain", PlainEcho())
    server.route("/byhand", PlainByHand())
    conns, peers = [], []
    for _ in range(members):
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        head = request(path or ("/v1" if v1 else "/plain"), v1) + (
            text_frame(HELLO) if v1 else b"")
        conns.append(server.adopt(ours.detach(), head))
        peers.append(theirs)
    for _ in range(3):
        server.loop.run_once(0)
    child = drainer([p.fileno() for p in peers])
    return server, delivery, conns, peers, child


def teardown(server, peers, child) -> None:
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    for conn in list(server.connections):
        conn._close_fd()
    for peer in peers:
        peer.close()
    server.loop.close()


def broadcast(members: int, count: int, v1: bool) -> float:
    server, delivery, conns, peers, child = setup(members, v1)
    try:
        data = {"lat": 52.52, "lon": 13.405, "seq": 0, "eta": 420}
        loop = server.loop
        room = server.rooms.get("r")
        start = time.perf_counter()
        for i in range(count):
            data["seq"] = i
            if v1:
                delivery.publish("r", data)
            else:
                room.broadcast(json.dumps(data, separators=(",", ":")))
            loop.run_once(0)
        elapsed = time.perf_counter() - start
        return count * members / elapsed
    finally:
        teardown(server, peers, child)


def messages_in(count: int, v1: bool, by_hand: bool = False) -> float:
    """Messages handled per second on one connection, 16 per read."""
    server, delivery, conns, peers, child = setup(1, v1, "/byhand" if by_hand else "")
    try:
        conn = conns[0]
        loop = server.loop
        batch = b"".join(text_frame(json.dumps({"id": f"m{i}", "action": "contact_driver"})
                                    if v1 else json.dumps({"action": "contact_driver"}))
                         for i in range(16))
        reads = count // 16
        frames = []
        for r in range(reads):  # distinct ids: every message is new (no dedupe shortcut)
            if v1 or by_hand:
                frames.append(b"".join(text_frame(
                    f'{{"id":"m{r}-{i}","action":"contact_driver"}}') for i in range(16)))
            else:
                frames.append(batch)
        start = time.perf_counter()
        for data in frames:
            conn.receive_data(data)
            loop.flush()
        elapsed = time.perf_counter() - start
        return reads * 16 / elapsed
    finally:
        teardown(server, peers, child)


def recovery(missed: int) -> float:
    """Seconds from a rejoining client's hello to its recovered frame (in process)."""
    server, delivery, conns, peers, child = setup(0, True)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    try:
        for i in range(missed):
            delivery.publish("r", {"lat": 52.52, "lon": 13.405, "seq": i})
        history = delivery.histories.get("r")
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.setblocking(False)
        hello = json.dumps({"op": "hello", "session": None,
                            "rooms": {"r": {"epoch": history.epoch, "offset": 0}}})
        start = time.perf_counter()
        server.adopt(ours.detach(), request("/v1", True) + text_frame(hello))
        got = b""
        while b'"op":"recovered"' not in got:
            server.loop.run_once(0)
            try:
                while True:
                    chunk = theirs.recv(1 << 20)
                    if not chunk:
                        break
                    got += chunk
            except BlockingIOError:
                pass
        elapsed = time.perf_counter() - start
        assert got.count(b'"op":"pub"') == missed
        theirs.close()
        return elapsed
    finally:
        for conn in list(server.connections):
            conn._close_fd()
        server.loop.close()


APP = '''
from wsframe.delivery import Delivery
from wsframe.server.server import Server, Endpoint

class Track:
    def __init__(self, delivery): self.delivery = delivery
    def on_open(self, conn, request, params): self.delivery.join(conn, "order:" + params["n"])

def make_server():
    server = Server(raise_fd_limit=True)
    delivery = Delivery(server)
    server.route("/track/{n}", delivery.endpoint(Track(delivery)))
    return server
'''


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def idle_memory(connections: int, v1: bool, room_size: int = 1) -> float:
    """Bytes of server RSS per idle connection (one session each; ``room_size``
    connections per room: 1, each in its own room with its own history)."""
    proc, port = serve_app(APP, "delivery_bench_app")
    socks = []
    try:
        wait_port(port)
        time.sleep(0.5)
        before = rss_kib(proc.pid)
        for i in range(connections):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(request(f"/track/{i // room_size}", v1)
                         + (text_frame(HELLO) if v1 else b""))
            socks.append(sock)
            if i % 500 == 499:
                time.sleep(0.05)
        time.sleep(2.0)
        for sock in socks:   # read what each got (101 and, for v1, welcome + joined)
            sock.setblocking(False)
            try:
                sock.recv(65536)
            except BlockingIOError:
                pass
        time.sleep(1.0)
        after = rss_kib(proc.pid)
        return (after - before) * 1024 / connections
    finally:
        for sock in socks:
            sock.close()
        stop_process(proc, 20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--publications", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=64000)
    parser.add_argument("--missed", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--only", default="broadcast,messages,memory,recovery",
                        help="comma-separated: broadcast, messages, memory, recovery")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    only = set(args.only.split(","))
    report = {"commit": commit(),
              "date": time.strftime("%Y-%m-%d"), "args": vars(args), "rows": []}

    def row(name, unit, plain_fn, v1_fn):
        plain = [plain_fn() for _ in range(args.runs)]
        v1 = [v1_fn() for _ in range(args.runs)]
        entry = {"case": name, "unit": unit, "plain": plain, "v1": v1,
                 "plain_median": statistics.median(plain), "v1_median": statistics.median(v1)}
        entry["v1_vs_plain"] = entry["v1_median"] / entry["plain_median"]
        report["rows"].append(entry)
        print(f"{name:44} plain {entry['plain_median']:>12,.0f}  v1 {entry['v1_median']:>12,.0f}"
              f" {unit}  (v1/plain {entry['v1_vs_plain']:.2f})", flush=True)

    if "broadcast" in only:
        row(f"broadcast, {args.members} members", "deliveries/s",
            lambda: broadcast(args.members, args.publications, False),
            lambda: broadcast(args.members, args.publications, True))
    if "messages" in only:
        row("messages in, 16 per read: echo vs v1 acked", "messages/s",
            lambda: messages_in(args.messages, False), lambda: messages_in(args.messages, True))
        row("messages in: app parses + answers vs v1 acked", "messages/s",
            lambda: messages_in(args.messages, False, by_hand=True),
            lambda: messages_in(args.messages, True))
    if "memory" in only:
        for size, label in ((1, "each in its own room"), (3, "rooms of 3"),
                            (args.idle, "all in one room")):
            row(f"idle memory, {args.idle} connections, {label}", "bytes/conn",
                lambda: idle_memory(args.idle, False, size),
                lambda: idle_memory(args.idle, True, size))
    if "recovery" in only:
        times = [recovery(args.missed) for _ in range(args.runs)]
        report["recovery"] = {"missed": args.missed, "seconds": times,
                              "median_ms": statistics.median(times) * 1000}
        print(f"recovery of {args.missed} missed publications: "
              f"{report['recovery']['median_ms']:.1f} ms from hello to recovered", flush=True)
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
