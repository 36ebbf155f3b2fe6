"""The compiled codec and the pure-Python reference agree byte for byte.

For random inputs: the same masked bytes, the same chunks from the frame
parser for the same feeding, the same errors (type, close code and text),
the same UTF-8 verdicts and failure offsets, the same serialized frames.
"""
from hypothesis import given, settings, strategies as st

from wsframe.codec import frames as ref_frames
from wsframe.codec import masking as ref_masking
from wsframe.codec import utf8 as ref_utf8

from tests.conftest import requires_compiled

pytestmark = requires_compiled


def run_parser(parser, pieces):
    """Every chunk the parser gives for these pieces, then the error if any."""
    out = []
    try:
        for piece in pieces:
            parser.feed(piece)
            while (chunk := parser.next_chunk()) is not None:
                out.append(chunk)
    except Exception as exc:  # compare the failure itself
        out.append((type(exc), getattr(exc, "close_code", None), str(exc)))
    return out


def split(data, cuts):
    points = sorted({min(c, len(data)) for c in cuts})
    pieces, last = [], 0
    for point in points + [len(data)]:
        pieces.append(data[last:point])
        last = point
    return pieces


def plausible_stream():
    """Random bytes, often starting like real frames so the parser goes deep."""
    head = st.sampled_from([b"", b"\x81", b"\x82\x85", b"\x01\x7e\x00\x10", b"\x89\x80",
                            b"\x82\xff\x00\x00\x00\x00\x00\x00\x01\x00", b"\xc1\x81"])
    return st.builds(lambda h, rest: h + rest, head, st.binary(max_size=400))


@settings(max_examples=400)
@given(plausible_stream(), st.lists(st.integers(0, 400), max_size=6), st.booleans(),
       st.sampled_from([0, 0x40, 0x70]), st.sampled_from([1 << 20, 100, 0]))
def test_parser_agrees_on_random_input(compiled, data, cuts, require_mask, rsv, max_size):
    pieces = split(data, cuts)
    kw = dict(require_mask=require_mask, allowed_rsv=rsv, max_frame_size=max_size)
    expected = run_parser(ref_frames.FrameParser(**kw), pieces)
    assert run_parser(compiled["frames"].FrameParser(**kw), pieces) == expected


@given(st.sampled_from([0, 1, 2, 8, 9, 10]), st.binary(max_size=70_000) | st.binary(max_size=200),
       st.booleans(), st.sampled_from([0, 0x40, 0x30]), st.binary(min_size=4, max_size=4))
def test_build_frame_agrees(compiled, opcode, payload, fin, rsv, key):
    if opcode >= 8:
        payload, fin = payload[:125], True
    for mask in (None, key):
        assert (compiled["frames"].build_frame(opcode, payload, fin=fin, rsv=rsv, mask=mask)
                == ref_frames.build_frame(opcode, payload, fin=fin, rsv=rsv, mask=mask))


@given(st.integers(0, 15), st.integers(0, 200), st.booleans(), st.integers(0, 0xFF))
def test_build_frame_errors_agree(compiled, opcode, size, fin, rsv):
    def outcome(build):
        try:
            return build(opcode, b"x" * size, fin=fin, rsv=rsv)
        except Exception as exc:
            return type(exc), str(exc)
    assert outcome(compiled["frames"].build_frame) == outcome(ref_frames.build_frame)


@given(st.binary(max_size=3000), st.binary(min_size=4, max_size=4))
def test_mask_agrees(compiled, data, key):
    assert compiled["mask"].apply_mask(data, key) == ref_masking.apply_mask(data, key)


utf8ish = st.one_of(
    st.binary(max_size=80),
    st.text(max_size=40).map(str.encode),
    st.lists(st.sampled_from([b"a", b"\xc2", b"\xa9", b"\xe0", b"\xa0", b"\xed", b"\x9f",
                              b"\xbf", b"\xf0", b"\x90", b"\xf4", b"\x8f", b"\x80", b"\xff",
                              "€".encode(), "𝄞".encode()]), max_size=30).map(b"".join),
)


@settings(max_examples=500)
@given(utf8ish, st.lists(st.integers(0, 80), max_size=5))
def test_utf8_verdicts_and_offsets_agree(compiled, data, cuts):
    pieces = split(data, cuts)
    fast, slow = compiled["utf8"].Utf8Validator(), ref_utf8.Utf8Validator()
    for piece in pieces:
        got = fast.feed(piece)
        assert got == slow.feed(piece)
        if got >= 0:
            break
    else:
        assert fast.finish() == slow.finish()
    assert compiled["utf8"].validate_utf8(data) == ref_utf8.validate_utf8(data)


def run_bytewise(parser, data):
    """Feed one byte at a time: every chunk, and the error with the byte it came at."""
    out = []
    for i in range(len(data)):
        try:
            parser.feed(data[i:i + 1])
            while (chunk := parser.next_chunk()) is not None:
                out.append(chunk)
        except Exception as exc:
            out.append((i, type(exc), getattr(exc, "close_code", None), str(exc)))
            break
    return out


def header_like():
    """Headers built field by field, control opcodes and long lengths included (fail fast)."""
    return st.builds(
        lambda b0, mask, len7, ext, rest: bytes([b0, (0x80 if mask else 0) | len7]) + ext + rest,
        st.integers(0, 255), st.booleans(), st.sampled_from([0, 5, 125, 126, 127]),
        st.binary(min_size=0, max_size=8), st.binary(max_size=20))


@settings(max_examples=600)
@given(header_like(), st.booleans(), st.sampled_from([0, 0x40]),
       st.sampled_from([1 << 20, 100, (1 << 64) - 1]))
def test_parser_fails_fast_at_the_same_byte(compiled, data, require_mask, rsv, max_size):
    kw = dict(require_mask=require_mask, allowed_rsv=rsv, max_frame_size=max_size)
    expected = run_bytewise(ref_frames.FrameParser(**kw), data)
    assert run_bytewise(compiled["frames"].FrameParser(**kw), data) == expected
    # and whole, the same error as byte by byte (a size error says "at least" when early)
    whole = run_parser(ref_frames.FrameParser(**kw), [data])
    if expected and len(expected[-1]) == 4 and isinstance(expected[-1][0], int):
        assert whole[-1][:2] == expected[-1][1:3]
        if expected[-1][2] == 1002:
            assert whole[-1] == expected[-1][1:]
