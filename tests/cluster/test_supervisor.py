"""The supervisor and its workers as real processes: routing, handoff, supervision."""
from __future__ import annotations

import base64
import os
import signal
import socket
import time

import pytest

from wsframe import codec
from wsframe.cluster import owner
from wsframe.codec.frames import OP_TEXT, parse_frames
from wsframe.errors import ConnectionClosed

from tests.cluster.conftest import alive, established_per_process, wait_for


def upgrade_request(path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def read_frames(sock: socket.socket, count: int, timeout: float = 10.0) -> tuple[bytes, list]:
    """The response head, then ``count`` frames."""
    sock.settimeout(timeout)
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, buffer
        buffer += chunk
    head, _, buffer = buffer.partition(b"\r\n\r\n")
    while len(parse_frames(buffer, require_mask=False)) < count:
        chunk = sock.recv(65536)
        assert chunk, buffer
        buffer += chunk
    return head, parse_frames(buffer, require_mask=False)


def payloads(frames) -> list:
    return [f.payload if hasattr(f, "payload") else f[-1] for f in frames]


def test_same_key_same_worker_across_restarts(start_cluster):
    cluster = start_cluster(workers=3)
    slot = owner("order:42", 3)
    pids = {cluster.connect("/track/42")[1] for _ in range(4)}
    assert pids == {cluster.pids()[slot]}
    victim = pids.pop()
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: cluster.pids()[slot] not in (victim, None) and cluster.ready())
    _, again = cluster.connect("/track/42")
    assert again == cluster.pids()[slot] != victim
    # keys spread: several orders land on more than one worker, each on its owner
    for order in range(10):
        _, pid = cluster.connect(f"/track/{order}")
        assert pid == cluster.pids()[owner(f"order:{order}", 3)]


def test_no_key_balanced_by_load(start_cluster):
    cluster = start_cluster(workers=2)
    counts: dict[int, int] = {}
    for _ in range(20):
        _, pid = cluster.connect("/anything")
        counts[pid] = counts.get(pid, 0) + 1
    assert set(counts) == set(cluster.pids())
    assert min(counts.values()) >= 5, counts
    held = established_per_process([*cluster.pids(), cluster.proc.pid], cluster.port)
    assert held[cluster.proc.pid] == 0  # the supervisor kept no copy of any of them
    assert {pid: held[pid] for pid in counts} == counts


def test_handoff_keeps_pipelined_bytes(start_cluster):
    cluster = start_cluster(workers=2)
    sock = socket.create_connection(("127.0.0.1", cluster.port), timeout=10)
    frames = b"".join(codec.client_frame(OP_TEXT, f"m{i}".encode()) for i in range(5))
    sock.sendall(upgrade_request("/echo") + frames)  # one segment: head + 5 frames
    head, got = read_frames(sock, 6)
    assert head.startswith(b"HTTP/1.1 101")
    texts = [frame.payload for frame in got]
    assert texts[0].startswith(b"pid ") and texts[1:] == [f"m{i}".encode() for i in range(5)]
    sock.close()


def test_handoff_of_a_request_split_over_reads(start_cluster):
    cluster = start_cluster(workers=2)
    sock = socket.create_connection(("127.0.0.1", cluster.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = upgrade_request("/track/7") + codec.client_frame(OP_TEXT, b"hello")
    for start in range(0, len(request), 40):
        sock.sendall(request[start:start + 40])
        time.sleep(0.01)  # separate segments, separate reads
    head, got = read_frames(sock, 2)
    assert head.startswith(b"HTTP/1.1 101")
    assert got[0].payload == f"pid {cluster.pids()[owner('order:7', 2)]}".encode()
    assert got[1].payload == b"hello"  # broadcast to its room (itself)
    sock.close()


def test_bad_and_oversized_heads_answered_like_one_server(start_cluster):
    cluster = start_cluster(workers=2)
    for raw, status in ((b"\x16\x03\x01\x00\x05hello", b"400"),
                        (b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", b"431"),
                        (b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", b"426")):
        with socket.create_connection(("127.0.0.1", cluster.port), timeout=10) as sock:
            sock.sendall(raw)
            answer = sock.recv(65536)
            assert answer.split()[1] == status, answer


def test_membership_by_proxy_and_one_order_per_room(start_cluster):
    cluster = start_cluster(workers=2)
    members = [cluster.connect("/member/lobby") for _ in range(4)]
    assert len({pid for _, pid in members}) == 2  # the room spans both workers
    time.sleep(0.3)  # JOINs reach the owner (membership is announced, not awaited)
    a, b = members[0][0], members[1][0]
    for i in range(15):
        a.send(f"a{i}")
        b.send(f"b{i}")
    expected = 30
    seen = []
    for client, _ in members:
        got = [client.recv(timeout=10) for _ in range(expected)]
        assert sorted(got) == sorted([f"a{i}" for i in range(15)] + [f"b{i}" for i in range(15)])
        seen.append(got)
    assert all(got == seen[0] for got in seen)  # one order for every member
    for prefix in "ab":  # and each sender's messages in the order it sent them
        assert [m for m in seen[0] if m[0] == prefix] == [f"{prefix}{i}" for i in range(15)]
    with pytest.raises(TimeoutError):
        members[2][0].recv(timeout=0.3)  # exactly once: nothing more


def test_broadcast_exclude_across_workers(start_cluster):
    cluster = start_cluster(workers=2)
    members = [cluster.connect("/member/ex") for _ in range(4)]
    time.sleep(0.3)
    sender = members[0][0]
    sender.send("exclude-me")
    for client, _ in members[1:]:
        assert client.recv(timeout=10) == "excluded"
    with pytest.raises(TimeoutError):
        sender.recv(timeout=0.3)


def test_publish_from_outside(start_cluster):
    from wsframe.cluster import Publisher
    cluster = start_cluster(workers=2)
    members = [cluster.connect("/member/news") for _ in range(4)]
    tracked, _ = cluster.connect("/track/9")
    time.sleep(0.3)
    with Publisher(cluster.publish_path) as publisher:
        for i in range(10):
            publisher.publish("news", f"n{i}")
        publisher.publish("order:9", b"\x00binary", text=False)
    for client, _ in members:
        assert [client.recv(timeout=10) for _ in range(10)] == [f"n{i}" for i in range(10)]
    assert tracked.recv(timeout=10) == b"\x00binary"


def test_killed_worker_restarted_others_untouched(start_cluster):
    cluster = start_cluster(workers=3)
    clients = {}
    for order in range(30):
        client, pid = cluster.connect(f"/track/{order}")
        clients.setdefault(pid, []).append(client)
    before = cluster.pids()
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: cluster.pids()[0] not in (victim, None) and cluster.ready())
    after = cluster.health()
    assert [w["pid"] for w in after["workers"]][1:] == before[1:]
    assert after["workers"][0]["restarts"] == 1 and after["totals"]["restarts"] == 1
    for client in clients.get(victim, []):
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=10)
    for pid in before[1:]:
        for client in clients.get(pid, []):
            client.send("still here")
            assert client.recv(timeout=10) == "still here"


def test_rolling_restart_drains_with_1012(start_cluster):
    cluster = start_cluster(workers=2)
    clients = [cluster.connect(f"/track/{order}") for order in range(8)]
    before = cluster.pids()
    assert len({pid for _, pid in clients}) == 2
    cluster.proc.send_signal(signal.SIGHUP)
    for client, _ in clients:
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                client.recv(timeout=15)
        assert closed.value.code == 1012
    assert wait_for(lambda: cluster.ready() and not set(cluster.pids()) & set(before))
    assert all(not alive(pid) for pid in before if wait_for(lambda: not alive(pid), 10))
    _, pid = cluster.connect("/track/1")
    assert pid == cluster.pids()[owner("order:1", 2)]
    members = [cluster.connect("/member/after") for _ in range(3)]  # rooms by proxy still work
    assert len({pid for _, pid in members}) == 2
    time.sleep(0.3)
    members[0][0].send("after the restart")
    assert [client.recv(timeout=10) for client, _ in members] == ["after the restart"] * 3


def test_rolling_restart_replaces_one_worker_at_a_time(start_cluster):
    cluster = start_cluster(workers=3)
    for order in range(6):
        cluster.connect(f"/track/{order}")
    before = cluster.pids()
    cluster.proc.send_signal(signal.SIGHUP)
    old_alive_seen = []
    for _ in range(5000):
        current = cluster.pids()
        replaced = sum(1 for pid in current if pid not in before)
        old_alive = sum(1 for pid in before if alive(pid))
        draining = old_alive - (len(before) - replaced)  # old, alive, slot already taken over
        assert draining <= 1, (before, current)          # never two drains at once
        assert old_alive >= len(before) - replaced  # a slot not yet replaced keeps its worker
        old_alive_seen.append(old_alive)
        if replaced == len(before) and old_alive == 0:
            break
        time.sleep(0.01)
    else:
        pytest.fail("rolling restart did not finish")
    assert old_alive_seen == sorted(old_alive_seen, reverse=True)  # old workers only go away
    assert cluster.ready()


def test_shutdown_closes_1001_and_leaves_no_process(start_cluster):
    cluster = start_cluster(workers=2)
    clients = [cluster.connect(f"/track/{order}") for order in range(6)]
    pids = cluster.pids()
    cluster.proc.send_signal(signal.SIGTERM)
    for client, _ in clients:
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=15)
        assert closed.value.code == 1001
    assert cluster.proc.wait(20) == 0
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 10)


def test_workers_exit_when_the_supervisor_dies(start_cluster):
    cluster = start_cluster(workers=2)
    pids = cluster.pids()
    cluster.proc.kill()
    cluster.proc.wait(10)
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 15)


def test_slow_handshakes_do_not_stall_the_acceptor(start_cluster):
    cluster = start_cluster(workers=2)
    slow = []
    for i in range(50):
        sock = socket.create_connection(("127.0.0.1", cluster.port), timeout=10)
        sock.sendall(b"GET /track/1 HTTP/1.1\r\nHost: x\r\n")  # never finished
        slow.append(sock)
    silent = [socket.create_connection(("127.0.0.1", cluster.port), timeout=10)
              for _ in range(20)]
    client, pid = cluster.connect("/track/2")  # served while 70 handshakes hang
    client.send("ok")
    assert client.recv(timeout=10) == "ok"
    # the 50 partial heads wait on the supervisor's loop; the silent ones wait in the
    # kernel until they send something (TCP_DEFER_ACCEPT) or the defer period ends
    assert cluster.health()["supervisor"]["pending_handshakes"] >= 50
    for sock in slow + silent:  # the handshake timeout (1 s here) closes them all
        sock.settimeout(15)
        assert sock.recv(100) == b""
        sock.close()
    assert cluster.health()["supervisor"]["handshake_timeouts"] >= 50


def test_health_reports_every_worker(start_cluster):
    cluster = start_cluster(workers=2)
    clients = [cluster.connect(f"/member/r{i}") for i in range(4)]
    assert wait_for(lambda: cluster.health()["totals"]["connections"] >= 4)
    report = cluster.health()
    assert len(report["workers"]) == 2
    for worker in report["workers"]:
        assert {"pid", "connections", "rooms", "queued_bytes", "restarts"} <= set(worker)
        assert alive(worker["pid"])
    assert report["totals"]["connections"] == sum(w["connections"] for w in report["workers"])
    assert report["totals"]["rooms"] >= 4
    del clients


def test_builtin_app_rooms_with_workers(start_cluster):
    from wsframe.client.blocking import connect
    cluster = start_cluster(app="", workers=2, extra=("--heartbeat", "0"))
    a = connect(f"ws://127.0.0.1:{cluster.port}/room/blue", timeout=10)
    b = connect(f"ws://127.0.0.1:{cluster.port}/room/blue", timeout=10)
    cluster.clients += [a, b]
    a.send("hello")
    assert b.recv(timeout=10) == "hello" and a.recv(timeout=10) == "hello"
    assert wait_for(lambda: [w["connections"] for w in cluster.health()["workers"]].count(2) == 1)
    # /proxy/<name>: no key, so members go to the least-loaded worker (the other one first)
    p1 = connect(f"ws://127.0.0.1:{cluster.port}/proxy/green", timeout=10)
    assert wait_for(lambda: sorted(w["connections"] for w in cluster.health()["workers"])
                    == [1, 2])
    p2 = connect(f"ws://127.0.0.1:{cluster.port}/proxy/green", timeout=10)
    cluster.clients += [p1, p2]
    time.sleep(0.3)
    p2.send("spread")
    assert p1.recv(timeout=10) == "spread" and p2.recv(timeout=10) == "spread"


def test_supervisor_gives_up_on_workers_that_never_start():
    import subprocess
    import sys

    from tests.cluster.conftest import ROOT, Cluster
    cluster = Cluster("tests.cluster.app:broken_in_workers", 2)
    try:
        assert cluster.proc.wait(90) == 1
    finally:
        cluster.stop()
    bad = subprocess.run([sys.executable, "-m", "wsframe", "serve", "no_such_module:app",
                          "--workers", "2"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "cannot load no_such_module:app" in bad.stderr
