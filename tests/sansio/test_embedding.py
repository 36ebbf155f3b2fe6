"""What an embedder (a server that parses HTTP itself, an asynchronous accept) needs."""
import pytest

from wsframe import codec
from wsframe.codec.frames import OP_BINARY, OP_TEXT
from wsframe.codec.handshake import accept_key
from wsframe.codec.handshake import read_response
from wsframe.codec.http import HeadReader
from wsframe.codec.permessage_deflate import DeflateSettings
from wsframe.errors import InvalidState
from wsframe.sansio.events import BinaryMessage, Closed, RequestReceived, TextMessage
from wsframe.sansio.protocol import CLOSED, OPEN, Limits
from wsframe.sansio.roles import ClientProtocol, ServerProtocol

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def parse_response(raw: bytes):
    return read_response(HeadReader().feed(raw))
H11_HEADERS = [(b"host", b"example.com"), (b"upgrade", b"websocket"),
               (b"connection", b"Upgrade"), (b"sec-websocket-key", KEY.encode()),
               (b"sec-websocket-version", b"13"), (b"sec-websocket-protocol", b"chat, superchat"),
               (b"x-name", "abraão".encode("latin-1"))]


def head(extra: str = "") -> bytes:
    return (f"GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    return codec.client_frame(opcode, payload, fin=fin)


def test_start_from_a_request_another_parser_read():
    server = ServerProtocol()
    server.receive_request("GET", "/chat?x=1", H11_HEADERS)
    [event] = server.events()
    assert isinstance(event, RequestReceived)
    assert event.request.path == "/chat" and event.request.query == "x=1"
    assert event.request.headers.get("X-Name") == "abraão"  # ISO-8859-1 (RFC 7230 §3.2.4)
    assert event.subprotocols == ("chat", "superchat")
    server.accept("chat")
    response = parse_response(server.data_to_send())
    assert response.status == 101
    assert response.headers.get("Sec-WebSocket-Accept") == accept_key(KEY)
    assert response.headers.get("Sec-WebSocket-Protocol") == "chat"
    server.receive_data(frame(OP_TEXT, b"hi"))
    assert server.events() == [TextMessage("hi")]


def test_an_invalid_parsed_request_is_answered_with_its_error():
    server = ServerProtocol()
    server.receive_request("GET", "/", [h for h in H11_HEADERS if h[0] != b"sec-websocket-key"])
    out = server.data_to_send()
    assert out.startswith(b"HTTP/1.1 400 ")
    [closed] = server.events()
    assert isinstance(closed, Closed) and server.close_tcp
    with pytest.raises(InvalidState):
        server.receive_request("GET", "/", H11_HEADERS)


def test_bytes_before_an_asynchronous_accept_wait_for_it():
    server = ServerProtocol()
    server.receive_data(head() + frame(OP_TEXT, b"early"))  # in the same read as the head
    server.receive_data(frame(OP_BINARY, b"later"))         # before the application answered
    [event] = server.events()
    assert isinstance(event, RequestReceived)
    server.accept()
    assert server.events() == [TextMessage("early"), BinaryMessage(b"later")]


def test_early_bytes_are_bounded():
    server = ServerProtocol(limits=Limits(max_message_size=64, max_frame_size=64))
    server.receive_data(head())
    server.events()
    server.receive_data(frame(OP_BINARY, b"x" * 200))
    assert server.data_to_send().startswith(b"HTTP/1.1 400 ")
    assert server.state is CLOSED and server.close_tcp


def test_reject_with_status_headers_and_body():
    server = ServerProtocol()
    server.receive_data(head())
    server.events()
    server.reject(401, headers=[("Content-Type", "application/json"), ("WWW-Authenticate", "x")],
                  body=b'{"detail": "who?"}')
    raw = server.data_to_send()
    response = parse_response(raw)
    assert response.status == 401
    assert response.headers.get_all("Content-Type") == ["application/json"]
    assert response.headers.get("Content-Length") == str(len(b'{"detail": "who?"}'))
    assert response.headers.get("WWW-Authenticate") == "x"
    assert raw.endswith(b'{"detail": "who?"}')
    [closed] = server.events()
    assert closed.code == 1006 and server.close_tcp


def test_reject_refuses_a_status_that_is_not_a_refusal():
    server = ServerProtocol()
    server.receive_data(head())
    with pytest.raises(ValueError):
        server.reject(101)
    with pytest.raises(ValueError):
        server.reject(700)


OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"


def test_compression_chosen_at_accept():
    off = ServerProtocol()  # compression on by default, turned off for this connection
    off.receive_data(head(OFFER))
    off.accept(deflate=None)
    assert b"permessage-deflate" not in off.data_to_send() and off.deflate is None

    on = ServerProtocol(deflate=None)  # off by default, turned on for this connection
    on.receive_data(head(OFFER))
    on.accept(deflate=DeflateSettings(threshold=0))
    assert b"permessage-deflate" in on.data_to_send() and on.deflate is not None


def open_pair():
    client = ClientProtocol("example.com", "/")
    server = ServerProtocol()
    server.receive_data(client.data_to_send())
    server.events()
    server.accept()
    client.receive_data(server.data_to_send())
    client.events()
    return client, server


def test_a_message_sent_in_fragments_arrives_whole():
    client, server = open_pair()
    server.send_fragment("κό")
    server.ping(b"between")                       # §5.4: control frames may be interleaved
    server.send_fragment("σμε".encode(), fin=True)  # the type comes from the first piece
    out = server.data_to_send()
    assert out[0] == OP_TEXT and out[0] & 0x80 == 0  # first frame: text, not final
    client.receive_data(out)
    events = client.events()
    assert events[-1] == TextMessage("κόσμε")
    assert server.state is OPEN


def test_streaming_send_masks_from_a_client_and_blocks_other_messages():
    client, server = open_pair()
    client.send_fragment(b"ab", text=False)
    with pytest.raises(InvalidState):
        client.send(b"interleaved")  # §5.4: not inside a fragmented message
    client.send_fragment(b"cd", fin=True)
    out = client.data_to_send()
    assert out[0] == OP_BINARY and out[1] & 0x80  # masked (§5.3)
    server.receive_data(out)
    assert server.events() == [BinaryMessage(b"abcd")]
    client.send(b"next")  # the fragmented message is over
    server.receive_data(client.data_to_send())
    assert server.events() == [BinaryMessage(b"next")]


def test_send_fragment_needs_an_open_connection():
    client, server = open_pair()
    server.close()
    with pytest.raises(InvalidState):
        server.send_fragment(b"x")


def test_a_shared_encoded_frame_goes_to_many_connections():
    pairs = [open_pair() for _ in range(3)]
    frame = codec.server_frame(OP_TEXT, "to all".encode())  # unmasked: the same bytes for all
    for client, server in pairs:
        server.send_encoded(frame)
        client.receive_data(server.data_to_send())
        assert client.events() == [TextMessage("to all")]
    client, server = pairs[0]
    server.send_fragment(b"a")
    with pytest.raises(InvalidState):
        server.send_encoded(frame)  # §5.4: not inside a fragmented message
