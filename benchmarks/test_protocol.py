"""Sans-IO core benchmarks: receive -> event, and bytes per idle connection object.

    pytest benchmarks/test_protocol.py --benchmark-json=benchmarks/results/protocol.json

Each round feeds the same 64 KiB-or-so of masked client frames to a
server-side protocol object already OPEN and takes the events: wsframe
(compiled and pure codec, classic events API) against websockets' and
wsproto's sans-IO cores. Every library ends with what an application gets:
text checked as UTF-8 and decoded to str (RFC 6455 §8.1), binary as bytes.
With compression, every library gets the same permessage-deflate stream (no
context takeover either way, so the same bytes can be fed every round).
"""
import os
import subprocess
import sys
import json

import pytest

from wsframe import codec
from wsframe.sansio.roles import EventProtocol
from wsframe.codec.permessage_deflate import DeflateSettings, server_negotiate
from wsframe.sansio.protocol import Limits

from .conftest import load, need

ws_protocol = load("websockets.protocol")
ws_pmd = load("websockets.extensions.permessage_deflate")
ws_frames = load("websockets.frames")
wsproto_conn = load("wsproto.connection")
wsproto_ext = load("wsproto.extensions")

SIZES = {"32B": 32, "1KiB": 1024, "64KiB": 65536}
PER_ROUND = {"32B": 1000, "1KiB": 200, "64KiB": 4}
AGREEMENT = server_negotiate(
    [("permessage-deflate", [("client_no_context_takeover", None),
                             ("server_no_context_takeover", None)])],
    DeflateSettings(threshold=0))[1]
LIMITS = Limits(max_message_size=1 << 24, max_frame_size=1 << 24)


def message(size: int) -> str:
    text = ('{"type":"position","order":"42","lat":52.520008,"lon":13.404954,"eta_s":420}'
            * (size // 70 + 1))
    return text[:size]


def stream(size_name: str, compressed: bool) -> bytes:
    client = EventProtocol(True, limits=LIMITS, deflate=AGREEMENT if compressed else None)
    for _ in range(PER_ROUND[size_name]):
        client.send(message(SIZES[size_name]))
    return client.data_to_send()


def wsframe_core(compressed):
    conn = EventProtocol(False, limits=LIMITS, deflate=AGREEMENT if compressed else None)

    def run(data):
        conn.receive_data(data)
        return len(conn.events())
    return run


def websockets_core(compressed):
    need(ws_protocol, "websockets")
    extensions = [ws_pmd.PerMessageDeflate(True, True, 15, 15)] if compressed else []
    proto = ws_protocol.Protocol(ws_protocol.Side.SERVER, max_size=1 << 24)
    proto.extensions = extensions

    text = ws_frames.Opcode.TEXT

    def run(data):
        # websockets' sans-IO core hands out frames with raw bytes and leaves the
        # §8.1 UTF-8 check to its connection layer, which decodes text messages
        # with bytes.decode: done here too, so every library delivers the same thing.
        proto.receive_data(data)
        events = proto.events_received()
        for frame in events:
            if frame.opcode is text:
                frame.data.decode()
        return len(events)
    return run


def wsproto_core(compressed):
    need(wsproto_conn, "wsproto")
    extensions = []
    if compressed:
        pmd = wsproto_ext.PerMessageDeflate(client_no_context_takeover=True,
                                            server_no_context_takeover=True)
        pmd.accept("permessage-deflate; client_no_context_takeover; server_no_context_takeover")
        extensions = [pmd]
    conn = wsproto_conn.Connection(wsproto_conn.ConnectionType.SERVER, extensions)

    def run(data):
        conn.receive_data(data)
        return sum(1 for _ in conn.events())
    return run


CORES = {"wsframe": wsframe_core, "websockets": websockets_core, "wsproto": wsproto_core}


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "deflate"])
@pytest.mark.parametrize("core", list(CORES))
@pytest.mark.parametrize("size", list(SIZES))
def test_receive_to_events(benchmark, core, size, compressed):
    path = "compiled" if codec.speedups_enabled() else "pure"
    benchmark.group = f"receive {size} {'deflate' if compressed else 'plain'}"
    benchmark.extra_info["impl"] = {"wsframe": f"wsframe-{path}",
                                    "websockets": "websockets (+ text decode)"}.get(core, core)
    benchmark.extra_info["messages"] = PER_ROUND[size]
    data = stream(size, compressed)
    run = CORES[core](compressed)
    assert run(data) == PER_ROUND[size]
    benchmark(run, data)


MEMORY_PROBE = r'''
import json, sys, tracemalloc
N = 2000
lib = sys.argv[1]


def make():
    # One server connection object, OPEN after a handshake, compression not negotiated.
    if lib == "wsframe":
        from wsframe.sansio.roles import ClientProtocol, ServerProtocol
        client = ClientProtocol("h", "/", deflate=None)
        server = ServerProtocol()
        server.receive_data(client.data_to_send())
        server.events()
        server.accept()
        server.data_to_send()
        server.events()
        return server
    if lib == "websockets":
        from websockets.client import ClientProtocol
        from websockets.server import ServerProtocol
        from websockets.uri import parse_uri
        client = ClientProtocol(parse_uri("ws://h/"))
        client.send_request(client.connect())
        server = ServerProtocol()
        server.receive_data(b"".join(client.data_to_send()))
        [request] = server.events_received()
        server.send_response(server.accept(request))
        server.data_to_send()
        return server
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="h", target="/")))
    next(server.events())
    server.send(AcceptConnection())
    return server


make()
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
keep = [make() for _ in range(N)]
after = tracemalloc.get_traced_memory()[0]
print(json.dumps({"lib": lib, "bytes_per_connection": (after - before) / N}))
'''


def test_bytes_per_idle_connection_object(benchmark, record_property):
    """Python heap per OPEN server connection object (tracemalloc, no sockets)."""
    benchmark.group = "memory per idle sans-IO connection (bytes)"
    results = {}
    for lib in ("wsframe", "websockets", "wsproto"):
        out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, lib], capture_output=True,
                             text=True, env={**os.environ})
        if out.returncode == 0:
            results[lib] = json.loads(out.stdout)["bytes_per_connection"]
    benchmark.extra_info["bytes_per_connection"] = results
    record_property("bytes_per_connection", results)
    print(results)
    assert "wsframe" in results
    benchmark.pedantic(lambda: None, rounds=1)
