"""One opening handshake per role: the sans-IO protocols and the loop's connections
share wsframe.sansio.handshake, so every refusal is the same wherever it happens."""
import socket

import pytest

from wsframe.codec.handshake import accept_response
from wsframe.errors import InvalidHandshake, InvalidResponse
from wsframe.sansio.handshake import ClientHandshake, ServerHandshake
from wsframe.sansio.roles import ClientProtocol, ServerProtocol
from wsframe.server.apps import install_builtin_app
from tests.helpers import running_server

GOOD = (b"GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")

BAD_REQUESTS = {
    "tls hello on a plain port": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "binary garbage": b"\x00\x01\x02 GET",
    "head too large": b"GET / HTTP/1.1\r\nX: " + b"a" * 20000,
    "malformed request line": b"GET\r\n\r\n",
    "version 8": GOOD.replace(b"Version: 13", b"Version: 8"),
    "no key": GOOD.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""),
    "POST": GOOD.replace(b"GET", b"POST", 1),
}


def sansio_status(data: bytes) -> bytes:
    server = ServerProtocol()
    server.receive_data(data)
    return server.data_to_send().split(b"\r\n", 1)[0]


def loop_status(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.split(b"\r\n", 1)[0]


def test_sansio_and_loop_servers_refuse_alike():
    with running_server(install_builtin_app) as (_server, port):  # echo on any path
        for name, data in BAD_REQUESTS.items():
            expected = sansio_status(data)
            assert expected.startswith(b"HTTP/1.1 4"), name
            assert loop_status(port, data) == expected, name


def test_server_handshake_refuses_non_http_at_the_first_bytes():
    handshake = ServerHandshake()
    with pytest.raises(Exception) as info:
        handshake.read(b"\x16\x03")
    assert info.value.status == 400 and "TLS" in info.value.reason


def test_server_handshake_keeps_pipelined_bytes():
    handshake = ServerHandshake()
    assert handshake.read(GOOD[:10]) is None
    request = handshake.read(GOOD[10:] + b"\x81\x80abcd")
    assert request.path == "/x" and handshake.rest == b"\x81\x80abcd"


def test_client_handshake_judges_the_response():
    client = ClientHandshake("h", "/")
    key = client.request.split(b"Sec-WebSocket-Key: ")[1].split(b"\r\n")[0].decode()
    accepted = client.read(accept_response(key) + b"\x81\x01a")
    assert accepted.subprotocol is None and accepted.rest == b"\x81\x01a"
    with pytest.raises(InvalidResponse):
        ClientHandshake("h", "/").read(accept_response(key))  # another client's key
    with pytest.raises(InvalidHandshake):
        ClientHandshake("h", "/", max_head_size=100).read(b"HTTP/1.1 101 OK\r\n" + b"X: y\r\n" * 50)


def test_client_protocol_uses_the_same_verdict():
    client = ClientProtocol("h", "/")
    client.data_to_send()
    with pytest.raises(InvalidResponse) as info:
        client.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    assert info.value.status == 403
