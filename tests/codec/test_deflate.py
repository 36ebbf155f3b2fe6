"""permessage-deflate (RFC 7692): negotiation, the frame path, bombs, both codec paths."""
import os
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from wsframe import codec
from wsframe.codec import deflate as ref_deflate
from wsframe.sansio.roles import ClientProtocol, EventProtocol, ServerProtocol
from wsframe.errors import InvalidResponse
from wsframe.sansio.events import BinaryMessage, TextMessage
from wsframe.codec.frames import OP_CONT, OP_PING, OP_TEXT, RSV1, parse_frames
from wsframe.codec.permessage_deflate import (
    DeflateSettings, NegotiationError, client_accept, client_offer, parse_params, server_negotiate,
)
from wsframe.sansio.protocol import Limits

from tests.conftest import requires_compiled

PMD = "permessage-deflate"


def offer(*params):
    return [(PMD, list(params))]


# --- negotiation -----------------------------------------------------------------------

def test_server_accepts_plain_offer_and_asks_no_context_takeover():
    value, agreement = server_negotiate(offer(), DeflateSettings())
    assert value == "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    assert agreement.server_no_context_takeover and agreement.client_no_context_takeover
    assert agreement.sending(False) == (15, True) and agreement.receiving(False) == (15, True)
    value, agreement = server_negotiate(offer(), DeflateSettings(client_no_context_takeover=False))
    assert value == "permessage-deflate; server_no_context_takeover"
    assert agreement.receiving(False) == (15, False)


def test_all_four_parameters():
    value, agreement = server_negotiate(
        offer(("server_no_context_takeover", None), ("client_no_context_takeover", None),
              ("server_max_window_bits", "10"), ("client_max_window_bits", None)),
        DeflateSettings(client_max_window_bits=12))
    assert value == ("permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
                     " server_max_window_bits=10; client_max_window_bits=12")
    assert agreement.sending(False) == (10, True) and agreement.receiving(False) == (12, True)


def test_offered_client_window_value_is_respected():
    value, agreement = server_negotiate(offer(("client_max_window_bits", "9")),
                                        DeflateSettings(server_no_context_takeover=False,
                                                        client_no_context_takeover=False))
    assert value == "permessage-deflate; client_max_window_bits=9"
    assert agreement.receiving(False) == (9, False)


def test_client_window_not_in_response_unless_offered():
    value, _ = server_negotiate(offer(), DeflateSettings(client_max_window_bits=10))
    assert "client_max_window_bits" not in value  # §7.1.2.2


def test_first_acceptable_offer_wins_and_malformed_ones_are_declined():
    offers = [(PMD, [("server_max_window_bits", "7")]),       # out of range
              (PMD, [("x_unknown", None)]),                    # unknown parameter
              (PMD, [("client_no_context_takeover", None)] * 2),  # duplicate
              (PMD, [("server_max_window_bits", None)]),       # value required
              ("x-webkit-deflate-frame", []),
              (PMD, [("server_max_window_bits", "11")]),
              (PMD, [])]
    value, agreement = server_negotiate(offers, DeflateSettings())
    assert agreement.server_max_window_bits == 11
    assert server_negotiate(offers[:5], DeflateSettings()) is None


@pytest.mark.parametrize("params", [
    [("server_max_window_bits", "08")], [("server_max_window_bits", "16")],
    [("client_max_window_bits", "abc")], [("server_no_context_takeover", "1")],
])
def test_parameter_values(params):
    with pytest.raises(NegotiationError):
        parse_params(params, offer=True)


def test_client_offer_and_answers():
    settings = DeflateSettings(server_max_window_bits=12, client_no_context_takeover=False)
    assert client_offer(settings) == ("permessage-deflate; server_no_context_takeover;"
                                      " server_max_window_bits=12; client_max_window_bits")
    agreement = client_accept([(PMD, [("server_no_context_takeover", None),
                                      ("server_max_window_bits", "10"),
                                      ("client_max_window_bits", "8")])], settings)
    assert agreement.sending(True) == (8, False) and agreement.receiving(True) == (10, True)
    assert client_accept([], settings) is None


@pytest.mark.parametrize("answer", [
    [(PMD, [("server_no_context_takeover", None), ("server_max_window_bits", "13")])],
    [(PMD, [("server_max_window_bits", "10")])],               # ignored no_context_takeover
    [(PMD, [("server_no_context_takeover", None)])],           # ignored server_max_window_bits
    [(PMD, [("server_no_context_takeover", None), ("bogus", None)])],
    [(PMD, [("server_no_context_takeover", None), ("server_max_window_bits", "10")])] * 2,
])
def test_client_rejects_bad_answers(answer):
    with pytest.raises(InvalidResponse):
        client_accept(answer, DeflateSettings(server_max_window_bits=12))


def test_handshake_negotiates_end_to_end():
    client = ClientProtocol("h", "/", deflate=DeflateSettings(client_no_context_takeover=True))
    server = ServerProtocol(deflate=DeflateSettings(threshold=0))
    server.receive_data(client.data_to_send())
    server.events()
    server.accept()
    client.receive_data(server.data_to_send())
    assert client.deflate.client_no_context_takeover and server.deflate.server_no_context_takeover
    client.send("x" * 1000)
    wire = client.data_to_send()
    assert len(wire) < 100 and wire[0] & RSV1
    server.receive_data(wire)
    assert server.events() == [TextMessage("x" * 1000)]


def test_server_without_compression_ignores_offer():
    client = ClientProtocol("h", "/")
    server = ServerProtocol(deflate=None)
    server.receive_data(client.data_to_send())
    server.events()
    server.accept()
    client.receive_data(server.data_to_send())
    assert client.deflate is None and server.deflate is None


# --- the frame path --------------------------------------------------------------------------

def agreed(**kw):
    return server_negotiate(offer(*kw.pop("params", [])), DeflateSettings(**kw))[1]


def test_rfc7692_example_hello():
    # §7.2.3.1: "Hello" compressed with no context takeover is f2 48 cd c9 c9 07 00.
    assert codec.Deflater().compress(b"Hello", True).hex() == "f248cdc9c90700"
    inflater = codec.Inflater()
    assert inflater.decompress(bytes.fromhex("f248cdc9c90700"), 100) + inflater.finish(100) == b"Hello"


def test_rfc7692_example_shared_window():
    # §7.2.3.2: the second "Hello" with context takeover reuses the first.
    deflater = codec.Deflater()
    assert deflater.compress(b"Hello").hex() == "f248cdc9c90700"
    assert deflater.compress(b"Hello").hex() == "f200110000"


def test_threshold_and_opt_out():
    client = EventProtocol(True, deflate=agreed(threshold=100))
    client.send("short")
    assert not client.data_to_send()[0] & RSV1
    client.send("y" * 200)
    assert client.data_to_send()[0] & RSV1
    client.send(os.urandom(300), compress=False)
    assert not client.data_to_send()[0] & RSV1
    client.send("z", compress=True)
    assert client.data_to_send()[0] & RSV1


def test_fragmented_compressed_message():
    deflated = codec.Deflater().compress(b"fragmented " * 50, True)
    server = EventProtocol(False, deflate=agreed())
    server.receive_data(codec.client_frame(OP_TEXT, deflated[:10], fin=False, rsv=RSV1)
                        + codec.client_frame(OP_PING, b"") +
                        codec.client_frame(OP_CONT, deflated[10:]))
    assert server.events()[-1] == TextMessage("fragmented " * 50)


@pytest.mark.parametrize("wire", [
    codec.client_frame(OP_PING, b"", rsv=RSV1),                       # control frame
    codec.client_frame(OP_TEXT, b"\xf2", fin=False, rsv=RSV1)
    + codec.client_frame(OP_CONT, b"\x00", rsv=RSV1),                  # continuation
])
def test_rsv1_misuse_is_1002(wire):
    server = EventProtocol(False, deflate=agreed())
    server.receive_data(wire)
    server.data_to_send()
    assert server.close_code == 1002


def test_rsv1_without_negotiation_is_1002():
    server = EventProtocol(False)
    server.receive_data(codec.client_frame(OP_TEXT, b"\xf2\x00", rsv=RSV1))
    server.data_to_send()
    assert server.close_code == 1002


def test_corrupt_stream_fails_connection():
    server = EventProtocol(False, deflate=agreed())
    server.receive_data(codec.client_frame(OP_TEXT, b"\xff\xff\xff\xff", rsv=RSV1))
    server.data_to_send()
    assert server.close_code == 1002


@pytest.mark.parametrize("chunk", [None, 1000])
def test_decompression_bomb_stops_at_the_limit(chunk):
    bomb = codec.Deflater().compress(b"\0" * (64 << 20), True)  # 64 MiB -> ~65 KB
    server = EventProtocol(False, limits=Limits(max_message_size=1 << 20), deflate=agreed())
    wire = codec.client_frame(OP_TEXT, bomb, rsv=RSV1)
    for i in range(0, len(wire), chunk or len(wire)):
        server.receive_data(wire[i:i + (chunk or len(wire))])
        if server.state == 3:
            break
    server.data_to_send()
    assert server.close_code == 1009
    assert server._msg_buf is None  # released


def test_no_context_takeover_frees_inflater_after_each_message():
    server = EventProtocol(False, deflate=agreed(client_no_context_takeover=True, threshold=0))
    client = EventProtocol(True, deflate=server.deflate)
    client.send("a" * 500)
    server.receive_data(client.data_to_send())
    assert server.events() == [TextMessage("a" * 500)] and server._inflater is None


def test_shared_compressor_is_shared():
    a = EventProtocol(False, deflate=agreed(threshold=0))
    b = EventProtocol(False, deflate=agreed(threshold=0))
    a.send("same")
    b.send("same")
    assert a.data_to_send() == b.data_to_send()
    assert a._deflater is None and b._deflater is None  # the process-wide one was used


@pytest.mark.parametrize("bits", [8, 9, 12, 15])
def test_window_bits_round_trip(bits):
    agreement = agreed(params=[("server_max_window_bits", str(bits)),
                               ("client_max_window_bits", str(bits))],
                       server_no_context_takeover=False, threshold=0)
    client, server = EventProtocol(True, deflate=agreement), EventProtocol(False, deflate=agreement)
    text = open(__file__).read()
    for _ in range(3):
        client.send(text)
        server.receive_data(client.data_to_send())
        assert server.events() == [TextMessage(text)]
        server.send(text.encode())
        client.receive_data(server.data_to_send())
        assert client.events() == [BinaryMessage(text.encode())]


def test_window_8_output_inflates_with_a_256_byte_window():
    data = os.urandom(200) * 20 + b"tail" * 500
    compressed = codec.Deflater(8).compress(data)
    strict = zlib.decompressobj(-8)  # zlib's inflate does accept 8 bits
    assert strict.decompress(compressed + ref_deflate.TAIL) == data


# --- compiled and pure agree -------------------------------------------------------------

@requires_compiled
@settings(max_examples=80)
@given(st.lists(st.binary(max_size=3000) | st.text(max_size=500).map(str.encode), max_size=4),
       st.sampled_from([8, 9, 12, 15]), st.sampled_from([1, 5, 9]), st.sampled_from([-1, 1, 9]),
       st.booleans())
def test_compiled_and_pure_deflate_agree(messages, bits, mem_level, level, reset):
    from wsframe._compiled import deflate as compiled
    fast, slow = compiled.Deflater(bits, mem_level, level), ref_deflate.Deflater(bits, mem_level, level)
    fast_in, slow_in = compiled.Inflater(bits), ref_deflate.Inflater(bits)
    for message in messages:
        packed = fast.compress(message, reset)
        assert packed == slow.compress(message, reset)
        for inflater in (fast_in, slow_in):
            assert inflater.decompress(packed, 1 << 20) + inflater.finish(1 << 20, reset) == message


@requires_compiled
@settings(max_examples=200)
@given(st.binary(max_size=200), st.integers(0, 300))
def test_compiled_and_pure_inflate_agree_on_garbage(data, limit):
    from wsframe._compiled import deflate as compiled

    def outcome(inflater):
        try:
            return inflater.decompress(data, limit) + inflater.finish(limit)
        except Exception as exc:
            return type(exc), getattr(exc, "close_code", None)
    assert outcome(compiled.Inflater()) == outcome(ref_deflate.Inflater())


def test_parse_frames_sees_rsv1():
    [frame] = parse_frames(codec.server_frame(OP_TEXT, b"\xf2\x00", rsv=RSV1),
                           require_mask=False, allowed_rsv=RSV1)
    assert frame.rsv == RSV1
