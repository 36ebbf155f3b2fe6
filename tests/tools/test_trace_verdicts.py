"""The annotator's verdicts are the protocol's: for the same bytes, the problem
``wsframe explain`` / ``--trace`` reports (reason, close code) is the one the
sans-IO protocol fails the connection with, and the messages it calls
complete are the ones the protocol delivers."""
import zlib

import pytest

import wsframe.tools.trace as trace
from wsframe.codec.frames import (
    OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, RSV1, RSV2, build_frame,
)
from wsframe.codec.permessage_deflate import Agreement
from wsframe.sansio import events as ev
from wsframe.sansio.roles import EventProtocol
from wsframe.tools.explain import explain_frames
from wsframe.tools.shadow import INFLATE_LIMIT, ShadowReceiver
from wsframe.tools.trace import FrameAnnotator

KEY = b"\x37\xfa\x21\x3d"
WINDOW = {"client": (15, False), "server": (15, False)}
FRESH = {"client": (15, True), "server": (15, True)}


def frame(sender, opcode, payload=b"", *, fin=True, rsv=0):
    """A frame as ``sender`` sends it (a client masks, §5.1)."""
    return build_frame(opcode, payload, fin=fin, rsv=rsv, mask=KEY if sender == "client" else None)


def deflated(*messages):
    """Each message compressed with one shared window, tail removed (RFC 7692 §7.2.1)."""
    zobj = zlib.compressobj(6, zlib.DEFLATED, -15)
    return [(zobj.compress(m) + zobj.flush(zlib.Z_SYNC_FLUSH))[:-4] for m in messages]


def agreement(inflate):
    if inflate is None:
        return None
    (cbits, cfresh), (sbits, sfresh) = inflate["client"], inflate["server"]
    return Agreement(client_max_window_bits=cbits, client_no_context_takeover=cfresh,
                     server_max_window_bits=sbits, server_no_context_takeover=sfresh,
                     level=6, mem_level=8, threshold=0)


def receiver(sender, inflate=None):
    """The real receiving endpoint: a server for client frames, a client for server frames."""
    return EventProtocol(sender == "server", deflate=agreement(inflate))


def protocol_verdict(sender, data, inflate=None):
    """(reason, close code) the protocol fails with on ``data``, or None; and its events."""
    proto = receiver(sender, inflate)
    proto.receive_data(data)
    proto.data_to_send()  # applies a pending failure, after the events before it
    events = proto.events()
    failure = proto.failure
    return (None if failure is None else (failure.reason, failure.close_code)), events


def annotated(sender, data, inflate=None, *, split=False):
    annotator = FrameAnnotator(sender=sender, inflate=inflate)
    lines = []
    pieces = [data[i:i + 1] for i in range(len(data))] if split else [data]
    for piece in pieces:
        lines += annotator.feed(piece)
    lines += annotator.finish()
    return annotator, lines


def c(*args, **kwargs):
    return frame("client", *args, **kwargs)


def s(*args, **kwargs):
    return frame("server", *args, **kwargs)


HELLO_Z, HELLO_AGAIN_Z = deflated(b"Hello", b"Hello")

MALFORMED = {
    # header rules (§5.1, §5.2, §5.5)
    "reserved opcode": ("server", b"\x83\x05Hello", None),
    "reserved control opcode": ("client", b"\x8b\x80" + KEY, None),
    "RSV2": ("server", s(OP_TEXT, b"Hello", rsv=RSV2), None),
    "RSV1 without deflate": ("client", c(OP_TEXT, b"Hello", rsv=RSV1), None),
    "masked from a server": ("server", c(OP_TEXT, b"Hello"), None),
    "unmasked from a client": ("client", s(OP_TEXT, b"Hello"), None),
    "long ping": ("server", b"\x89\x7e\x00\x7e" + bytes(126), None),
    "fragmented ping": ("client", b"\x09\x80" + KEY, None),
    "64-bit top bit": ("server", b"\x82\x7f\x80" + bytes(7), None),
    # close payloads (§5.5.1, §7.4)
    "1-byte close": ("client", c(OP_CLOSE, b"\x03"), None),
    "close code 1005": ("server", s(OP_CLOSE, (1005).to_bytes(2, "big")), None),
    "close code 999": ("client", c(OP_CLOSE, (999).to_bytes(2, "big")), None),
    "close reason not UTF-8": ("server", s(OP_CLOSE, b"\x03\xe8\xc3\x28"), None),
    # UTF-8 (§8.1), fail fast
    "bad UTF-8": ("server", s(OP_TEXT, b"\xc3\x28"), None),
    "overlong UTF-8": ("client", c(OP_TEXT, b"\xc0\x80"), None),
    "surrogate": ("server", s(OP_TEXT, b"\xed\xa0\x80"), None),
    "bad UTF-8 in the first of three fragments": (
        "client", c(OP_TEXT, b"ok\xff", fin=False) + c(OP_CONT, b"a", fin=False)
        + c(OP_CONT, b"b"), None),
    "ends inside a character": ("server", s(OP_TEXT, b"\xe2", fin=False) + s(OP_CONT, b"\x82"),
                                None),
    # fragment order (§5.4)
    "continuation with no message": ("server", s(OP_CONT, b"a"), None),
    "new message inside a fragmented one": (
        "client", c(OP_TEXT, b"a", fin=False) + c(OP_BINARY, b"b"), None),
    # permessage-deflate (RFC 7692 §6, §8)
    "RSV1 on a continuation": (
        "server", s(OP_TEXT, HELLO_Z[:2], fin=False, rsv=RSV1) + s(OP_CONT, HELLO_Z[2:], rsv=RSV1),
        WINDOW),
    "RSV1 on a ping": ("client", c(OP_PING, b"hi", rsv=RSV1), WINDOW),
    "RSV1 on a close": ("server", s(OP_CLOSE, b"", rsv=RSV1), WINDOW),
    "invalid compressed data": ("client", c(OP_BINARY, b"\xff\xff\xff", rsv=RSV1), WINDOW),
    "window not kept": ("server", s(OP_TEXT, HELLO_Z, rsv=RSV1) + s(OP_TEXT, HELLO_AGAIN_Z, rsv=RSV1),
                        FRESH),
    "compressed text not UTF-8": ("client", c(OP_TEXT, deflated(b"\xc3\x28")[0], rsv=RSV1),
                                  WINDOW),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
@pytest.mark.parametrize("split", [False, True], ids=["whole", "byte-by-byte"])
def test_first_problem_is_the_protocols_failure(name, split):
    sender, data, inflate = MALFORMED[name]
    expected, _ = protocol_verdict(sender, data, inflate)
    assert expected is not None, "the protocol accepts this stream"
    annotator, lines = annotated(sender, data, inflate, split=split)
    verdicts = [(p.text, p.close_code) for p in annotator.problems if p.close_code is not None]
    assert verdicts[:1] == [expected]
    reason, code = expected
    assert any(f"PROBLEM: {reason} -> close {code}" in line for line in lines)


@pytest.mark.parametrize("sender, data, inflate", [
    ("server", s(OP_TEXT, b"Hel", fin=False) + s(OP_PING, b"x") + s(OP_CONT, b"lo"), None),
    ("client", c(OP_BINARY, bytes(300)) + c(OP_TEXT, "é".encode()), None),
    ("server", s(OP_TEXT, HELLO_Z, rsv=RSV1) + s(OP_TEXT, HELLO_AGAIN_Z, rsv=RSV1), WINDOW),
    ("client", c(OP_TEXT, HELLO_Z[:3], fin=False, rsv=RSV1) + c(OP_CONT, HELLO_Z[3:]), WINDOW),
    # a Close ends what the receiver reads: the message around it is never delivered (§5.5.1)
    ("server", s(OP_TEXT, b"a", fin=False) + s(OP_CLOSE, b"\x03\xe8") + s(OP_CONT, b"b"), None),
])
def test_complete_messages_are_the_ones_the_protocol_delivers(sender, data, inflate):
    failure, events = protocol_verdict(sender, data, inflate)
    assert failure is None
    delivered = [e for e in events if isinstance(e, (ev.TextMessage, ev.BinaryMessage))]
    annotator, lines = annotated(sender, data, inflate)
    assert annotator.messages == len(delivered)
    assert not annotator.problems
    for message in delivered:
        if isinstance(message, ev.TextMessage) and len(message.data) > 1:
            assert any(repr(message.data)[1:-1] in line for line in lines)


def test_data_after_close_is_shown_as_not_delivered():
    data = s(OP_TEXT, b"a", fin=False) + s(OP_CLOSE, b"\x03\xe8") + s(OP_CONT, b"b")
    out = explain_frames(data)
    assert "a frame after the server's Close frame: the receiver ignores it (§5.5.1)" in out
    assert "message not delivered: its receiver stopped reading at frame 2" in out
    assert "0 complete messages; no problems found" in out


def test_later_problems_are_each_what_a_fresh_receiver_fails_with():
    """After a violation, a fresh shadow judges the next frame: each later problem is
    what a receiver that starts at that frame fails with."""
    parts = [c(OP_CLOSE, b"\x03"), c(OP_CONT, b"x"), c(OP_TEXT, b"\xff"),
             c(OP_TEXT, b"fine") + b"\x83\x80" + KEY]
    annotator, _ = annotated("client", b"".join(parts))
    expected = [protocol_verdict("client", part)[0] for part in parts]
    assert [(p.text, p.close_code) for p in annotator.problems] == expected


def test_fresh_receiver_continues_a_message_in_progress():
    """A violation inside a fragmented message: the rest of it is framing only, no cascade."""
    data = (s(OP_TEXT, b"\xc3\x28", fin=False) + s(OP_PING, b"") + s(OP_CONT, b"\xff", fin=False)
            + s(OP_CONT, b"z"))
    annotator, lines = annotated("server", data)
    assert [(p.text, p.close_code) for p in annotator.problems] == [
        protocol_verdict("server", data)[0]]
    assert "  message not delivered: its receiver stopped reading at frame 1" in lines
    assert annotator.messages == 0
    # and the next message is judged from scratch
    annotator, _ = annotated("server", data + s(OP_CONT, b"orphan"))
    assert annotator.problems[-1].text == "continuation frame with no message to continue (§5.4)"


def test_restart_forgets_the_deflate_window():
    """Documented: a fresh shadow has an empty window, so a message referring back into
    the window of the failed connection does not inflate."""
    first, second = deflated(b"Hello", b"Hello")
    data = (c(OP_TEXT, first, rsv=RSV1) + c(OP_PING, b"", rsv=RSV1) + c(OP_TEXT, second, rsv=RSV1))
    annotator, _ = annotated("client", data, WINDOW)
    texts = [p.text for p in annotator.problems]
    assert texts[0] == "RSV1 on a control frame (RFC 7692 §6.1)"
    assert texts[1].startswith("invalid compressed data")
    assert annotator.messages == 1


def test_inflation_is_capped_and_not_a_violation():
    bomb = deflated(bytes(INFLATE_LIMIT + 1))[0]
    annotator, lines = annotated("server", s(OP_BINARY, bomb, rsv=RSV1), WINDOW)
    assert [(p.text, p.close_code) for p in annotator.problems] == [
        (f"message inflates past {INFLATE_LIMIT >> 20} MiB: not inflated further", None)]
    assert annotator.messages == 0


def test_no_local_frame_or_message_limit():
    big = bytes(3 << 20)  # over the protocol's default 1 MiB limits
    annotator, _ = annotated("client", c(OP_BINARY, big, fin=False) + c(OP_CONT, big))
    assert not annotator.problems and annotator.messages == 1
    annotator, lines = annotated("server", b"\x82\x7f" + (1 << 40).to_bytes(8, "big") + b"xyz")
    assert all(p.close_code is None for p in annotator.problems)  # only: the input ends early
    assert not any("1009" in line for line in lines)


def test_live_trace_direction_gets_deflate_after_the_handshake():
    annotator = FrameAnnotator(sender="server", verbose=False)
    assert annotator.feed(s(OP_TEXT, HELLO_Z, rsv=RSV1))  # RSV1 before deflate was agreed
    assert annotator.problems[-1].close_code == 1002
    annotator = FrameAnnotator(sender="server", verbose=False)
    annotator.inflate = WINDOW  # what ConnTrace does once the 101 agrees on deflate
    lines = annotator.feed(s(OP_TEXT, HELLO_Z, rsv=RSV1))
    assert not annotator.problems and annotator.messages == 1
    assert any('"Hello"' in line for line in lines)


def test_shadow_receiver_roles():
    pieces = []
    shadow = ShadowReceiver("client", None, lambda data, last: pieces.append((data, last)))
    assert shadow.feed(s(OP_TEXT, b"hi")).reason == "unmasked frame from a client (§5.1)"
    assert shadow.stopped and shadow.feed(c(OP_TEXT, b"hi")) is None  # nothing after the end
    shadow.frame_boundary(message_in_progress=False)
    assert shadow.feed(c(OP_TEXT, b"hi")) is None and pieces == [(b"hi", True)]
    with pytest.raises(ValueError):
        ShadowReceiver("proxy", None, lambda data, last: None)


def test_no_rule_copies_left_in_the_annotator():
    """The duplicated checks are gone: the annotator has no validator, inflater or
    close-payload parser of its own."""
    for name in ("Utf8Validator", "Inflater", "check_header", "parse_close_payload"):
        assert not hasattr(trace, name), name
