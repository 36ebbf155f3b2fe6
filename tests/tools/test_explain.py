"""``wsframe explain`` and live tracing: the teaching tools.

Assertions are on meaningful substrings (field values, sections, close
codes), not on whole outputs, so the wording can improve without churn.
"""
import argparse
import io
import socket
import urllib.request

import pytest

from tests.helpers import RawPeer, running_server, wait_for
from wsframe.server.apps import install_builtin_app
from wsframe.client.blocking import connect
from wsframe.tools.explain import (
    add_explain_parser, explain_accept_key, explain_frames, explain_head, explain_main, parse_hex,
    trace_client, trace_server,
)
from wsframe.codec.frames import build_frame
from wsframe.loop.eventloop import Loop
from wsframe.codec.permessage_deflate import Agreement
from wsframe.client.reconnecting import ReconnectingClient
from wsframe.tools.trace import FrameAnnotator

HELLO = "48656c6c6f"


def frames(hex_text, **kwargs):
    return explain_frames(bytes.fromhex(hex_text), **kwargs)


# --- the RFC 6455 §5.7 examples ------------------------------------------------------


def test_unmasked_text_frame():
    out = frames("810548656c6c6f")
    assert "1000 0001  0000 0101" in out          # the first two bytes, bit by bit
    assert "FIN = 1" in out
    assert "opcode = 0x1 (text)" in out and "§5.6" in out
    assert "MASK = 0" in out and "§5.1" in out
    assert "payload len = 5" in out and "7-bit form" in out
    assert "48 65 6c 6c 6f" in out
    assert 'text: "Hello"' in out
    assert "PROBLEM" not in out
    assert "no problems found" in out


def test_masked_text_frame():
    out = frames("818537fa213d7f9f4d5158")
    assert "1000 0001  1000 0101" in out
    assert "MASK = 1" in out and "sent by a client" in out
    assert "masking key, bytes 2-5: 37 fa 21 3d" in out and "§5.3" in out
    assert "masked:   7f 9f 4d 51 58" in out
    assert "unmasked: 48 65 6c 6c 6f" in out
    assert '"Hello"' in out
    assert "no problems found" in out


def test_fragmented_text_message():
    out = frames("010348656c" + "80026c6f")
    assert "Frame 1 at byte 0" in out and "Frame 2 at byte 5" in out
    assert "FIN = 0: more fragments" in out and "§5.4" in out
    assert "opcode = 0x0 (continuation)" in out
    assert '"Hel"' in out and '"lo"' in out
    assert 'message complete: text, 5 bytes (2 frames): "Hello"' in out
    assert "2 frames, 1 complete message; no problems found" in out


def test_ping_and_masked_pong():
    ping = frames("890548656c6c6f")
    assert "opcode = 0x9 (ping)" in ping and "§5.5.2" in ping
    assert "control frames are never fragmented (§5.5)" in ping
    assert '"Hello"' in ping and "Pong" in ping
    pong = frames("8a8537fa213d7f9f4d5158")
    assert "opcode = 0xa (pong)" in pong and "§5.5.3" in pong
    assert "MASK = 1" in pong and "unmasked: 48 65 6c 6c 6f" in pong
    assert "no problems found" in ping and "no problems found" in pong


def test_256_byte_binary_uses_16_bit_length():
    payload = bytes(range(256))
    out = explain_frames(bytes.fromhex("827e0100") + payload)
    assert "0111 1110" in out                      # 126 in the 7-bit field
    assert "16-bit extended length follows" in out
    assert "extended payload length, bytes 2-3: 256" in out
    assert "00 01 02 03" in out and "224 more bytes" in out   # abbreviated with a count
    assert "no problems found" in out


def test_64_kib_binary_uses_64_bit_length():
    out = explain_frames(bytes.fromhex("827f0000000000010000") + bytes(65536))
    assert "0111 1111" in out                      # 127
    assert "64-bit extended length follows" in out
    assert "bytes 2-9: 65536" in out
    assert "65504 more bytes" in out
    assert "no problems found" in out


def test_several_frames_and_offsets():
    out = frames("810548656c6c6f" + "818537fa213d7f9f4d5158")
    assert "Frame 2 at byte 7" in out
    assert "masking key, bytes 9-12" in out
    assert "2 frames, 2 complete messages" in out


# --- the accept key ---------------------------------------------------------------------


def test_accept_key_walkthrough():
    out = explain_accept_key("dGhlIHNhbXBsZSBub25jZQ==")
    assert "valid: base64 of 16 bytes" in out
    assert "dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11" in out
    assert "b3 7a 4f 2c c0 62 4f 16 90 f6 46 06 cf 38 59 45 b2 be c4 ea" in out  # SHA-1
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in out
    assert "§1.3" in out and "§4.2.2" in out


def test_accept_key_invalid_key():
    out = explain_accept_key("not-a-key")
    assert "PROBLEM" in out and "400" in out and "§4.2.1" in out
    assert "Sec-WebSocket-Accept:" in out  # the computation is still shown


# --- malformed frames -------------------------------------------------------------------


@pytest.mark.parametrize("hex_text, expected", [
    ("897e007e" + "00" * 126, ["control frame with a 16-bit payload length", "§5.5",
                               "close 1002"]),
    ("0900", ["fragmented control frame (§5.5)", "close 1002"]),
    ("830548656c6c6f", ["reserved opcode 0x3 (§5.2)", "close 1002",
                        "opcode = 0x3 (reserved non-control)"]),
    ("8b00", ["reserved opcode 0xb (§5.2)", "(reserved control)"]),
    ("c10548656c6c6f", ["reserved bits 0x40 set without an extension (§5.2)", "close 1002",
                        "--inflate", "RFC 7692 §6"]),
    ("a10548656c6c6f", ["reserved bits 0x20", "RSV2 = 1"]),
    ("827f8000000000000000", ["64-bit length with its top bit set (§5.2)", "close 1002"]),
    ("880103", ["close frame with a 1-byte payload (§5.5.1)", "close 1002"]),
    ("880203ed", ["invalid close code 1005 (§7.4)", "close 1002", "No Status Received"]),
    ("880203e7", ["invalid close code 999 (§7.4)"]),
    ("880403e8c328", ["close reason is not valid UTF-8", "close 1007"]),
    ("8102c328", ["invalid UTF-8 in a text message (§8.1)", "close 1007"]),
    ("0101e2" + "8001" + "82", ["invalid UTF-8 in a text message (§8.1)", "1007"]),
    ("800161", ["continuation frame with no message to continue (§5.4)", "close 1002"]),
    ("0101618101" + "62", ["new message inside a fragmented one (§5.4)", "§5.4"]),
    ("817e000548656c6c6f", ["length 5 sent in the 16-bit form", "minimal", "§5.2"]),
])
def test_malformed_frames(hex_text, expected):
    out = frames(hex_text)
    for text in expected:
        assert text in out, text
    assert "no problems found" not in out


@pytest.mark.parametrize("hex_text, expected", [
    ("8105486565", ["INCOMPLETE: 2 more bytes needed", "payload has 3 of 5 bytes",
                    "frame 1's payload"]),
    ("81", ["INCOMPLETE: at least 1 more byte needed", "opcode 0x1 (text)"]),
    ("81fe00", ["INCOMPLETE: 5 more bytes needed to complete the frame header",
                "payload len = 126: a 16-bit length follows", "1 of 2 bytes in (00)",
                "masking key: 0 of 4 bytes in"]),
    ("8103ceba", ["INCOMPLETE: 1 more byte needed (payload has 2 of 3 bytes)"]),
])
def test_truncated_input_is_not_a_problem(hex_text, expected):
    # Issue 10, defect 8: an endpoint waits for the rest, it fails nothing.
    out = frames(hex_text)
    for text in expected:
        assert text in out, text
    assert "no problems found" in out and "PROBLEM" not in out
    assert "an endpoint waits" in out and "fails the connection" not in out


def test_partial_header_that_already_breaks_a_rule():
    # 89 fe: a Ping whose 7-bit length is 126 breaks §5.5 at byte 1; the rest need not arrive.
    out = frames("89fe00ff")
    assert "PROBLEM: control frame with a 16-bit payload length" in out
    assert "decided at byte 1" in out and "close 1002" in out
    assert "opcode 0x9 (ping)" in out and "MASK=1" in out
    assert "extended payload length: 2 of 2 bytes in (00 ff) = 255" in out
    assert "1 problem (an endpoint fails the connection" in out
    assert "waits" not in out
    assert "decided at byte 0" in frames("09")                      # a fragmented Ping
    assert "decided at byte 2" in frames("827f80")                  # 64-bit length, top bit
    assert "no problems found" in frames("827f00ff")               # still fine so far


def test_violation_first_then_fields_still_shown():
    out = frames("897e007e" + "00" * 126)
    problem = out.index("PROBLEM: control frame")
    assert problem < out.index("1000 1001  0111 1110") < out.index("payload len = 126")
    assert "extended payload length, bytes 2-3: 126" in out


def test_role_decides_the_mask_rule():
    assert "unmasked frame from a client (§5.1)" in frames("810548656c6c6f", role="client")
    assert "masked frame from a server (§5.1)" in frames("818537fa213d7f9f4d5158", role="server")
    assert "no problems found" in frames("818537fa213d7f9f4d5158", role="client")
    with pytest.raises(ValueError):
        frames("8100", role="proxy")


def test_close_frame_fields():
    out = frames("880403e8" + b"by".hex())
    assert "close code: 1000 (Normal Closure" in out
    assert 'close reason: "by"' in out
    assert "no status code; the receiver reports 1005 (§7.1.5)" in frames("8800")


def test_interleaved_control_frame_is_fine():
    out = frames("010348656c" + "8900" + "80026c6f")
    assert "no problems found" in out and '"Hello"' in out


def test_annotator_reads_any_split():
    data = bytes.fromhex("010348656c" + "898100000000" "00" + "80026c6f" + "8105486565")
    whole = FrameAnnotator()
    expected = whole.feed(data) + whole.finish()
    piecewise = FrameAnnotator()
    lines = []
    for i in range(len(data)):
        lines += piecewise.feed(data[i:i + 1])
    lines += piecewise.finish()
    assert lines == expected
    assert piecewise.problems == []  # a truncated last frame is no problem: a receiver waits
    assert "frame 4's payload" in piecewise.truncated


# --- permessage-deflate ------------------------------------------------------------------


def test_inflate_rfc7692_example():
    out = frames("c107f248cdc9c90700", inflate={"window_bits": 15})
    assert "RSV1 = 1: compressed message (permessage-deflate, RFC 7692 §6)" in out
    assert "f2 48 cd c9 c9 07 00" in out
    assert "00 00 ff ff" in out and "RFC 7692 §7.2.2" in out
    assert 'message complete: text, 5 bytes' in out and '"Hello"' in out
    assert "no problems found" in out


def test_inflate_with_an_agreement():
    agreement = Agreement(server_no_context_takeover=True, client_no_context_takeover=False,
                          server_max_window_bits=15, client_max_window_bits=15,
                          level=6, mem_level=8, threshold=0)
    out = frames("c107f248cdc9c90700", inflate=agreement)
    assert '"Hello"' in out and "no problems found" in out


def test_context_takeover_shares_the_window():
    # RFC 7692 §7.2.3.2: the second "Hello" refers back into the first.
    two = "c107f248cdc9c90700" + "c105f200110000"
    kept = frames(two, inflate={"window_bits": 15})
    assert kept.count('"Hello"') == 2 and "no problems found" in kept
    fresh = frames(two, inflate={"window_bits": 15, "no_context_takeover": True})
    assert "invalid compressed data" in fresh and "RFC 7692 §8" in fresh


def test_rsv1_on_control_frame_under_deflate():
    out = frames("c900", inflate={})
    assert "RSV1 on a control frame (RFC 7692 §6.1)" in out


def test_fragmented_compressed_message():
    out = frames("4103f248cd" + "8004c9c90700", inflate={"window_bits": 15})
    assert 'message complete: text, 5 bytes (2 frames' in out and '"Hello"' in out
    assert "no problems found" in out


def test_bad_inflate_params():
    with pytest.raises(ValueError):
        frames("8100", inflate={"window_bits": 7})
    with pytest.raises(ValueError):
        frames("8100", inflate={"bits": 15})


# --- handshake heads ---------------------------------------------------------------------

GOOD_REQUEST = (
    "GET /chat HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Protocol: chat, superchat\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n")

GOOD_RESPONSE = (
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "Sec-WebSocket-Protocol: chat\r\n\r\n")


def test_head_good_request():
    out = explain_head(GOOD_REQUEST)
    assert out.startswith("Request head")
    assert "BAD" not in out
    assert "§4.2.1 item 5" in out and "§4.1 item 8" in out
    assert "Verdict: a server accepts it" in out
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in out


def test_head_bad_request():
    text = ("POST /chat HTTP/1.0\r\nHost: a\r\nHost: b\r\nUpgrade: h2c\r\n"
            "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 8\r\nBad Name: x\r\n\r\n")
    out = explain_head(text)
    assert "the method must be GET" in out and "at least 1.1" in out
    assert "sent more than once" in out
    assert "must include 'websocket'" in out
    assert "not base64 of 16 bytes" in out
    assert "426 Upgrade Required" in out and "§4.4" in out
    assert "not a token" in out
    assert "(no Connection header)" in out
    assert "Verdict: a server refuses it: 400" in out


def test_head_wrong_version_gets_426():
    out = explain_head(GOOD_REQUEST.replace("Version: 13", "Version: 8"))
    assert "Verdict: a server refuses it: 426" in out


def test_head_response_alone_cannot_verify_the_key():
    out = explain_head(GOOD_RESPONSE)
    assert out.startswith("Response head")
    assert "cannot be verified" in out
    assert "Verdict: a client accepts it if" in out


def test_head_response_checked_against_a_key():
    assert "Verdict: a client accepts it:" in explain_head(
        GOOD_RESPONSE, key="dGhlIHNhbXBsZSBub25jZQ==")
    out = explain_head(GOOD_RESPONSE, key="AAAAAAAAAAAAAAAAAAAAAA==")
    assert "does not match the key" in out and "Verdict: a client fails the connection" in out


def test_head_request_and_response_together():
    out = explain_head(GOOD_REQUEST + GOOD_RESPONSE.replace("chat\r\n", "other\r\n"))
    assert "Request head" in out and "Response head" in out
    assert "matches base64(SHA-1(" in out
    assert "not one the client offered" in out  # "other" was not offered


def test_head_refused_response_and_lf_lines():
    out = explain_head("HTTP/1.1 403 Forbidden\nContent-Length: 0\n")
    assert "not 101" in out and "refused the upgrade" in out
    assert "LF, not CRLF" in out


# --- the command line --------------------------------------------------------------------


def run_cli(argv, capsys, stdin=None, monkeypatch=None):
    parser = argparse.ArgumentParser(prog="wsframe")
    add_explain_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["explain", *argv])
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = explain_main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_hex_arguments(capsys):
    code, out, _ = run_cli(["81:05", "48 65", "0x6c", "6c6f"], capsys)
    assert code == 0 and '"Hello"' in out


def test_cli_bad_frame_exits_1(capsys):
    code, out, _ = run_cli(["880103"], capsys)
    assert code == 1 and "1-byte payload" in out


def test_cli_partial_header_exit_codes(capsys):
    code, out, _ = run_cli(["89fe00ff"], capsys)   # already invalid at byte 1
    assert code == 1 and "decided at byte 1" in out
    code, out, _ = run_cli(["81fe00"], capsys)     # only truncated: nothing wrong
    assert code == 0 and "INCOMPLETE" in out


def test_cli_bad_hex_exits_2(capsys):
    code, _, err = run_cli(["81 0"], capsys)
    assert code == 2 and "odd number" in err
    code, _, err = run_cli(["zz"], capsys)
    assert code == 2 and "not hex" in err
    code, _, err = run_cli([""], capsys)
    assert code == 2 and "no bytes" in err


def test_cli_stdin(capsys, monkeypatch):
    code, out, _ = run_cli([], capsys, stdin="81 05 48 65 6c\n6c 6f\n", monkeypatch=monkeypatch)
    assert code == 0 and '"Hello"' in out


def test_cli_files(capsys, tmp_path):
    raw = tmp_path / "frame.bin"
    raw.write_bytes(bytes.fromhex("818537fa213d7f9f4d5158"))
    code, out, _ = run_cli(["--file", str(raw)], capsys)
    assert code == 0 and "MASK = 1" in out and '"Hello"' in out
    hexfile = tmp_path / "frame.hex"
    hexfile.write_text("81 05\n48 65 6c 6c 6f\n")
    code, out, _ = run_cli(["--file", str(hexfile), "--hex-file"], capsys)
    assert code == 0 and '"Hello"' in out
    code, _, err = run_cli(["--file", str(tmp_path / "missing")], capsys)
    assert code == 2


def test_cli_handshake(capsys):
    code, out, _ = run_cli(["--handshake", "dGhlIHNhbXBsZSBub25jZQ=="], capsys)
    assert code == 0 and "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in out
    code, out, _ = run_cli(["--handshake", "abc"], capsys)
    assert code == 1


def test_cli_head(capsys, tmp_path, monkeypatch):
    path = tmp_path / "head.txt"
    path.write_text(GOOD_REQUEST)
    code, out, _ = run_cli(["--head", "--file", str(path)], capsys)
    assert code == 0 and "a server accepts it" in out
    code, out, _ = run_cli(["--head"], capsys, stdin="GET / HTTP/1.1\nHost: x\n",
                           monkeypatch=monkeypatch)
    assert code == 1 and "a server refuses it" in out
    code, out, _ = run_cli(["--head", "--handshake", "dGhlIHNhbXBsZSBub25jZQ==", "--file",
                            str(path)], capsys)
    assert code == 0


def test_cli_head_response_with_key(capsys, monkeypatch):
    code, out, _ = run_cli(["--head", "--handshake", "dGhlIHNhbXBsZSBub25jZQ=="], capsys,
                           stdin=GOOD_RESPONSE, monkeypatch=monkeypatch)
    assert code == 0 and "Verdict: a client accepts it:" in out


def test_cli_inflate(capsys):
    code, out, _ = run_cli(["--inflate", "c107f248cdc9c90700"], capsys)
    assert code == 0 and '"Hello"' in out
    code, out, _ = run_cli(["--inflate", "--window-bits", "9", "--no-context-takeover",
                            "c107f248cdc9c90700"], capsys)
    assert code == 0 and "9-bit window, no context takeover" in out
    code, out, _ = run_cli(["c107f248cdc9c90700"], capsys)
    assert code == 1 and "reserved bits 0x40" in out


def test_cli_role(capsys):
    code, out, _ = run_cli(["--role", "client", "810548656c6c6f"], capsys)
    assert code == 1 and "unmasked frame from a client" in out


def test_parse_hex():
    assert parse_hex("0x81 0x05, 48:65\n6c") == bytes.fromhex("81054865 6c")
    with pytest.raises(ValueError):
        parse_hex("abc")


# --- live tracing ---------------------------------------------------------------------------


def traced_server(buffer):
    def configure(server):
        install_builtin_app(server)
        trace_server(server, out=buffer)
    return running_server(configure)


def conn_lines(text, arrow):
    return [line for line in text.splitlines() if f" {arrow}] " in line]


def test_trace_server_echo_session():
    buffer = io.StringIO()
    with traced_server(buffer) as (server, port):
        ws = connect(f"ws://127.0.0.1:{port}/echo")
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.close()
        assert wait_for(lambda: "connection closed" in buffer.getvalue())
    text = buffer.getvalue()
    received, sent = conn_lines(text, "<-"), conn_lines(text, "->")
    assert any("GET /echo HTTP/1.1" in line for line in received)
    assert any("Sec-WebSocket-Key:" in line for line in received)
    assert any("HTTP/1.1 101 Switching Protocols" in line for line in sent)
    assert "Sec-WebSocket-Accept matches the key" in text
    # the masked text frame in, the unmasked echo out
    assert any("text FIN=1" in line and "MASK=1" in line and "key=" in line for line in received)
    assert any('text: "hello"' in line for line in received)
    assert any("text FIN=1" in line and "MASK=0" in line for line in sent)
    assert any('text: "hello"' in line for line in sent)
    # the closing handshake, both ways
    assert any("close FIN=1" in line and "MASK=1" in line for line in received)
    assert any("close FIN=1" in line and "MASK=0" in line for line in sent)
    assert any("close code: 1000" in line for line in received)
    assert any("close code: 1000" in line for line in sent)
    assert "[conn 1] connection closed: 1000" in text
    assert "PROBLEM" not in text
    # order: the frame in is printed before its echo goes out
    assert text.index('<-]   text: "hello"') < text.index('->]   text: "hello"')


def test_trace_server_shows_violation_and_keeps_behaviour():
    buffer = io.StringIO()
    with traced_server(buffer) as (server, port):
        peer = RawPeer(port)
        peer.sock.sendall(build_frame(1, b"hi"))  # unmasked: §5.1 says close 1002
        found = peer.frames(until=lambda fs: any(f.opcode == 8 for f in fs))
        peer.close()
        assert wait_for(lambda: "connection closed" in buffer.getvalue())
    close = [f for f in found if f.opcode == 8][0]
    assert close.payload[:2] == (1002).to_bytes(2, "big")   # the protocol is unchanged
    text = buffer.getvalue()
    assert "PROBLEM: unmasked frame from a client (§5.1) -> close 1002" in text
    assert any("close code: 1002" in line for line in conn_lines(text, "->"))


def test_trace_server_compressed_messages():
    buffer = io.StringIO()
    with traced_server(buffer) as (server, port):
        ws = connect(f"ws://127.0.0.1:{port}/")
        ws.send("x" * 300)                       # over the threshold: compressed
        assert ws.recv(timeout=5) == "x" * 300
        ws.close()
        assert wait_for(lambda: "connection closed" in buffer.getvalue())
    text = buffer.getvalue()
    assert "permessage-deflate agreed" in text
    assert "RSV=100" in text
    assert "inflated from" in text and "to 300 bytes" in text
    assert "PROBLEM" not in text


def test_trace_server_plain_http():
    buffer = io.StringIO()
    with traced_server(buffer) as (server, port):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.status == 200
        assert wait_for(lambda: "connection closed" in buffer.getvalue())
    text = buffer.getvalue()
    assert "GET /health HTTP/1.1" in text and "not a WebSocket upgrade" in text
    assert "HTTP/1.1 200 OK" in text and "a plain HTTP response" in text


def test_trace_client():
    buffer = io.StringIO()
    with running_server(install_builtin_app) as (server, port):
        loop = Loop(tick_interval=0.05)
        got = []

        def on_message(client, message):
            got.append(message)
            client.close()

        client = ReconnectingClient(f"ws://127.0.0.1:{port}/", loop=loop, reconnect=None,
                        on_open=lambda c: c.send("hi"), on_message=on_message,
                        ping_interval=None)
        trace_client(client, out=buffer)
        client.start()
        loop.call_later(5.0, loop.stop)
        loop.run(until=lambda: client._conn is None)
        loop.close()
    assert got == ["hi"]
    text = buffer.getvalue()
    sent, received = conn_lines(text, "->"), conn_lines(text, "<-")
    assert any(line.endswith("] GET / HTTP/1.1") for line in sent)
    assert any("HTTP/1.1 101 Switching Protocols" in line for line in received)
    assert "Sec-WebSocket-Accept matches the key" in text
    assert any("text FIN=1" in line and "MASK=1" in line for line in sent)
    assert any("text FIN=1" in line and "MASK=0" in line for line in received)
    assert any("close FIN=1" in line for line in sent)
    assert any("close FIN=1" in line for line in received)


def test_trace_twice_is_harmless():
    from wsframe.server.server import Server

    server = Server()
    try:
        trace_server(server, out=io.StringIO())
        first = server.conn_class
        trace_server(server, out=io.StringIO())
        assert server.conn_class is first
        assert "_trace" in first.__slots__
    finally:
        server.loop.close()


def test_trace_survives_garbage_after_handshake():
    buffer = io.StringIO()
    with traced_server(buffer) as (server, port):
        peer = RawPeer(port)
        peer.sock.sendall(b"\x81")                 # half a header, then EOF
        peer.sock.shutdown(socket.SHUT_WR)
        peer.frames(timeout=2)
        peer.close()
        assert wait_for(lambda: "connection closed" in buffer.getvalue())
    assert "trace error" not in buffer.getvalue()


def test_trace_server_refused_upgrade():
    buffer = io.StringIO()
    with traced_server(buffer) as (server, port):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")  # no key
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")
        sock.close()
        assert wait_for(lambda: "connection closed" in buffer.getvalue())
    text = buffer.getvalue()
    assert "invalid upgrade request: a server answers 400" in text
    assert "handshake refused: 400 Bad Request" in text
    assert 'bytes of body, not WebSocket frames: "exactly one Sec-WebSocket-Key' in text
    assert "(no WebSocket was opened)" in text


def test_tutorial_explain_examples_say_what_the_tutorial_says():
    # Issue 10: the tutorial called 8103ceba "cut in the middle of a UTF-8 character",
    # but its two payload bytes are a whole "κ" (the frame is merely incomplete).
    import os
    import re
    tutorial = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "tutorial.md"),
                    encoding="utf-8").read()
    examples = set(re.findall(r"`wsframe explain ([0-9a-f]+)`", tutorial))
    assert {"8102e282", "8103e282", "89fe00ff"} <= examples
    assert "8103ceba" not in examples
    cut = frames("8102e282")
    assert "invalid UTF-8 in a text message" in cut and "1007" in cut
    waiting = frames("8103e282")
    assert "no problems found" in waiting and "an endpoint waits" in waiting
    assert "decided at byte 1" in frames("89fe00ff")
