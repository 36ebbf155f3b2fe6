"""Owner slots, partition keys, the control wire format, app loading (no processes)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from wsframe.loop.backpressure import Policy

from wsframe.cluster import load_app, owner, partition_key, resolve_workers
from wsframe.cluster.wire import (
    FANOUT, HEADER, Channel, frame, pack_room_message, unpack_room_message,
)
from wsframe.codec.handshake import read_request
from wsframe.server.apps import install_builtin_app
from wsframe.server.server import Endpoint, Server


def request(path: str):
    return read_request(f"GET {path} HTTP/1.1\r\nHost: x".encode())


def test_owner_is_stable_and_in_range():
    for slots in (1, 2, 3, 8, 60):
        for key in ("a", "order:42", "ünïcode", ""):
            assert 0 <= owner(key, slots) < slots
            assert owner(key, slots) == owner(key, slots)


def test_owner_is_the_same_in_another_process():
    keys = [f"room-{i}" for i in range(50)]
    code = ("from wsframe.cluster import owner; "
            f"print([owner(k, 7) for k in {keys!r}])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == str([owner(k, 7) for k in keys])


def test_owner_spreads_keys_and_moves_few_when_slots_change():
    keys = [f"k{i}" for i in range(4000)]
    counts = [0] * 8
    for key in keys:
        counts[owner(key, 8)] += 1
    assert min(counts) > 4000 / 8 * 0.8 and max(counts) < 4000 / 8 * 1.2, counts
    moved = sum(1 for key in keys if owner(key, 8) != owner(key, 9))
    assert moved < 4000 * 0.2  # rendezvous: about 1/9 move to the new slot, none elsewhere
    assert all(owner(key, 9) == 8 for key in keys if owner(key, 8) != owner(key, 9))


def test_partition_key_from_template_callable_or_none():
    server = Server()
    server.route("/track/{order_id}", Endpoint(), partition="order:{order_id}")
    server.route("/q", Endpoint(), partition=lambda req, params: req.query or None)
    server.route("/plain/{x}", Endpoint())
    server.route("/bad/{x}", Endpoint(), partition="{missing}")
    assert partition_key(server, request("/track/42?token=1")) == "order:42"
    assert partition_key(server, request("/q?room=7")) == "room=7"
    assert partition_key(server, request("/q")) is None
    assert partition_key(server, request("/plain/1")) is None
    assert partition_key(server, request("/bad/1")) is None
    assert partition_key(server, request("/nowhere")) is None
    builtin = Server()
    install_builtin_app(builtin)
    assert partition_key(builtin, request("/room/blue")) == "blue"
    assert partition_key(builtin, request("/echo")) is None


def test_route_decorator_takes_partition():
    server = Server()

    @server.route("/t/{id}", partition="t:{id}")
    class T(Endpoint):
        pass
    assert partition_key(server, request("/t/9")) == "t:9"
    assert server.routes.match("/t/9")[1] == {"id": "9"}


@pytest.mark.parametrize("text,compress,policy", [(True, None, None), (False, True, Policy.DROP),
                                                  (False, False, Policy.CLOSE)])
def test_room_message_round_trip(text, compress, policy):
    body = pack_room_message("rüm", b"\x00payload", text=text, compress=compress, origin=3,
                             exclude_fd=17, policy=policy)
    assert unpack_room_message(body) == ("rüm", b"\x00payload", text, compress, 3, 17, policy)


def test_channel_reassembles_split_messages_and_drops_oversized():
    import socket

    from wsframe.loop.eventloop import Loop
    loop = Loop(tick_interval=0.05)
    a, b = socket.socketpair()
    got, lost = [], []
    channel = Channel(loop, a, lambda ch, kind, body: got.append((kind, body)),
                      lambda ch: lost.append(ch))
    data = frame(FANOUT, b"x" * 1000) + frame(1, b"") + frame(2, b"abc")
    for i in range(0, len(data), 7):
        b.sendall(data[i:i + 7])
        loop.run_once(0.01)
    for _ in range(10):
        loop.run_once(0.01)
    assert got == [(FANOUT, b"x" * 1000), (1, b""), (2, b"abc")]
    channel.send(2, b"reply")
    loop.flush()
    assert b.recv(100) == frame(2, b"reply")
    b.sendall(HEADER.pack(1 << 30, 2))  # a frame no peer of ours would send
    for _ in range(10):
        loop.run_once(0.01)
    assert lost == [channel] and not channel.alive
    b.close()
    loop.close()


def test_load_app_and_resolve_workers():
    assert isinstance(load_app("tests.cluster.app:make_server"), Server)
    with pytest.raises(ValueError):
        load_app("no-colon")
    with pytest.raises(TypeError):
        load_app("os:sep")
    assert resolve_workers("3") == 3 and resolve_workers("auto") >= 1
    with pytest.raises(ValueError):
        resolve_workers("0")


def test_cli_refuses_bad_worker_counts(capsys):
    from wsframe.tools.cli import main
    assert main(["serve", "--workers", "many"]) == 2
    assert "a number or 'auto'" in capsys.readouterr().err
