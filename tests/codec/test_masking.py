"""Masking (RFC 6455 §5.3): reference, fast pure, compiled and in-place agree."""
import os

import pytest
from hypothesis import given, strategies as st

from wsframe import codec
from wsframe.codec import masking

KEY = bytes.fromhex("37fa213d")  # the key of the §5.7 example


def test_rfc_example_hello():
    # §5.7: "Hello" masked with 37 fa 21 3d is 7f 9f 4d 51 58.
    assert codec.apply_mask(b"Hello", KEY) == bytes.fromhex("7f9f4d5158")
    assert masking.apply_mask(bytes.fromhex("7f9f4d5158"), KEY) == b"Hello"


@pytest.mark.parametrize("size", [0, 1, 3, 4, 7, 8, 9, 31, 32, 33, 4095, 4096, 4097, 70_001])
def test_all_sizes_match_textbook(size):
    data, key = os.urandom(size), os.urandom(4)
    expected = masking.apply_mask_textbook(data, key)
    assert masking.apply_mask(data, key) == expected
    assert codec.apply_mask(data, key) == expected
    assert codec.apply_mask(memoryview(data), bytearray(key)) == expected


@given(st.binary(max_size=10_000), st.binary(min_size=4, max_size=4))
def test_involution(data, key):
    assert codec.apply_mask(codec.apply_mask(data, key), key) == data


@given(st.binary(max_size=5000), st.binary(min_size=4, max_size=4))
def test_inplace_equals_copy(data, key):
    buf = bytearray(data)
    codec.mask_inplace(buf, key)
    assert bytes(buf) == masking.apply_mask_textbook(data, key)
    view = memoryview(bytearray(data))[1:]
    codec.mask_inplace(view, key)
    assert bytes(view) == masking.apply_mask_textbook(data[1:], key)


@given(st.binary(max_size=300), st.integers(0, 300), st.binary(min_size=4, max_size=4))
def test_rotate_mask_continues_stream(data, cut, key):
    cut = min(cut, len(data))
    first = codec.apply_mask(data[:cut], key)
    second = codec.apply_mask(data[cut:], masking.rotate_mask(key, cut))
    assert first + second == masking.apply_mask_textbook(data, key)


@pytest.mark.parametrize("key", [b"", b"abc", b"abcde"])
def test_bad_key_length(key):
    with pytest.raises(ValueError):
        codec.apply_mask(b"data", key)


def test_inplace_rejects_readonly():
    with pytest.raises((TypeError, BufferError)):
        codec.mask_inplace(b"read-only bytes", KEY)
