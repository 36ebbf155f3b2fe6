"""Incremental, fail-fast UTF-8 validation (RFC 6455 §8.1)."""
import pytest
from hypothesis import given, strategies as st

from wsframe import codec

VALID = [
    b"", b"hello", "κόσμε".encode(), "€".encode(), "𝄞".encode(),
    "\U0010FFFF".encode(), "\uD7FF".encode(), "\uE000".encode(), b"\x00\x7f",
]
# (bytes, offset of the byte that makes the stream invalid)
INVALID = [
    (b"\xff", 0), (b"\xc0\x80", 0), (b"\xc1\xbf", 0), (b"\x80", 0),
    (b"ab\xfe", 2), (b"\xe0\x80\x80", 1),           # overlong 3-byte
    (b"\xed\xa0\x80", 1), (b"\xed\xbf\xbf", 1),     # surrogates (§3.9 of Unicode)
    (b"\xf0\x80\x80\x80", 1), (b"\xf4\x90\x80\x80", 1),  # overlong 4-byte, > U+10FFFF
    (b"\xf5\x80\x80\x80", 0), (b"\xe2\x82\x28", 2), (b"\xce\xba\xe1\xbd", -1),
    (b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", 12),
]


@pytest.mark.parametrize("data", VALID)
def test_valid(data):
    validator = codec.Utf8Validator()
    assert validator.feed(data) == -1
    assert validator.finish()
    assert codec.validate_utf8(data)


@pytest.mark.parametrize("data,offset", INVALID)
def test_invalid_offset(data, offset):
    validator = codec.Utf8Validator()
    assert validator.feed(data) == offset
    if offset == -1:  # a truncated character: not an error until the message ends
        assert not validator.finish()
    assert not codec.validate_utf8(data)


def test_fail_fast_across_pieces():
    # Autobahn 6.4.x: the error must be seen when the bad byte arrives.
    validator = codec.Utf8Validator()
    assert validator.feed("κόσμε".encode()) == -1
    assert validator.feed(b"\xf4") == -1        # could still be valid
    assert validator.feed(b"\x90") == 0         # now it cannot: U+110000+


def test_reset():
    validator = codec.Utf8Validator()
    validator.feed(b"\xe2\x82")
    validator.reset()
    assert validator.finish()
    assert validator.feed(b"abc") == -1


@given(st.text(), st.data())
def test_any_split_of_valid_text_is_valid(text, data):
    raw = text.encode()
    cut = data.draw(st.integers(0, len(raw)))
    validator = codec.Utf8Validator()
    assert validator.feed(raw[:cut]) == -1
    assert validator.feed(raw[cut:]) == -1
    assert validator.finish()


@given(st.binary(max_size=64))
def test_verdict_matches_python(data):
    try:
        data.decode("utf-8")
        ok = True
    except UnicodeDecodeError:
        ok = False
    assert codec.validate_utf8(data) == ok
