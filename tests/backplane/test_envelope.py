"""The channel convention: bare text, envelopes, and what is not UTF-8."""
import pytest
from hypothesis import given, strategies as st

from wsframe.backplane.address import parse_redis_url
from wsframe.backplane.envelope import BadEnvelope, Message, decode, encode


def test_a_bare_payload_is_a_text_message():
    assert decode(b'{"lat":52.5}') == Message(b'{"lat":52.5}', True, None)


def test_a_bare_payload_that_is_not_utf8_becomes_binary():
    # RFC 6455 §8.1: a text frame must be UTF-8, so it cannot go out as text
    assert decode(b"\xff\xfe") == Message(b"\xff\xfe", False, None)


def test_an_envelope_by_hand_as_redis_cli_types_it():
    assert decode(b"\x00type=binary\n\x01\x02") == Message(b"\x01\x02", False, None)
    assert decode(b"\x00\n\x00starts with NUL") == Message(b"\x00starts with NUL", True, None)
    assert decode(b"\x00type=text;future=1\nhi") == Message(b"hi", True, None)


@given(st.binary(), st.booleans(), st.one_of(st.none(), st.text("0123456789abcdef", max_size=16)))
def test_encode_then_decode_gives_the_message_back(payload, text, origin):
    message = decode(encode(payload, text=text, origin=origin))
    assert message.payload == payload
    assert message.origin == origin
    if text:
        is_utf8 = True
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            is_utf8 = False
        assert message.text is is_utf8
    else:
        assert message.text is False


@pytest.mark.parametrize("data", [b"\x00type=binary", b"\x00type=jpeg\nx"])
def test_a_malformed_envelope_is_refused(data):
    with pytest.raises(BadEnvelope):
        decode(data)


@pytest.mark.parametrize("url, expected", [
    ("redis://127.0.0.1:7000/2", dict(host="127.0.0.1", port=7000, db=2)),
    ("redis://:s%40cret@cache.internal", dict(host="cache.internal", port=6379, password="s@cret")),
    ("rediss://app:pw@10.0.0.5:6380/0", dict(tls=True, username="app", password="pw", port=6380)),
    ("unix:///run/redis.sock?db=3", dict(unix_path="/run/redis.sock", db=3)),
    ("redis://[::1]:7001", dict(host="::1", port=7001)),
])
def test_redis_urls_read_as_redis_users_write_them(url, expected):
    address = parse_redis_url(url)
    for key, value in expected.items():
        assert getattr(address, key) == value
    assert "pw" not in str(address) and "cret" not in str(address)


@pytest.mark.parametrize("url", ["http://x", "redis://h:99999", "redis://h/db1", "unix://"])
def test_a_bad_redis_url_says_what_is_wrong(url):
    with pytest.raises(ValueError):
        parse_redis_url(url)


def test_an_envelope_for_one_connection_names_it():
    # gateway mode: one channel per process, the connection in the header
    assert decode(b"\x00conn=9f3c.17\nhi") == Message(b"hi", True, None, "9f3c.17")
    assert decode(encode(b"\x01", text=False, conn="9f3c.17")) == Message(
        b"\x01", False, None, "9f3c.17")
    assert decode(b"\x00conn=9f3c.17;close=4001\nno") == Message(b"no", True, None, "9f3c.17",
                                                                 4001)


@pytest.mark.parametrize("bad", [b"\x00conn=a.1;close=x\n", b"\x00conn=a.1;close=-1\n",
                                 b"\x00conn=a.1;close=99999\n"])
def test_a_close_that_is_no_code_is_a_bad_envelope(bad):
    with pytest.raises(BadEnvelope):
        decode(bad)
