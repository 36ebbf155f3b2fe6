"""Codec micro-benchmarks: masking, frame parsing, UTF-8 validation.

    pytest benchmarks/test_codec.py --benchmark-json=benchmarks/results/codec.json
    python benchmarks/report.py benchmarks/results/codec.json

Each group compares wsframe's compiled and pure paths with the peers'
equivalents on the same input, in the same run.
"""
import os

import pytest

from wsframe.codec import frames as pure_frames
from wsframe.codec import masking as pure_masking
from wsframe.codec import utf8 as pure_utf8

from .conftest import load, need

compiled_mask = load("wsframe._compiled.mask")
compiled_frames = load("wsframe._compiled.frames")
compiled_utf8 = load("wsframe._compiled.utf8")
ws_speedups = load("websockets.speedups")
ws_frames = load("websockets.frames")
ws_streams = load("websockets.streams")
aiohttp_helpers = load("aiohttp._websocket.helpers")
wsproto_frames = load("wsproto.frame_protocol")

SIZES = {"16B": 16, "1KiB": 1024, "64KiB": 65536, "1MiB": 1 << 20}
KEY = os.urandom(4)


def _maskers():
    return {
        "wsframe-compiled": lambda d: need(compiled_mask, "compiled").apply_mask(d, KEY),
        "wsframe-pure": lambda d: pure_masking.apply_mask(d, KEY),
        "websockets-C": lambda d: need(ws_speedups, "websockets").apply_mask(d, KEY),
        "wsproto": lambda d: need(wsproto_frames, "wsproto").XorMaskerSimple(KEY).process(d),
    }


@pytest.mark.parametrize("impl", list(_maskers()))
@pytest.mark.parametrize("size", list(SIZES))
def test_mask_copy(benchmark, impl, size):
    """Mask into a new buffer (what a sender does)."""
    benchmark.group = f"mask {size} (new buffer)"
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["bytes"] = SIZES[size]
    data = os.urandom(SIZES[size])
    fn = _maskers()[impl]
    fn(data)
    benchmark(fn, data)


@pytest.mark.parametrize("impl", ["wsframe-compiled", "wsframe-pure", "aiohttp-C", "aiohttp-py"])
@pytest.mark.parametrize("size", list(SIZES))
def test_mask_inplace(benchmark, impl, size):
    """Unmask a writable buffer in place (what a receiver can do)."""
    benchmark.group = f"mask {size} (in place)"
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["bytes"] = SIZES[size]
    buf = bytearray(os.urandom(SIZES[size]))
    if impl == "wsframe-compiled":
        fn = lambda: need(compiled_mask, "compiled").mask_inplace(buf, KEY)
    elif impl == "wsframe-pure":
        fn = lambda: pure_masking.mask_inplace(buf, KEY)
    elif impl == "aiohttp-C":
        fn = lambda: need(aiohttp_helpers, "aiohttp")._websocket_mask_cython(KEY, buf)
    else:
        fn = lambda: need(aiohttp_helpers, "aiohttp")._websocket_mask_python(KEY, buf)
    fn()
    benchmark(fn)


FRAMES_PER_ROUND = 1000
STREAM = b"".join(pure_frames.client_frame(2, os.urandom(32)) for _ in range(FRAMES_PER_ROUND))


def _parse_wsframe(module):
    parser = module.FrameParser(require_mask=True)
    parser.feed(STREAM)
    count = 0
    while parser.next_chunk() is not None:
        count += 1
    return count


def _parse_websockets():
    reader = ws_streams.StreamReader()
    reader.feed_data(STREAM)
    count = 0
    for _ in range(FRAMES_PER_ROUND):
        gen = ws_frames.Frame.parse(reader.read_exact, mask=True)
        try:
            next(gen)
        except StopIteration:
            count += 1
    return count


def _parse_wsproto():
    protocol = wsproto_frames.FrameProtocol(client=False, extensions=[])
    protocol.receive_bytes(STREAM)
    return sum(1 for _ in protocol.received_frames())


@pytest.mark.parametrize("impl", ["wsframe-compiled", "wsframe-pure", "websockets", "wsproto"])
def test_parse_small_frames(benchmark, impl):
    """Parse a stream of 1000 masked 32-byte binary frames (frames/s = 1000 / time)."""
    benchmark.group = "parse 1000 x 32B frames"
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["frames"] = FRAMES_PER_ROUND
    fn = {
        "wsframe-compiled": lambda: _parse_wsframe(need(compiled_frames, "compiled")),
        "wsframe-pure": lambda: _parse_wsframe(pure_frames),
        "websockets": lambda: _parse_websockets() if need(ws_frames, "websockets") else 0,
        "wsproto": lambda: _parse_wsproto() if need(wsproto_frames, "wsproto") else 0,
    }[impl]
    assert fn() == FRAMES_PER_ROUND
    benchmark(fn)


TEXTS = {
    "ascii-64KiB": (b"The quick brown fox jumps over the lazy dog. " * 1500)[:65536],
    "mixed-64KiB": ("Grüße, κόσμε, привет, 你好, 🚚 " * 2000).encode()[:65536].decode(
        "utf-8", "ignore").encode(),
    "ascii-32B": b"{\"lat\": 52.52, \"lon\": 13.405}xx",
}


@pytest.mark.parametrize("impl", ["wsframe-compiled", "wsframe-pure"])
@pytest.mark.parametrize("text", list(TEXTS))
def test_utf8_validate(benchmark, impl, text):
    """Validation alone, as the protocol runs it on text that arrives in pieces (fail
    fast, §8.1). Python has no validate-only routine to compare with: bytes.decode also
    builds the str (see test_text_to_str)."""
    benchmark.group = f"utf8 validate {text}"
    benchmark.extra_info["impl"] = impl
    data = TEXTS[text]
    benchmark.extra_info["bytes"] = len(data)
    fn = (need(compiled_utf8, "compiled").validate_utf8 if impl == "wsframe-compiled"
          else pure_utf8.validate_utf8)
    assert benchmark(fn, data)


@pytest.mark.parametrize("impl", ["validate-then-decode", "decode-once"])
@pytest.mark.parametrize("text", list(TEXTS))
def test_text_to_str(benchmark, impl, text):
    """Like with like: what an application gets, a checked str. "validate-then-decode" is
    the protocol before (compiled validator, then bytes.decode); "decode-once" is now, for
    a message whole in one frame (bytes.decode checks and decodes in one pass)."""
    benchmark.group = f"text to str {text}"
    benchmark.extra_info["impl"] = impl
    data = TEXTS[text]
    benchmark.extra_info["bytes"] = len(data)
    if impl == "validate-then-decode":
        validate = need(compiled_utf8, "compiled").validate_utf8

        def fn(d):
            return validate(d) and d.decode("utf-8")
    else:
        def fn(d):
            return str(d, "utf-8")
    assert benchmark(fn, data)
