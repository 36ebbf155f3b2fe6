"""Close payloads and codes (RFC 6455 §5.5.1, §7.4)."""
import pytest

from wsframe.codec.close import (
    build_close_payload, describe_close_code, is_receivable_code, is_sendable_code,
    parse_close_payload,
)
from wsframe.errors import InvalidPayload, LocalProtocolError, ProtocolViolation

# Autobahn 7.7.* (valid) and 7.9.* (invalid) plus the IANA-registered 1012-1014.
VALID = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
         3000, 3999, 4000, 4999]
INVALID = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("code", VALID)
def test_valid_codes_round_trip(code):
    assert is_sendable_code(code) and is_receivable_code(code)
    assert parse_close_payload(build_close_payload(code, "bye ✓")) == (code, "bye ✓")


@pytest.mark.parametrize("code", INVALID)
def test_invalid_codes(code):
    assert not is_receivable_code(code)
    with pytest.raises(ProtocolViolation):
        parse_close_payload(code.to_bytes(2, "big"))
    with pytest.raises(LocalProtocolError):
        build_close_payload(code)


def test_empty_payload_means_1005():
    assert parse_close_payload(b"") == (1005, "")
    assert build_close_payload(None) == b""


def test_one_byte_payload_is_1002():
    with pytest.raises(ProtocolViolation) as info:
        parse_close_payload(b"\x03")
    assert info.value.close_code == 1002


def test_bad_utf8_reason_is_1007():
    with pytest.raises(InvalidPayload) as info:
        parse_close_payload(b"\x03\xe8\xce\xba\xe1\xbd\xb9\xed\xa0\x80")
    assert info.value.close_code == 1007


def test_reason_length_limit():
    assert len(build_close_payload(1000, "x" * 123)) == 125
    with pytest.raises(LocalProtocolError):
        build_close_payload(1000, "x" * 124)
    with pytest.raises(LocalProtocolError):
        build_close_payload(None, "reason without code")


def test_descriptions():
    assert "Normal" in describe_close_code(1000)
    assert "private" in describe_close_code(4123)
    assert "not used" in describe_close_code(999)
