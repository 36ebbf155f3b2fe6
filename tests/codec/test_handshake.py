"""Opening handshake (RFC 6455 §4) and the HTTP it needs (RFC 7230)."""
import base64

import pytest
from hypothesis import given, strategies as st

from wsframe.errors import InvalidRequest, InvalidResponse
from wsframe.codec.handshake import (
    accept_key, accept_response, check_response, check_upgrade_request, client_request,
    generate_key, is_upgrade_request, read_request, read_response, reject_response,
)
from wsframe.codec.http import (
    HeadReader, HeadTooLarge, HttpSyntaxError, parse_parameterized_list, parse_token_list,
)

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def request(*extra, drop=(), method="GET", target="/chat", version="1.1"):
    fields = {"Host": "server.example.com", "Upgrade": "websocket", "Connection": "Upgrade",
              "Sec-WebSocket-Key": RFC_KEY, "Sec-WebSocket-Version": "13"}
    lines = [f"{method} {target} HTTP/{version}"]
    lines += [f"{k}: {v}" for k, v in fields.items() if k not in drop]
    lines += list(extra)
    return "\r\n".join(lines).encode()


def offer_of(head):
    return check_upgrade_request(read_request(head))


def test_rfc_accept_key():
    # §1.3 and §4.2.2: the worked example.
    assert accept_key(RFC_KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_rfc_request_accepted_and_answered():
    head = request("Origin: http://example.com", "Sec-WebSocket-Protocol: chat, superchat")
    offer = offer_of(head)
    assert offer.key == RFC_KEY and offer.subprotocols == ["chat", "superchat"]
    assert offer.origin == "http://example.com"
    response = accept_response(offer.key, subprotocol="chat")
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in response
    assert b"Sec-WebSocket-Protocol: chat\r\n" in response and response.endswith(b"\r\n\r\n")


def test_token_lists_are_case_insensitive_and_comma_separated():
    head = request("Connection: keep-alive, Upgrade", drop=("Connection", "Upgrade"))
    head += b"\r\nUpgrade: WebSocket"
    assert offer_of(head).key == RFC_KEY
    # The same field split over two lines counts as one list (RFC 7230 §3.2.2).
    head = request("Connection: keep-alive", "Connection: upgrade", drop=("Connection",))
    assert offer_of(head).key == RFC_KEY


@pytest.mark.parametrize("head,status,words", [
    (request(method="POST"), 400, "GET"),
    (request(version="1.0"), 400, "HTTP/1.1"),
    (request(drop=("Host",)), 400, "Host"),
    (request("Host: other", ), 400, "Host"),
    (request(drop=("Upgrade",)), 400, "Upgrade"),
    (request(drop=("Upgrade",)) + b"\r\nUpgrade: h2c", 400, "Upgrade"),
    (request(drop=("Connection",)), 400, "Connection"),
    (request(drop=("Connection",)) + b"\r\nConnection: keep-alive", 400, "Connection"),
    (request(drop=("Sec-WebSocket-Key",)), 400, "Key"),
    (request(drop=("Sec-WebSocket-Key",)) + b"\r\nSec-WebSocket-Key: short==", 400, "16 bytes"),
    (request(drop=("Sec-WebSocket-Key",)) + b"\r\nSec-WebSocket-Key: !!notbase64!!!!!!!!!!!==",
     400, "16 bytes"),
    (request(f"Sec-WebSocket-Key: {RFC_KEY}"), 400, "Key"),
    (request(drop=("Sec-WebSocket-Version",)), 426, "version"),
    (request(drop=("Sec-WebSocket-Version",)) + b"\r\nSec-WebSocket-Version: 8", 426, "version"),
    (request(target="http://x/"), 400, "target"),
    (request("Sec-WebSocket-Extensions: permessage-deflate; x=\"a b\""), 400, "Extensions"),
    (request("Sec-WebSocket-Protocol: chat, sp ace"), 400, "Protocol"),
])
def test_bad_requests(head, status, words):
    with pytest.raises(InvalidRequest) as info:
        offer_of(head)
    assert info.value.status == status
    assert words.lower() in info.value.reason.lower()
    if status == 426:
        assert ("Sec-WebSocket-Version", "13") in info.value.headers


@pytest.mark.parametrize("head", [
    b"GET /chat HTTP/1.1\r\nHost : x",              # whitespace before colon
    b"GET /chat HTTP/1.1\r\nHost: x\r\n folded",    # obsolete line folding
    b"GET /chat HTTP/1.1\r\nHost: x\x00y",           # control character
    b"GET  /chat HTTP/1.1\r\nHost: x",               # two spaces
    b"GET /chat HTTP/1.1 extra\r\nHost: x",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello on a plain port
    b"",
])
def test_malformed_heads_are_400(head):
    with pytest.raises(InvalidRequest) as info:
        read_request(head)
    assert info.value.status == 400


def test_reject_response_426_says_version():
    raw = reject_response(426, "unsupported version", (("Sec-WebSocket-Version", "13"),))
    response = read_response(raw.split(b"\r\n\r\n")[0])
    assert response.status == 426
    assert response.headers.get("Sec-WebSocket-Version") == "13"
    assert raw.endswith(b"\r\n\r\nunsupported version\n")
    assert response.headers.get("Content-Length") == str(len(b"unsupported version\n"))


def test_is_upgrade_request():
    assert is_upgrade_request(read_request(request()))
    assert not is_upgrade_request(read_request(b"GET /health HTTP/1.1\r\nHost: x"))


def test_path_and_query():
    req = read_request(request(target="/track/order%2042?token=abc&x=1"))
    assert req.path == "/track/order 42" and req.query == "token=abc&x=1"


# --- head reader --------------------------------------------------------------

def test_head_reader_byte_by_byte_keeps_the_rest():
    raw = request() + b"\r\n\r\n\x81\x85"
    reader = HeadReader()
    heads = [reader.feed(raw[i:i + 1]) for i in range(len(raw))]
    assert [h for h in heads if h is not None] == [request()]
    assert heads[-3] == request()
    whole = HeadReader()
    assert whole.feed(raw) == request() and whole.rest == b"\x81\x85"


def test_head_reader_cap():
    reader = HeadReader(max_size=100)
    with pytest.raises(HeadTooLarge):
        reader.feed(b"GET / HTTP/1.1\r\nX: " + b"a" * 200)
    reader = HeadReader(max_size=100)
    with pytest.raises(HeadTooLarge):
        reader.feed(b"GET / HTTP/1.1\r\nX: " + b"a" * 100 + b"\r\n\r\n")
    assert HeadReader(max_size=100).feed(b"GET / HTTP/1.1\r\n\r\n") == b"GET / HTTP/1.1"


def test_head_reader_bare_lf():
    assert HeadReader().feed(b"GET / HTTP/1.1\nHost: x\n\nrest") == b"GET / HTTP/1.1\nHost: x"


# --- grammar ------------------------------------------------------------------

def test_token_list():
    assert parse_token_list(" a, b ,,c,") == ["a", "b", "c"]
    assert parse_token_list("WebSocket/13, h2c", lowercase=True) == ["websocket/13", "h2c"]
    with pytest.raises(HttpSyntaxError):
        parse_token_list("a b")


def test_extension_grammar():
    assert parse_parameterized_list(
        'permessage-deflate; client_max_window_bits, permessage-deflate; '
        'server_max_window_bits="10" ; server_no_context_takeover, x-foo') == [
        ("permessage-deflate", [("client_max_window_bits", None)]),
        ("permessage-deflate", [("server_max_window_bits", "10"),
                                ("server_no_context_takeover", None)]),
        ("x-foo", []),
    ]
    assert parse_parameterized_list('a; b="\\1\\0"') == [("a", [("b", "10")])]


@pytest.mark.parametrize("bad", ["", ";", "a;", "a; =1", "a; b=", 'a; b="x', 'a; b="a b"',
                                 "a b", "a; b=c d", "a;; b", 'a; b="\x01"'])
def test_extension_grammar_errors(bad):
    with pytest.raises(HttpSyntaxError):
        parse_parameterized_list(bad)


@given(st.text(max_size=60))
def test_grammar_never_crashes(text):
    for parse in (parse_parameterized_list, parse_token_list):
        try:
            parse(text)
        except HttpSyntaxError:
            pass


@given(st.binary(max_size=300))
def test_request_parsing_never_crashes(head):
    try:
        check_upgrade_request(read_request(head))
    except InvalidRequest as exc:
        assert exc.status in (400, 426)


# --- client side ----------------------------------------------------------------

def response_for(key, *extra, status="101 Switching Protocols", accept=None):
    lines = [f"HTTP/1.1 {status}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Accept: {accept or accept_key(key)}", *extra]
    return read_response("\r\n".join(lines).encode())


def test_client_request_is_valid_for_our_server():
    key = generate_key()
    assert len(base64.b64decode(key)) == 16 and key != generate_key()
    raw = client_request("example.com:8080", "/chat?x=1", key, subprotocols=["chat", "v2"],
                         extensions="permessage-deflate", origin="http://example.com")
    head = HeadReader().feed(raw)
    offer = offer_of(head)
    assert offer.key == key and offer.subprotocols == ["chat", "v2"]
    assert offer.extensions == [("permessage-deflate", [])]


def test_client_accepts_good_response():
    key = generate_key()
    result = check_response(response_for(key, "Sec-WebSocket-Protocol: chat",
                                         "Sec-WebSocket-Extensions: permessage-deflate"),
                            key, subprotocols=["chat"], extensions=["permessage-deflate"])
    assert result.subprotocol == "chat"
    assert result.extensions == [("permessage-deflate", [])]


@pytest.mark.parametrize("make,words", [
    (lambda k: response_for(k, status="200 OK"), "101"),
    (lambda k: response_for(k, status="403 Forbidden"), "403"),
    (lambda k: response_for(k, accept="s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "Accept"),
    (lambda k: response_for(k, "Sec-WebSocket-Protocol: other"), "subprotocol"),
    (lambda k: response_for(k, "Sec-WebSocket-Protocol: chat, v2"), "subprotocol"),
    (lambda k: response_for(k, "Sec-WebSocket-Extensions: x-unknown"), "extension"),
    (lambda k: read_response(b"HTTP/1.1 101 OK\r\nConnection: Upgrade"), "Upgrade"),
    (lambda k: read_response(b"HTTP/1.1 101 OK\r\nUpgrade: websocket"), "Connection"),
])
def test_client_rejects_bad_response(make, words):
    key = generate_key()
    with pytest.raises(InvalidResponse) as info:
        check_response(make(key), key, subprotocols=["chat"], extensions=["permessage-deflate"])
    assert words.lower() in str(info.value).lower()


def test_client_rejects_garbage():
    with pytest.raises(InvalidResponse):
        read_response(b"SSH-2.0-OpenSSH_9.2")
