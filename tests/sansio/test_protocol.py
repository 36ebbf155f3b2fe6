"""The sans-IO core: a client and a server piped together, no sockets."""
import tracemalloc

import pytest
from hypothesis import given, settings, strategies as st

from wsframe import codec
from wsframe.sansio.roles import ClientProtocol, EventProtocol, ServerProtocol
from wsframe.errors import InvalidState, LocalProtocolError
from wsframe.sansio.events import (
    BinaryMessage, CloseReceived, Closed, Fragment, Ping, Pong, RequestReceived,
    TextMessage,
)
from wsframe.codec.frames import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT
from wsframe.sansio.protocol import ALLOWED, CLOSED, CLOSING, OPEN, TRANSITIONS, Limits, State


def pair(limits=Limits(), deflate=None):
    """An OPEN client and server (no handshake)."""
    return (EventProtocol(True, limits=limits, deflate=deflate),
            EventProtocol(False, limits=limits, deflate=deflate))


def deliver(src, dst, step=None):
    data = src.data_to_send()
    if step is None:
        dst.receive_data(data)
    else:
        for i in range(0, len(data), step):
            dst.receive_data(data[i:i + step])
    return dst.events()


def frames(*specs, masked=True):
    build = codec.client_frame if masked else codec.server_frame
    return b"".join(build(op, payload, fin=fin) for op, payload, fin in specs)


# --- lifecycle -------------------------------------------------------------------

def test_handshake_messages_and_close_started_by_client():
    client = ClientProtocol("example.com", "/chat", subprotocols=["chat"])
    server = ServerProtocol()
    [request] = deliver(client, server)
    assert isinstance(request, RequestReceived) and request.subprotocols == ("chat",)
    assert request.request.path == "/chat"
    server.accept("chat")
    [accepted] = deliver(server, client)
    assert accepted.subprotocol == "chat" and client.state is OPEN and server.state is OPEN

    client.send("héllo")
    client.send(b"\x00\xff")
    client.ping(b"p")
    assert deliver(client, server) == [TextMessage("héllo"), BinaryMessage(b"\x00\xff"),
                                       Ping(b"p")]
    assert deliver(server, client) == [Pong(b"p")]  # answered by the core itself

    client.close(1000, "done")
    assert client.state is CLOSING
    with pytest.raises(InvalidState):
        client.send("too late")
    assert deliver(client, server) == [CloseReceived(1000, "done"), Closed(1000, "done")]
    assert server.state is CLOSED and server.close_tcp  # §7.1.1: the server closes TCP first
    assert deliver(server, client) == [CloseReceived(1000, ""), Closed(1000, "")]
    assert client.state is CLOSED and not client.close_tcp  # the client waits for the server
    client.receive_eof()
    assert client.events() == [] and client.close_code == 1000


def test_close_started_by_server_echoes_code():
    client, server = pair()
    server.close(4001, "custom")
    assert deliver(server, client) == [CloseReceived(4001, "custom"),
                                       Closed(4001, "custom")]
    assert deliver(client, server) == [CloseReceived(4001, ""), Closed(4001, "")]
    assert server.close_tcp and server.close_code == 4001


def test_empty_close_is_1005_and_echoed_empty():
    client, server = pair()
    server.receive_data(frames((OP_CLOSE, b"", True)))
    assert server.events() == [CloseReceived(1005, ""), Closed(1005, "")]
    assert server.data_to_send() == b"\x88\x00"


def test_eof_without_close_is_1006_and_never_sent():
    client, server = pair()
    server.receive_eof()
    assert server.events() == [Closed(1006, "")]
    assert server.data_to_send() == b"" and server.close_tcp


def test_data_after_close_is_ignored():
    client, server = pair()
    server.receive_data(frames((OP_CLOSE, b"\x03\xe8", True), (OP_TEXT, b"late", True)))
    assert TextMessage("late") not in server.events()


def test_close_is_idempotent_and_state_errors_name_the_state():
    client, server = pair()
    client.close()
    client.close()
    with pytest.raises(InvalidState, match="CLOSING"):
        client.ping()
    with pytest.raises(LocalProtocolError):
        server.close(1005)  # may not be sent (§7.4.1)


def test_state_table_is_complete_for_the_states():
    assert {s for s, _ in TRANSITIONS} == set(State) - {State.CLOSED}
    assert all(v == frozenset({OPEN}) for v in ALLOWED.values())


# --- fragmentation, control frames, UTF-8 -------------------------------------------

def test_fragmented_message_with_interleaved_ping():
    client, server = pair()
    server.receive_data(frames((OP_TEXT, b"Hel", False), (OP_PING, b"?", True),
                               (OP_CONT, b"lo", False), (OP_CONT, b"", True)))
    assert server.events() == [Ping(b"?"), TextMessage("Hello")]
    assert server.data_to_send() == b"\x8a\x01?"


@pytest.mark.parametrize("wire,reason", [
    (frames((OP_CONT, b"x", True)), "no message to continue"),
    (frames((OP_TEXT, b"a", False), (OP_BINARY, b"b", True)), "inside a fragmented"),
    (frames((OP_CLOSE, b"\x03", True)), "1-byte"),
    (frames((OP_CLOSE, b"\x03\xed", True)), "invalid close code"),
])
def test_protocol_errors_fail_with_1002(wire, reason):
    client, server = pair()
    server.receive_data(wire)
    server.data_to_send()
    assert server.close_code == 1002 and reason in server.close_reason
    assert server.close_sent[0] == 1002 and server.close_tcp


def test_message_before_a_bad_frame_is_delivered_and_answered_first():
    client, server = pair()
    server.receive_data(frames((OP_TEXT, b"first", True)) + b"\x83\x80abcd")
    [message, closed] = server.events()  # the failure is visible at once ...
    assert isinstance(closed, Closed) and closed.code == 1002
    server.send(message.data)  # ... and the echo still goes out before the close
    out = server.data_to_send()
    assert out.startswith(codec.server_frame(OP_TEXT, b"first"))
    assert out[len(codec.server_frame(OP_TEXT, b"first")):][:4] == b"\x88\x1d\x03\xea"
    assert server.events() == [] and server.close_tcp  # no second Closed


def test_utf8_fails_fast_across_fragments():
    client, server = pair()
    server.receive_data(frames((OP_TEXT, "κόσμε".encode(), False)))
    assert server.events() == [] and server.state is OPEN
    server.receive_data(frames((OP_CONT, b"\xf4\x90", False)))  # cannot become valid
    server.data_to_send()
    assert server.close_code == 1007 and server.state is CLOSED


def test_utf8_fails_fast_inside_one_frame():
    client, server = pair()
    wire = frames((OP_TEXT, b"abc\xc0" + b"x" * 100, True))
    server.receive_data(wire[:6 + 3])
    assert server.state is OPEN
    server.receive_data(wire[9:10])  # the bad byte, frame far from complete
    server.data_to_send()
    assert server.close_code == 1007


def test_truncated_utf8_at_message_end_is_1007():
    client, server = pair()
    server.receive_data(frames((OP_TEXT, b"ok\xe2\x82", True)))
    server.data_to_send()
    assert server.close_code == 1007


# --- limits ---------------------------------------------------------------------------

def test_message_size_checked_from_the_header_before_buffering():
    client, server = pair(Limits(max_message_size=1000, max_frame_size=10_000))
    header = codec.client_frame(OP_BINARY, b"x" * 5000)[:8]
    server.receive_data(header)  # only the header: nothing buffered yet
    server.data_to_send()
    assert server.close_code == 1009


def test_message_size_across_fragments():
    client, server = pair(Limits(max_message_size=10))
    server.receive_data(frames((OP_BINARY, b"123456", False), (OP_CONT, b"7890", False)))
    assert server.state is OPEN
    server.receive_data(frames((OP_CONT, b"!", True)))
    server.data_to_send()
    assert server.close_code == 1009


def test_fragment_count_limit():
    client, server = pair(Limits(max_fragments=3))
    server.receive_data(frames((OP_BINARY, b"", False), (OP_CONT, b"", False),
                               (OP_CONT, b"", False), (OP_CONT, b"", True)))
    server.data_to_send()
    assert server.close_code == 1009 and "3 frames" in server.close_reason


def test_tiny_fragment_flood_costs_no_per_fragment_objects():
    client, server = pair(Limits(max_message_size=1 << 20, max_fragments=1 << 20))
    count = 50_000
    wire = frames((OP_BINARY, b"x", False), *[(OP_CONT, b"x", False)] * (count - 1))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(0, len(wire), 4096):
        server.receive_data(wire[i:i + 4096])
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert server.state is OPEN
    assert held < 4 * count  # a bytearray of 50 KB, not 50,000 bytes objects (~1.7 MB)


def test_streamed_messages():
    client, server = pair(Limits(stream_messages=True))
    server.receive_data(frames((OP_TEXT, b"ab", False), (OP_CONT, b"cd", True),
                               (OP_BINARY, b"x", True)))
    assert server.events() == [Fragment(b"ab", True, True, False), Fragment(b"cd", True, False, True),
                               Fragment(b"x", False, True, True)]


# --- properties ------------------------------------------------------------------------

messages = st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=3000)), max_size=8)


@settings(max_examples=60)
@given(messages, st.integers(1, 50), st.booleans())
def test_any_messages_any_chunking(msgs, step, compress):
    from wsframe.codec.permessage_deflate import server_negotiate, DeflateSettings
    agreement = server_negotiate([("permessage-deflate", [])],
                                 DeflateSettings(threshold=0))[1] if compress else None
    client, server = pair(deflate=agreement)
    for msg in msgs:
        client.send(msg)
    expected = [TextMessage(m) if isinstance(m, str) else BinaryMessage(m) for m in msgs]
    assert deliver(client, server, step) == expected
    for msg in msgs:
        server.send(msg)
    assert deliver(server, client, step) == expected


@settings(max_examples=300)
@given(st.binary(max_size=600), st.integers(1, 64), st.booleans())
def test_fuzz_only_documented_outcomes(data, step, is_client):
    conn = EventProtocol(is_client, limits=Limits(max_message_size=256, max_frame_size=256))
    for i in range(0, len(data), step):
        conn.receive_data(data[i:i + step])
        conn.data_to_send()
    conn.events()
    assert conn.state in (OPEN, CLOSED)
    if conn.state is CLOSED:
        assert conn.close_code in (1000, 1001, 1002, 1003, 1005, 1007, 1008, 1009, 1010, 1011,
                                   1012, 1013, 1014) or 3000 <= conn.close_code <= 4999
    assert conn._msg_buf is None or len(conn._msg_buf) <= 256


def test_a_whole_text_message_is_checked_and_decoded_in_one_pass(monkeypatch):
    # Before: validated by the codec's validator, then decoded again by every consumer.
    calls = []
    real = codec.validate_utf8
    monkeypatch.setattr(codec, "validate_utf8", lambda data: calls.append(data) or real(data))
    client, server = pair()
    client.send("κόσμε, 🚚")
    assert deliver(client, server) == [TextMessage("κόσμε, 🚚")] and calls == []
    client._write(codec.client_frame(OP_TEXT, b"ok \xff"))   # invalid UTF-8, still 1007
    deliver(client, server)
    server.data_to_send()
    assert server.close_code == 1007
