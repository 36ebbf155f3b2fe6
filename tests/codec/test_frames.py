"""Frames (RFC 6455 §5): the §5.7 examples, every malformed header, chunking, round trips."""
import struct

import pytest
from hypothesis import given, strategies as st

from wsframe import codec
from wsframe.errors import LocalProtocolError, MessageTooBig, ProtocolViolation
from wsframe.codec.frames import (
    OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RSV1, RSV2, RSV3,
    Frame, parse_header,
)

KEY = bytes.fromhex("37fa213d")

# §5.7, byte for byte: (wire bytes, frames, sent by a client?)
RFC_EXAMPLES = [
    ("810548656c6c6f", [Frame(OP_TEXT, b"Hello")], False),
    ("818537fa213d7f9f4d5158", [Frame(OP_TEXT, b"Hello")], True),
    ("010348656c" "80026c6f", [Frame(OP_TEXT, b"Hel", False), Frame(OP_CONT, b"lo")], False),
    ("890548656c6c6f", [Frame(OP_PING, b"Hello")], False),
    ("8a8537fa213d7f9f4d5158", [Frame(OP_PONG, b"Hello")], True),
]


def drain(parser, data, step=None):
    """Feed data (whole or in steps) and collect every chunk."""
    chunks = []
    pieces = [data] if step is None else [data[i:i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        parser.feed(piece)
        while (chunk := parser.next_chunk()) is not None:
            chunks.append(chunk)
    return chunks


def assemble(chunks):
    frames, parts = [], []
    for opcode, fin, rsv, payload, remaining in chunks:
        parts.append(payload)
        if not remaining:
            frames.append(Frame(opcode, b"".join(parts), fin, rsv))
            parts = []
    return frames


def parse(data, *, client_sent, step=None, **kw):
    return assemble(drain(codec.FrameParser(require_mask=client_sent, **kw), data, step))


@pytest.mark.parametrize("wire,frames,client_sent", RFC_EXAMPLES)
@pytest.mark.parametrize("step", [None, 1, 2, 3])
def test_rfc_examples_parse(wire, frames, client_sent, step):
    assert parse(bytes.fromhex(wire), client_sent=client_sent, step=step) == frames


@pytest.mark.parametrize("wire,frames,client_sent", RFC_EXAMPLES)
def test_rfc_examples_serialize(wire, frames, client_sent):
    out = b"".join(codec.build_frame(f.opcode, f.payload, fin=f.fin,
                                     mask=KEY if client_sent else None) for f in frames)
    assert out.hex() == wire


@pytest.mark.parametrize("size,prefix", [(256, "827e0100"), (65536, "827f0000000000010000")])
def test_rfc_examples_long_binary(size, prefix):
    # §5.7: 256 bytes use the 16-bit length, 64 KiB the 64-bit length.
    payload = bytes(range(256)) * (size // 256)
    wire = codec.server_frame(OP_BINARY, payload)
    assert wire.hex().startswith(prefix) and len(wire) == len(prefix) // 2 + size
    assert parse(wire, client_sent=False) == [Frame(OP_BINARY, payload)]
    assert parse(wire, client_sent=False, step=1000) == [Frame(OP_BINARY, payload)]


def test_length_encodings_boundaries():
    for size, header_len in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)]:
        wire = codec.server_frame(OP_BINARY, b"x" * size)
        assert len(wire) - size == header_len
        assert parse_header(wire).length == size


def test_client_frame_is_masked_with_fresh_keys():
    a, b = codec.client_frame(OP_TEXT, b"Hello"), codec.client_frame(OP_TEXT, b"Hello")
    assert a[1] & 0x80 and b[1] & 0x80
    assert a[2:6] != b[2:6]  # 2**-32 chance of a false failure
    assert parse(a, client_sent=True) == [Frame(OP_TEXT, b"Hello")]


def test_first_chunk_comes_with_the_header():
    parser = codec.FrameParser(require_mask=False)
    parser.feed(b"\x82\x7e\x01\x00" + b"ab")
    assert parser.next_chunk() == (OP_BINARY, True, 0, b"ab", 254)
    assert parser.next_chunk() is None
    parser.feed(b"c")
    assert parser.next_chunk() == (OP_BINARY, True, 0, b"c", 253)


def test_control_frame_comes_whole():
    parser = codec.FrameParser(require_mask=False)
    parser.feed(b"\x89\x05Hel")
    assert parser.next_chunk() is None
    parser.feed(b"lo\x81")
    assert parser.next_chunk() == (OP_PING, True, 0, b"Hello", 0)
    assert parser.next_chunk() is None


def test_parser_keeps_no_reference_to_fed_buffer():
    shared = bytearray(b"\x81\x05Hel")
    parser = codec.FrameParser(require_mask=False)
    parser.feed(memoryview(shared))
    assert parser.next_chunk() == (OP_TEXT, True, 0, b"Hel", 2)
    assert parser.next_chunk() is None
    shared[:] = b"XXXXXXX"  # the loop reuses its receive buffer
    parser.feed(b"lo")
    assert parser.next_chunk() == (OP_TEXT, True, 0, b"lo", 0)


def _header(b0, length, masked, mask=KEY):
    if length < 126:
        head = bytes([b0, (0x80 if masked else 0) | length])
    elif length < 65536:
        head = bytes([b0, (0x80 if masked else 0) | 126]) + struct.pack("!H", length)
    else:
        head = bytes([b0, (0x80 if masked else 0) | 127]) + struct.pack("!Q", length)
    return head + (mask if masked else b"")


MALFORMED = [
    # (description, wire, client_sent, kwargs, error type, close code)
    ("RSV1 without extension", _header(0x80 | RSV1 | 1, 0, True), True, {}, ProtocolViolation, 1002),
    ("RSV2", _header(0x80 | RSV2 | 2, 0, True), True, {}, ProtocolViolation, 1002),
    ("RSV3", _header(0x80 | RSV3 | 9, 0, True), True, {}, ProtocolViolation, 1002),
    ("RSV2 though RSV1 allowed", _header(0x80 | RSV2 | 1, 0, True), True,
     {"allowed_rsv": RSV1}, ProtocolViolation, 1002),
    ("reserved data opcode 3", _header(0x83, 0, True), True, {}, ProtocolViolation, 1002),
    ("reserved data opcode 7", _header(0x87, 0, True), True, {}, ProtocolViolation, 1002),
    ("reserved control opcode 0xB", _header(0x8B, 0, True), True, {}, ProtocolViolation, 1002),
    ("reserved control opcode 0xF", _header(0x8F, 0, True), True, {}, ProtocolViolation, 1002),
    ("unmasked client frame", _header(0x81, 5, False), True, {}, ProtocolViolation, 1002),
    ("masked server frame", _header(0x81, 5, True), False, {}, ProtocolViolation, 1002),
    ("64-bit length top bit", _header(0x82, 1 << 63, False), False,
     {"max_frame_size": (1 << 64) - 1}, ProtocolViolation, 1002),
    ("fragmented ping", _header(0x09, 0, True), True, {}, ProtocolViolation, 1002),
    ("fragmented close", _header(0x08, 2, True), True, {}, ProtocolViolation, 1002),
    ("ping of 126 bytes", _header(0x89, 126, True), True, {}, ProtocolViolation, 1002),
    ("close of 65536 bytes", _header(0x88, 65536, True), True, {}, ProtocolViolation, 1002),
    ("frame over max_frame_size", _header(0x82, 1001, True), True,
     {"max_frame_size": 1000}, MessageTooBig, 1009),
]


@pytest.mark.parametrize("desc,wire,client_sent,kw,error,code", MALFORMED,
                         ids=[m[0] for m in MALFORMED])
@pytest.mark.parametrize("step", [None, 1])
def test_malformed(desc, wire, client_sent, kw, error, code, step):
    with pytest.raises(error) as info:
        parse(wire, client_sent=client_sent, step=step, **kw)
    assert info.value.close_code == code
    assert "§" in info.value.reason or code == 1009


def test_frames_before_a_violation_are_handed_out():
    parser = codec.FrameParser(require_mask=False)
    parser.feed(codec.server_frame(OP_TEXT, b"ok") + b"\x83\x00")
    assert parser.next_chunk() == (OP_TEXT, True, 0, b"ok", 0)
    with pytest.raises(ProtocolViolation):
        parser.next_chunk()


def test_rsv1_allowed_by_extension():
    wire = codec.server_frame(OP_TEXT, b"x", rsv=RSV1)
    assert parse(wire, client_sent=False, allowed_rsv=RSV1) == [Frame(OP_TEXT, b"x", True, RSV1)]


@pytest.mark.parametrize("call", [
    lambda: codec.build_frame(3, b""),
    lambda: codec.build_frame(OP_PING, b"x" * 126),
    lambda: codec.build_frame(OP_CLOSE, b"", fin=False),
    lambda: codec.build_frame(OP_TEXT, b"", rsv=0x80),
])
def test_build_rejects_invalid_frames(call):
    with pytest.raises(LocalProtocolError):
        call()


# --- properties -------------------------------------------------------------

data_frames = st.builds(
    Frame,
    st.sampled_from([OP_CONT, OP_TEXT, OP_BINARY]),
    st.binary(max_size=70_000) | st.binary(max_size=130),
    st.booleans(),
    st.sampled_from([0, RSV1, RSV2 | RSV3, RSV1 | RSV2 | RSV3]),
)
control_frames = st.builds(
    Frame, st.sampled_from([OP_CLOSE, OP_PING, OP_PONG]), st.binary(max_size=125),
    st.just(True), st.just(0))
any_frames = st.lists(data_frames | control_frames, min_size=1, max_size=8)


def serialize(frames, client_sent):
    return b"".join(
        codec.client_frame(f.opcode, f.payload, fin=f.fin, rsv=f.rsv) if client_sent
        else codec.server_frame(f.opcode, f.payload, fin=f.fin, rsv=f.rsv)
        for f in frames)


@given(any_frames, st.booleans())
def test_serialize_then_parse_is_identity(frames, client_sent):
    wire = serialize(frames, client_sent)
    assert parse(wire, client_sent=client_sent, allowed_rsv=0x70) == frames


@given(any_frames, st.booleans(), st.data())
def test_any_chunking_gives_the_same_frames(frames, client_sent, data):
    wire = serialize(frames, client_sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12)))
    parser = codec.FrameParser(require_mask=client_sent, allowed_rsv=0x70)
    chunks, last = [], 0
    for cut in cuts + [len(wire)]:
        chunks += drain(parser, wire[last:cut])
        last = cut
    assert assemble(chunks) == frames


# --- fail fast: a header is refused at the byte that breaks a rule (issue 10, defect 8) ---

# (description, the whole header, the byte (0-based) at which it is already invalid, kwargs,
#  client_sent, error, close code)
FAIL_FAST = [
    ("ping with 7-bit length 126", _header(0x89, 255, True), 1, {}, True, ProtocolViolation, 1002),
    ("close with 7-bit length 127", _header(0x88, 1 << 20, True), 1, {}, True,
     ProtocolViolation, 1002),
    ("pong with 16-bit length 5 (not minimal, §5.2)", _header(0x8A, 200, False)[:2] + b"\x00\x05",
     1, {}, False, ProtocolViolation, 1002),
    ("fragmented ping", _header(0x09, 0, True), 0, {}, True, ProtocolViolation, 1002),
    ("reserved opcode", _header(0x83, 300, True), 0, {}, True, ProtocolViolation, 1002),
    ("RSV2", _header(0xA1, 300, True), 0, {}, True, ProtocolViolation, 1002),
    ("unmasked client frame, 64-bit length", _header(0x82, 1 << 40, False), 1, {}, True,
     ProtocolViolation, 1002),
    ("64-bit length top bit", _header(0x82, 1 << 63, False), 2,
     {"max_frame_size": (1 << 64) - 1}, False, ProtocolViolation, 1002),
    ("64-bit length over max_frame_size", _header(0x82, 1 << 40, False), 4,
     {"max_frame_size": 1 << 20}, False, MessageTooBig, 1009),
    ("16-bit length over max_frame_size", _header(0x82, 0x9000, True), 2,
     {"max_frame_size": 1000}, True, MessageTooBig, 1009),
]


@pytest.mark.parametrize("desc,head,at,kw,client_sent,error,code", FAIL_FAST,
                         ids=[f[0] for f in FAIL_FAST])
def test_header_refused_at_the_deciding_byte(desc, head, at, kw, client_sent, error, code):
    parser = codec.FrameParser(require_mask=client_sent, **kw)
    for i in range(at):  # the bytes before it leave every completion possible: wait
        parser.feed(head[i:i + 1])
        assert parser.next_chunk() is None, f"refused early, at byte {i}"
    parser.feed(head[at:at + 1])
    with pytest.raises(error) as info:
        parser.next_chunk()
    assert info.value.close_code == code


def test_valid_header_prefixes_wait():
    for head in (_header(0x89, 125, True), _header(0x82, 1 << 20, False), _header(0x81, 300, True)):
        parser = codec.FrameParser(require_mask=bool(head[1] & 0x80), max_frame_size=1 << 20)
        for i in range(len(head)):
            parser.feed(head[i:i + 1])
            chunk = parser.next_chunk()
            assert (chunk is None) == (i < len(head) - 1) or head[0] & 0x0F >= 8


def test_prefix_check_matches_the_whole_header():
    from wsframe.codec.frames import check_header, check_header_prefix
    for _, head, at, kw, client_sent, error, _code in FAIL_FAST:
        with pytest.raises(error) as partial:
            check_header_prefix(head[:at + 1], require_mask=client_sent, **kw)
        whole = parse_header(head + b"\x00" * 14)
        with pytest.raises(error) as full:
            check_header(whole, require_mask=client_sent, **kw)
        assert type(partial.value) is type(full.value)
        if error is ProtocolViolation:
            assert partial.value.reason == full.value.reason
