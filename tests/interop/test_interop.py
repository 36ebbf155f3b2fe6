"""Byte-level interop with other libraries' sans-IO cores (no sockets).

wsframe's server against websockets' and wsproto's clients, and wsframe's
client against their servers, for every permessage-deflate parameter
combination each side can express: the handshake agrees, and messages
(text, binary, small, large, compressed or not) decode on the other side.
"""
import itertools

import pytest

from wsframe.sansio import events as ev
from wsframe.sansio.roles import ClientProtocol, ServerProtocol
from wsframe.codec.permessage_deflate import DeflateSettings

websockets = pytest.importorskip("websockets")
from websockets.client import ClientProtocol as WsClientProtocol  # noqa: E402
from websockets.extensions.permessage_deflate import (  # noqa: E402
    ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory,
)
from websockets.frames import Opcode  # noqa: E402
from websockets.server import ServerProtocol as WsServerProtocol  # noqa: E402
from websockets.uri import parse_uri  # noqa: E402

MESSAGES = ["", "hello", "κόσμε " * 300, b"\x00\xff" * 40_000, b"", "x" * 200_000]
BITS = [None, 9, 12, 15]
FLAGS = [False, True]


def ws_messages(proto):
    out = []
    for event in proto.events_received():
        if getattr(event, "opcode", None) in (Opcode.TEXT, Opcode.BINARY):
            out.append(event.data.decode() if event.opcode is Opcode.TEXT else bytes(event.data))
    return out


def ours_messages(conn):
    return [e.data for e in conn.events() if isinstance(e, (ev.TextMessage, ev.BinaryMessage))]


def exchange_with_websockets_client(client, server):
    for message in MESSAGES:
        if isinstance(message, str):
            client.send_text(message.encode())
        else:
            client.send_binary(message)
    server.receive_data(b"".join(client.data_to_send()))
    assert ours_messages(server) == MESSAGES
    for message in MESSAGES:
        server.send(message)
    client.receive_data(server.data_to_send())
    assert ws_messages(client) == MESSAGES


@pytest.mark.parametrize("snct,cnct,sbits,cbits", list(itertools.product(
    FLAGS, FLAGS, BITS, BITS + [True])))
def test_websockets_client_to_wsframe_server(snct, cnct, sbits, cbits):
    factory = ClientPerMessageDeflateFactory(server_no_context_takeover=snct,
                                             client_no_context_takeover=cnct,
                                             server_max_window_bits=sbits,
                                             client_max_window_bits=cbits)
    client = WsClientProtocol(parse_uri("ws://h/"), extensions=[factory], max_size=None)
    client.send_request(client.connect())
    server = ServerProtocol(deflate=DeflateSettings(threshold=0, server_no_context_takeover=False))
    server.receive_data(b"".join(client.data_to_send()))
    server.events()
    server.accept()
    client.receive_data(server.data_to_send())
    assert client.state.name == "OPEN" and server.deflate is not None
    assert server.deflate.server_no_context_takeover == snct
    assert server.deflate.server_max_window_bits == (sbits or 15)
    exchange_with_websockets_client(client, server)


@pytest.mark.parametrize("snct,cnct,sbits,cbits", list(itertools.product(
    FLAGS, FLAGS, BITS, BITS)))
def test_wsframe_client_to_websockets_server(snct, cnct, sbits, cbits):
    settings = DeflateSettings(server_no_context_takeover=snct, client_no_context_takeover=cnct,
                               server_max_window_bits=sbits, client_max_window_bits=cbits,
                               threshold=0)
    client = ClientProtocol("h", "/", deflate=settings)
    server = WsServerProtocol(extensions=[ServerPerMessageDeflateFactory()], max_size=None)
    server.receive_data(client.data_to_send())
    [request] = server.events_received()
    server.send_response(server.accept(request))
    client.receive_data(b"".join(server.data_to_send()))
    assert isinstance(client.events()[0], ev.Accepted) and client.deflate is not None
    for message in MESSAGES:
        client.send(message)
    server.receive_data(client.data_to_send())
    assert ws_messages(server) == MESSAGES
    for message in MESSAGES:
        if isinstance(message, str):
            server.send_text(message.encode())
        else:
            server.send_binary(message)
    client.receive_data(b"".join(server.data_to_send()))
    assert ours_messages(client) == MESSAGES


wsproto = pytest.importorskip("wsproto")
from wsproto import ConnectionType, WSConnection  # noqa: E402
from wsproto import events as wp  # noqa: E402
from wsproto.extensions import PerMessageDeflate  # noqa: E402


def wsproto_messages(conn):
    out, parts = [], []
    for event in conn.events():
        if isinstance(event, wp.Message):
            parts.append(event.data)
            if event.message_finished:
                out.append("".join(parts) if isinstance(event, wp.TextMessage) else b"".join(parts))
                parts = []
    return out


@pytest.mark.parametrize("cnct,sbits,cbits", list(itertools.product(FLAGS, BITS, BITS)))
def test_wsproto_client_to_wsframe_server(cnct, sbits, cbits):
    pmd = PerMessageDeflate(client_no_context_takeover=cnct, client_max_window_bits=cbits,
                            server_max_window_bits=sbits)
    client = WSConnection(ConnectionType.CLIENT)
    request = client.send(wp.Request(host="h", target="/", extensions=[pmd]))
    server = ServerProtocol(deflate=DeflateSettings(threshold=0))
    server.receive_data(request)
    server.events()
    server.accept()
    client.receive_data(server.data_to_send())
    assert isinstance(next(client.events()), wp.AcceptConnection)
    out = b"".join(client.send(wp.Message(data=m)) for m in MESSAGES)
    server.receive_data(out)
    assert ours_messages(server) == MESSAGES
    for message in MESSAGES:
        server.send(message)
    client.receive_data(server.data_to_send())
    assert wsproto_messages(client) == MESSAGES


@pytest.mark.parametrize("snct,cnct", list(itertools.product(FLAGS, FLAGS)))
def test_wsframe_client_to_wsproto_server(snct, cnct):
    client = ClientProtocol("h", "/", deflate=DeflateSettings(
        server_no_context_takeover=snct, client_no_context_takeover=cnct, threshold=0))
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.data_to_send())
    next(server.events())  # the Request
    client.receive_data(server.send(wp.AcceptConnection(extensions=[PerMessageDeflate()])))
    assert client.deflate is not None
    for message in MESSAGES:
        client.send(message)
    server.receive_data(client.data_to_send())
    assert wsproto_messages(server) == MESSAGES
    out = b"".join(server.send(wp.Message(data=m)) for m in MESSAGES)
    client.receive_data(out)
    assert ours_messages(client) == MESSAGES
