"""Limits that agree with each other: raising the message size is enough (issue 10, defect 7)."""
import dataclasses

import pytest
from hypothesis import given, strategies as st

from wsframe import codec
from wsframe.codec.frames import OP_BINARY, OP_CONT, OP_TEXT
from wsframe.sansio.events import BinaryMessage, TextMessage
from wsframe.sansio.protocol import (
    BYTES_PER_FRAGMENT, MIN_FRAGMENT_CAP, OPEN, Limits, derived_fragment_cap,
)
from wsframe.sansio.roles import EventProtocol
from wsframe.tools.cli import build_parser, serve_limits


def fragmented(opcode, payload, piece):
    """``payload`` as one message of masked client frames, as Autobahn sends it.

    Autobahn's fragmented messages start with an empty frame, then ``piece``-byte
    continuations (its report for 9.3.1: 1 text frame of 6 bytes, 65,536
    continuation frames of 70 bytes).
    """
    parts = [b""] + [payload[i:i + piece] for i in range(0, len(payload), piece)]
    wire = bytearray()
    for i, part in enumerate(parts):
        wire += codec.client_frame(opcode if i == 0 else OP_CONT, part, fin=i == len(parts) - 1)
    return bytes(wire), len(parts)


def receive(limits, wire):
    server = EventProtocol(False, limits=limits)
    for i in range(0, len(wire), 1 << 16):
        server.receive_data(wire[i:i + (1 << 16)])
    return server, server.events()


def test_default_cap_is_unchanged():
    assert Limits().fragment_cap == 65536 == derived_fragment_cap(1 << 20)


@pytest.mark.parametrize("opcode,event", [(OP_TEXT, TextMessage), (OP_BINARY, BinaryMessage)])
def test_autobahn_9_3_1_shape_passes_with_only_the_size_raised(opcode, event):
    # Autobahn 9.3.1 / 9.4.1: a 4 MiB message in 64-byte fragments (65,537 frames).
    # Failed before (1009): the fixed cap of 65,536 frames did not follow the size limit.
    payload = b"*" * (4 << 20)
    wire, count = fragmented(opcode, payload, 64)
    assert count == 65537
    server, events = receive(Limits(max_message_size=64 << 20, max_frame_size=64 << 20), wire)
    assert server.state is OPEN
    assert len(events) == 1 and isinstance(events[0], event)
    assert len(events[0].data) == len(payload)


def test_cli_size_alone_derives_the_cap():
    args = build_parser().parse_args(["serve", "--max-message-size", "64M"])
    assert args.max_fragments is None
    limits = serve_limits(args)
    assert limits.max_frame_size == 64 << 20
    assert limits.fragment_cap == (64 << 20) // BYTES_PER_FRAGMENT
    explicit = serve_limits(build_parser().parse_args(["serve", "--max-fragments", "10"]))
    assert explicit.fragment_cap == 10


@given(st.integers(min_value=1, max_value=1 << 40), st.integers(min_value=1, max_value=1 << 40))
def test_raising_the_size_never_lowers_the_cap(a, b):
    small, large = sorted((a, b))
    assert derived_fragment_cap(small) <= derived_fragment_cap(large)


@given(st.integers(min_value=1, max_value=1 << 40))
def test_any_allowed_message_in_16_byte_frames_fits(size):
    # A message of up to max_message_size bytes, sent in frames of BYTES_PER_FRAGMENT
    # bytes, is never refused for its frame count.
    frames_needed = -(-size // BYTES_PER_FRAGMENT)
    assert frames_needed <= derived_fragment_cap(size)
    assert derived_fragment_cap(size) >= MIN_FRAGMENT_CAP


def test_derived_cap_still_bounds_empty_fragments():
    # CPU stays bounded: empty frames count, and past the derived cap -> 1009.
    limits = Limits(max_message_size=1 << 16)
    assert limits.fragment_cap == MIN_FRAGMENT_CAP
    wire = b"".join(codec.client_frame(OP_BINARY if i == 0 else OP_CONT, b"", fin=False)
                    for i in range(MIN_FRAGMENT_CAP + 1))
    server, _ = receive(limits, wire)
    server.data_to_send()
    assert server.close_code == 1009 and f"{MIN_FRAGMENT_CAP} frames" in server.close_reason


def test_replace_rederives_the_cap():
    limits = dataclasses.replace(Limits(), max_message_size=32 << 20)
    assert limits.fragment_cap == (32 << 20) // BYTES_PER_FRAGMENT
    assert Limits(max_fragments=7) != Limits()
    with pytest.raises(ValueError):
        Limits(max_fragments=0)
