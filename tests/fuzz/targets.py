"""Fuzz targets: each takes any bytes and may fail only in its documented ways.

A target raises :class:`Finding` (or lets any other exception out) when the
code under test does something it must not: an undocumented exception, the
compiled and pure paths disagreeing, memory that is not bounded. The same
targets run under atheris (``tests/fuzz/run.py``, coverage-guided) and under
hypothesis (``tests/fuzz/test_fuzz.py``, where atheris is missing).

The first bytes of an input choose the settings (limits, roles, split points),
the rest is the input itself, so the engine explores both.
"""
from __future__ import annotations

from wsframe.codec import deflate as pure_deflate
from wsframe.codec import frames as pure_frames
from wsframe.codec import handshake
from wsframe.codec.http import HeadReader, HttpSyntaxError, parse_parameterized_list
from wsframe.errors import (
    ExtensionError, InvalidHandshake, InvalidRequest, InvalidResponse, MessageTooBig,
    RemoteProtocolError,
)
from wsframe.sansio import events as ev
from wsframe.sansio import handshake as client_handshake_module
from wsframe.sansio import roles
from wsframe.sansio.protocol import OPEN, Limits

try:  # the compiled twins, when built
    from wsframe._compiled import deflate as compiled_deflate
    from wsframe._compiled import frames as compiled_frames
except ImportError:  # pragma: no cover - pure-only install
    compiled_deflate = compiled_frames = None

__all__ = ["TARGETS", "Finding", "SEEDS"]

# A fixed client key, so that a seed response can carry the right accept value
# and the engine can reach the extension negotiation behind it.
CLIENT_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
MAX_HEAD = 4096
MAX_INPUT = 1 << 16


class Finding(AssertionError):
    """The code under test broke its contract on this input."""


def _pieces(data: bytes, cuts: bytes) -> list[bytes]:
    """``data`` split at the offsets the cut bytes give (each 0-255, scaled)."""
    points = sorted({min(len(data), c * max(1, len(data) // 255)) for c in cuts})
    out, last = [], 0
    for point in points + [len(data)]:
        out.append(data[last:point])
        last = point
    return [p for p in out if p] or [b""]


# --- HTTP heads and the opening handshake ------------------------------------------------

def head_parser(data: bytes) -> None:
    """Request/response head parsing: only HttpSyntaxError / InvalidHandshake may come out."""
    if len(data) < 2:
        return
    cuts, body = data[:2], data[2:]
    reader = HeadReader(MAX_HEAD)
    head = None
    try:
        for piece in _pieces(body, cuts):
            reader.bad_start()
            head = reader.feed(piece)
            if head is not None:
                break
    except HttpSyntaxError:  # HeadTooLarge included (431)
        return
    if len(reader._buf) > MAX_HEAD + 3:
        raise Finding(f"head reader holds {len(reader._buf)} bytes (limit {MAX_HEAD})")
    if head is None:
        return
    try:
        request = handshake.read_request(head)
        handshake.is_upgrade_request(request)
        request.path, request.query
        handshake.check_upgrade_request(request)
    except InvalidRequest as exc:
        if not 400 <= exc.status < 500:
            raise Finding(f"request refused with {exc.status}") from exc
    try:
        response = handshake.read_response(head)
        handshake.check_response(response, CLIENT_KEY, subprotocols=("chat",),
                                 extensions=("permessage-deflate",))
    except InvalidResponse:
        pass
    for value in head.decode("latin-1").split("\r\n")[1:3]:
        try:
            parse_parameterized_list(value.partition(":")[2])
        except HttpSyntaxError:
            pass


def server_handshake(data: bytes) -> None:
    """A ServerProtocol fed anything: it answers (101 or 4xx) and never raises."""
    if len(data) < 2:
        return
    cuts, body = data[:2], data[2:]
    conn = roles.ServerProtocol(limits=Limits(max_message_size=4096), max_head_size=MAX_HEAD)
    out = 0
    for piece in _pieces(body, cuts):
        conn.receive_data(piece)
        for event in conn.events():
            if isinstance(event, ev.RequestReceived):
                conn.accept(event.subprotocols[0] if event.subprotocols else None)
            elif isinstance(event, (ev.TextMessage, ev.BinaryMessage)) and conn.state is OPEN:
                conn.send(event.data)  # an echo (not once a Close that followed has closed it)
        out += len(conn.data_to_send())
        if conn.close_tcp:
            break
    if out > 4 * len(body) + 8192:
        raise Finding(f"{out} bytes written for {len(body)} received")


def client_handshake(data: bytes) -> None:
    """A ClientProtocol fed any response: only InvalidHandshake may come out."""
    if len(data) < 2:
        return
    cuts, body = data[:2], data[2:]
    original = client_handshake_module.generate_key  # a fixed key: seeds can answer it
    client_handshake_module.generate_key = lambda: CLIENT_KEY
    try:
        conn = roles.ClientProtocol("example.com", "/", subprotocols=("chat",),
                                    limits=Limits(max_message_size=4096), max_head_size=MAX_HEAD)
    finally:
        client_handshake_module.generate_key = original
    conn.data_to_send()
    try:
        for piece in _pieces(body, cuts):
            conn.receive_data(piece)
            conn.events()
            conn.data_to_send()
            if conn.close_tcp:
                return
        conn.receive_eof()
    except InvalidHandshake:
        return


# --- frames -------------------------------------------------------------------------------

_SIZES = (1 << 20, 125, 0, (1 << 64) - 1)


def _run_parser(parser, pieces):
    out = []
    try:
        for piece in pieces:
            parser.feed(piece)
            while (chunk := parser.next_chunk()) is not None:
                out.append(chunk)
            if isinstance(parser, pure_frames.FrameParser) and len(parser._data) > 14 + 125:
                raise Finding(f"parser keeps {len(parser._data)} bytes between feeds")
    except RemoteProtocolError as exc:  # the documented outcome of bad frames
        out.append((type(exc).__name__, exc.close_code, str(exc)))
    return out


def frame_parser(data: bytes) -> None:
    """Both frame parsers: documented errors only, and the same chunks and errors."""
    if len(data) < 3:
        return
    config, cuts, body = data[0], data[1:3], data[3:]
    kw = dict(require_mask=bool(config & 1), allowed_rsv=0x40 if config & 2 else 0,
              max_frame_size=_SIZES[(config >> 2) & 3])
    pieces = _pieces(body, cuts)
    expected = _run_parser(pure_frames.FrameParser(**kw), pieces)
    if compiled_frames is not None:
        got = _run_parser(compiled_frames.FrameParser(**kw), pieces)
        if got != expected:
            raise Finding(f"compiled parser disagrees: {got[-3:]} != {expected[-3:]}")


def protocol(data: bytes) -> None:
    """The sans-IO core fed any frames: it fails the connection, it never raises."""
    if len(data) < 3:
        return
    config, cuts, body = data[0], data[1:3], data[3:]
    limits = Limits(max_message_size=(256, 4096, 1 << 16)[config % 3],
                    stream_messages=bool(config & 4))
    from wsframe.codec.permessage_deflate import Agreement
    deflate = (Agreement(bool(config & 32), bool(config & 64), 15, 15, 6, 8, 0)
               if config & 8 else None)
    conn = roles.EventProtocol(bool(config & 16), limits=limits, deflate=deflate)
    for piece in _pieces(body, cuts):
        conn.receive_data(piece)
        for event in conn.events():
            data_ = getattr(event, "data", b"")
            if len(data_) > limits.max_message_size:
                raise Finding(f"a {len(data_)}-byte message passed a {limits.max_message_size} limit")
        conn.data_to_send()
    conn.receive_eof()
    conn.events()


# --- inflate ------------------------------------------------------------------------------

def _run_inflater(inflater, pieces, limit, reset):
    out = []
    try:
        for piece in pieces:
            got = inflater.decompress(piece, limit)
            if len(got) > limit:
                raise Finding(f"inflated {len(got)} bytes past a limit of {limit}")
            out.append(got)
            limit -= len(got)
        tail = inflater.finish(limit, reset)
        if len(tail) > limit:
            raise Finding(f"finish inflated {len(tail)} bytes past a limit of {limit}")
        out.append(tail)
    except (ExtensionError, MessageTooBig) as exc:  # 1007/1009: the documented outcomes
        out.append(type(exc).__name__)
    return out


def inflate(data: bytes) -> None:
    """Both inflaters: bounded output, documented errors only, the same results."""
    if len(data) < 3:
        return
    config, cuts, body = data[0], data[1:3], data[3:]
    bits = 8 + (config & 7)
    limit = (0, 100, 4096, 1 << 20)[(config >> 3) & 3]
    reset = bool(config & 32)
    pieces = _pieces(body, cuts)
    expected = _run_inflater(pure_deflate.Inflater(bits), pieces, limit, reset)
    if compiled_deflate is not None:
        got = _run_inflater(compiled_deflate.Inflater(bits), pieces, limit, reset)
        if got != expected:
            raise Finding(f"compiled inflater disagrees: {got!r:.200} != {expected!r:.200}")


TARGETS = {
    "head": head_parser,
    "server_handshake": server_handshake,
    "client_handshake": client_handshake,
    "frames": frame_parser,
    "protocol": protocol,
    "inflate": inflate,
}


def _seeds() -> dict[str, list[bytes]]:
    import zlib
    request = (b"GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
               b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
    response = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                handshake.accept_key(CLIENT_KEY).encode() +
                b"\r\nSec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: "
                b"permessage-deflate; server_no_context_takeover\r\n\r\n")
    frames = (pure_frames.client_frame(1, b"Hello") + pure_frames.client_frame(9, b"p")
              + pure_frames.client_frame(2, b"ab", fin=False) + pure_frames.client_frame(0, b"c")
              + pure_frames.client_frame(8, b"\x03\xe8bye"))
    server_frames = pure_frames.server_frame(1, b"hi") + pure_frames.server_frame(8, b"\x03\xe8")
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    compressed = deflater.compress(b"Hello " * 50) + deflater.flush(zlib.Z_SYNC_FLUSH)
    return {
        "head": [b"\x00\x00" + request, b"\x10\x80" + response, b"\x00\x00\r\n" + request],
        "server_handshake": [b"\x00\x00" + request + frames, b"\x20\x90" + request],
        "client_handshake": [b"\x00\x00" + response + server_frames],
        "frames": [b"\x01\x00\x00" + frames, b"\x00\x05\x10" + server_frames,
                   b"\x03\x00\x00" + pure_frames.client_frame(1, compressed[:-4], rsv=0x40)],
        "protocol": [b"\x01\x00\x00" + frames, b"\x19\x00\x00" + server_frames,
                     b"\x09\x00\x00" + pure_frames.client_frame(1, compressed[:-4], rsv=0x40)],
        "inflate": [b"\x17\x00\x00" + compressed[:-4], b"\x0f\x40\x80" + compressed,
                    b"\x10\x00\x00" + b"\x00" * 64],
    }


SEEDS = _seeds()
