"""``wsframe explain``: the wire protocol, byte by byte, for people learning it.

* :func:`explain_frames`: every frame in some bytes, each field with its
  bits, meaning and RFC 6455 section, the payload unmasked (and inflated,
  RFC 7692), and what is wrong, with the close code an endpoint would fail
  the connection with.
* :func:`explain_accept_key`: the ``Sec-WebSocket-Accept`` computation,
  step by step (§1.3, §4.2.2).
* :func:`explain_head`: an opening-handshake request or response, line by
  line, with a verdict (§4.1, §4.2.1, §4.2.2; RFC 7230).
* :func:`add_explain_parser` / :func:`explain_main`: the ``explain``
  subcommand.

The live ``--trace`` of ``wsframe serve`` / ``connect`` lives in
:mod:`wsframe.tools.trace`; :func:`trace_server` and :func:`trace_client` are
re-exported here.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import re
import sys
from http import HTTPStatus
from typing import Any, Optional

from wsframe.errors import InvalidRequest, InvalidResponse
from wsframe.codec.handshake import (
    GUID, accept_key, check_response, check_upgrade_request, is_upgrade_request,
    read_request, read_response,
)
from wsframe.codec.http import (
    Headers, HttpSyntaxError, Response, is_token, parse_parameterized_list, parse_request,
    parse_response, parse_token_list,
)
from wsframe.codec.permessage_deflate import NegotiationError, parse_params
from wsframe.tools.trace import FrameAnnotator, InflateParams, Problem, trace_client, trace_server

__all__ = ["explain_frames", "explain_accept_key", "explain_head", "parse_hex",
           "add_explain_parser", "explain_main", "trace_server", "trace_client"]


# --- frames -------------------------------------------------------------------------


def parse_hex(text: str) -> bytes:
    """``"81 05 48:65"``, ``"0x81 0x05"`` ... -> bytes; raises ``ValueError`` if not hex."""
    tokens = [t[2:] if t[:2].lower() == "0x" else t for t in re.split(r"[\s:,]+", text)]
    digits = "".join(tokens)
    if not re.fullmatch(r"[0-9a-fA-F]*", digits):
        bad = re.search(r"[^0-9a-fA-F]", digits).group()
        raise ValueError(f"not hex: {bad!r}")
    if len(digits) % 2:
        raise ValueError(f"an odd number of hex digits ({len(digits)})")
    return bytes.fromhex(digits)


def _inflate_params(inflate: Any) -> dict[str, InflateParams]:
    """Per-sender (window bits, no context takeover) from a dict or an Agreement-like object.

    ``{"window_bits": 15, "no_context_takeover": False}`` applies to both
    senders; an :class:`~wsframe.codec.permessage_deflate.Agreement` (or a dict of
    its ``client_*`` / ``server_*`` names) gives each sender its own.
    """
    if inflate is None or inflate is False:
        return {}
    if inflate is True:
        inflate = {}
    if not isinstance(inflate, dict):
        inflate = {name: getattr(inflate, name) for name in (
            "client_max_window_bits", "client_no_context_takeover",
            "server_max_window_bits", "server_no_context_takeover") if hasattr(inflate, name)}
    simple = {"window_bits", "no_context_takeover"}
    named = {"client_max_window_bits", "client_no_context_takeover",
             "server_max_window_bits", "server_no_context_takeover"}
    unknown = set(inflate) - simple - named
    if unknown or (set(inflate) & simple and set(inflate) & named):
        raise ValueError(f"inflate takes window_bits / no_context_takeover or the "
                         f"client_* / server_* parameters of RFC 7692 §7.1, not {sorted(inflate)}")
    params = {}
    for sender in ("client", "server"):
        bits = inflate.get("window_bits", inflate.get(f"{sender}_max_window_bits")) or 15
        if not isinstance(bits, int) or not 8 <= bits <= 15:
            raise ValueError("window bits must be 8-15 (RFC 7692 §7.1.2)")
        no_takeover = inflate.get("no_context_takeover",
                                  inflate.get(f"{sender}_no_context_takeover", False))
        params[sender] = (bits, bool(no_takeover))
    return params


def explain_frames(data: bytes, *, inflate: Any = None, role: Optional[str] = None) -> str:
    """Decode every frame in ``data``: each field, its bits, meaning and RFC section.

    ``role``: who sent the frames, ``"client"`` (they must be masked) or
    ``"server"`` (they must not be, §5.1); by default each frame's sender is
    guessed from its MASK bit. ``inflate``: permessage-deflate parameters
    (a dict ``{"window_bits": 15, "no_context_takeover": False}`` or an
    :class:`~wsframe.codec.permessage_deflate.Agreement`); RSV1 messages are then
    inflated (RFC 7692 §7.2.2), consecutive ones sharing the window unless
    no context takeover was agreed.
    """
    return _explain_frames(data, inflate, role)[0]


def _explain_frames(data: bytes, inflate: Any, role: Optional[str]) -> tuple[str, list[Problem]]:
    params = _inflate_params(inflate)
    annotator = FrameAnnotator(sender=role, inflate=params, verbose=True)
    if role is None:
        intro = ("each frame's sender is guessed from its MASK bit: clients mask, "
                 "servers do not (§5.1)")
    else:
        intro = f"sent by the {role}: {'masked' if role == 'client' else 'unmasked'} (§5.1)"
    lines = [f"{len(data)} bytes, {intro}"]
    if params:
        lines += [f"permessage-deflate: the {sender} compresses with a {bits}-bit window, "
                  f"{'no context takeover' if fresh else 'context kept between messages'} "
                  "(RFC 7692 §7.1)" for sender, (bits, fresh) in params.items()]
    for line in annotator.feed(data) + annotator.finish():
        if line.startswith("Frame "):
            lines.append("")
        lines.append(line)
    problems = annotator.problems
    summary = (f"{annotator.frames} frame{'s' * (annotator.frames != 1)}, "
               f"{annotator.messages} complete message{'s' * (annotator.messages != 1)}; ")
    if problems:
        summary += (f"{len(problems)} problem{'s' * (len(problems) != 1)} (an endpoint fails the "
                    "connection at the first one, §7.1.7)")
    else:
        summary += "no problems found"
    if annotator.truncated and problems:
        summary += f"; {annotator.truncated}"
    elif annotator.truncated:  # not a problem: a receiver waits for the rest
        summary += f"; {annotator.truncated}, where an endpoint waits for more"
    lines += ["", f"Summary: {summary}"]
    return "\n".join(lines), problems


# --- the accept key ---------------------------------------------------------------------


def explain_accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` computation for ``key``, step by step (§1.3, §4.2.2)."""
    return _explain_accept_key(key)[0]


def _key_bytes(key: str) -> Optional[bytes]:
    """The 16 bytes a valid Sec-WebSocket-Key encodes, else ``None`` (§4.1 item 7)."""
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None
    return raw if len(raw) == 16 else None


def _explain_accept_key(key: str) -> tuple[str, bool]:
    stripped = key.strip(" \t")
    lines = [f"Sec-WebSocket-Accept for Sec-WebSocket-Key: {stripped} (§1.3, §4.2.2)"]
    if stripped != key:
        lines.append("   (surrounding whitespace ignored, §4.1 item 4 of the client's checks)")
    raw = _key_bytes(stripped)
    lines.append(f"1. the key: {stripped!r}, {len(stripped)} characters")
    if raw is not None:
        lines.append(f"   valid: base64 of 16 bytes, {raw.hex(' ')} (§4.1 item 7, §4.2.1 item 5)")
    else:
        try:
            length = len(base64.b64decode(stripped.encode("ascii"), validate=True))
            why = f"it decodes to {length} bytes"
        except (binascii.Error, UnicodeEncodeError):
            why = "it is not base64"
        lines.append(f"   PROBLEM: not a valid key, {why}; it must be base64 of 16 random bytes "
                     "(§4.1 item 7): a server answers 400 Bad Request (§4.2.1 item 5)")
    joined = stripped + GUID
    lines.append(f"2. append the GUID {GUID} (§1.3): the key is used as text, not decoded:")
    lines.append(f"   {joined}")
    try:
        digest = hashlib.sha1(joined.encode("ascii")).digest()
    except UnicodeEncodeError:
        lines.append("   PROBLEM: the key is not ASCII: no accept value can be computed")
        return "\n".join(lines), False
    lines.append(f"3. SHA-1 of those {len(joined)} ASCII bytes, a 20-byte digest:")
    lines.append(f"   {digest.hex(' ')}")
    accept = base64.b64encode(digest).decode("ascii")
    lines.append(f"4. base64 of the digest: {accept}")
    lines.append(f"=> the server answers: Sec-WebSocket-Accept: {accept} (§4.2.2 item 5.4)")
    return "\n".join(lines), raw is not None


# --- handshake heads ------------------------------------------------------------------

_REQUEST_HEADERS = {
    "host": "the server's host[:port] (§4.1 item 4, §4.2.1 item 2)",
    "upgrade": "the protocol to switch to (§4.1 item 5, §4.2.1 item 3)",
    "connection": "hop-by-hop options: 'Upgrade' asks this hop to switch (§4.1 item 6, "
                  "§4.2.1 item 4; RFC 7230 §6.1)",
    "sec-websocket-key": "a random 16-byte nonce, base64 (§4.1 item 7, §4.2.1 item 5)",
    "sec-websocket-version": "the protocol version: 13 (§4.1 item 9, §4.2.1 item 6)",
    "origin": "where the script opening the connection comes from: browsers send it "
              "(§4.1 item 8); a server may refuse origins it does not trust (§10.2)",
    "sec-websocket-protocol": "subprotocols offered, in order of preference (§4.1 item 10, "
                              "§11.3.4); the server picks at most one",
    "sec-websocket-extensions": "extensions offered, in order of preference (§4.1 item 11, §9.1)",
}
_RESPONSE_HEADERS = {
    "upgrade": "must be 'websocket' (§4.2.2 item 5.2; the client checks it, §4.1 item 2)",
    "connection": "must include 'Upgrade' (§4.2.2 item 5.3; checked by the client, §4.1 item 3)",
    "sec-websocket-accept": "proves the server read this handshake: base64(SHA-1(key + GUID)) "
                            "(§4.2.2 item 5.4; checked by the client, §4.1 item 4)",
    "sec-websocket-protocol": "the one subprotocol the server chose (§4.2.2 item 5.5; "
                              "it must have been offered, §4.1 item 6)",
    "sec-websocket-extensions": "the extensions the server accepted (§4.2.2 item 5.6; "
                                "each must have been offered, §4.1 item 5, §9.1)",
    "sec-websocket-version": "the versions the server speaks, with a 426 (§4.4)",
}
_OTHER_HEADERS = {
    "user-agent": "the client software (RFC 7231 §5.5.3)",
    "cookie": "cookies, sent as with any request (§4.1 item 12; RFC 6265)",
    "authorization": "credentials (§4.1 item 12; RFC 7235)",
    "cache-control": "caching directives; an upgrade is never cached (RFC 7234)",
    "pragma": "HTTP/1.0 caching directive (RFC 7234 §5.4)",
    "date": "when the response was made (RFC 7231 §7.1.1.2)",
    "server": "the server software (RFC 7231 §7.4.2)",
    "content-type": "the media type of the body (RFC 7231 §3.1.1.5)",
    "content-length": "the body's length in bytes (RFC 7230 §3.3.2)",
}


class _HeadReport:
    """Lines of an annotated head and whether anything was wrong."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ok = True

    def mark(self, verdict: str, text: str) -> None:
        """``verdict``: OK, BAD (something is wrong) or NOTE (for information)."""
        if verdict == "BAD":
            self.ok = False
        self.lines.append(f"      {verdict:<4} {text}")


def explain_head(text: str, *, key: Optional[str] = None) -> str:
    """Validate a request or response head (detected) line by line, ending with a verdict.

    A request followed by its response (separated by a blank line) is
    explained as a pair: the response's accept key is then checked against
    the request's key. ``key`` gives the request's key for a lone response.
    """
    return _explain_head(text, key)[0]


def _explain_head(text: str, key: Optional[str]) -> tuple[str, bool]:
    crlf = "\r\n" in text
    blocks = _split_blocks(text.replace("\r\n", "\n"))
    if not blocks:
        return "no head to explain: the input is empty", False
    out: list[str] = []
    ok = True
    offered: Optional[tuple[list[str], list[str]]] = None
    head = blocks.pop(0)
    if not head[0].startswith("HTTP/"):
        report, key, offered = _explain_request(head)
        out += report.lines
        ok = report.ok
        if blocks and blocks[0] and blocks[0][0].startswith("HTTP/"):
            out.append("")
            head = blocks.pop(0)
        else:
            head = None
    if head is not None:
        report = _explain_response(head, key, offered)
        out += report.lines
        ok = ok and report.ok
    body = "\n".join("\n".join(block) for block in blocks)
    if body:
        out.append(f"Body: {len(body)} characters after the head (RFC 7230 §3.3)")
    if not crlf:
        out.append("Note: the lines end with LF, not CRLF: senders must use CRLF (RFC 7230 §3); "
                   "a recipient MAY accept a bare LF (RFC 7230 §3.5), and wsframe does")
    return "\n".join(out), ok


def _split_blocks(text: str) -> list[list[str]]:
    """Blank-line separated blocks of lines (leading blank lines skipped)."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in text.split("\n"):
        if line.strip(" \t"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _header_fields(lines: list[str], report: _HeadReport, names: dict[str, str],
                   judge) -> Headers:
    """Check each header line's syntax (RFC 7230 §3.2), then let ``judge`` check its meaning."""
    parsed = [(line, _field_syntax(line)) for line in lines]
    headers = Headers([field for _, field in parsed if isinstance(field, tuple)])
    for line, field in parsed:
        report.lines.append(f"  {line}")
        if isinstance(field, str):
            report.mark("BAD", field)
            continue
        name, value = field
        lower = name.lower()
        meaning = names.get(lower) or _OTHER_HEADERS.get(lower)
        verdict, detail = judge(lower, value, headers)
        if verdict == "BAD":
            report.mark(verdict, detail)
            continue
        if meaning is None and not detail:
            meaning = "not part of the WebSocket handshake: allowed, ignored by it (§4.1 item 12)"
        report.mark(verdict, "; ".join(part for part in (meaning, detail) if part))
    return headers


def _field_syntax(line: str):
    """``(name, value)`` for a well-formed header line, else what is wrong (RFC 7230 §3.2)."""
    name, colon, value = line.partition(":")
    if line[:1] in (" ", "\t"):
        return "obsolete line folding (RFC 7230 §3.2.4): a server answers 400"
    if not colon:
        return "not a header field: 'Name: value' expected (RFC 7230 §3.2)"
    if name != name.rstrip(" \t"):
        return "whitespace before the colon (RFC 7230 §3.2.4): a server answers 400"
    if not is_token(name):
        return "the field name is not a token (RFC 7230 §3.2, §3.2.6): a server answers 400"
    if re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value):
        return "control character in the value (RFC 7230 §3.2): a server answers 400"
    return name, value.strip(" \t")


def _tokens(value: str) -> Optional[list[str]]:
    try:
        return parse_token_list(value, lowercase=True)
    except HttpSyntaxError:
        return None


def _explain_request(lines: list[str]):
    """Annotate a request head (§4.1, §4.2.1); returns (report, key, (protocols, extensions))."""
    report = _HeadReport()
    report.lines.append("Request head: a client asks to open a WebSocket (RFC 6455 §4.1, §4.2.1)")
    start = lines[0]
    report.lines.append(f"  {start}")
    try:
        request = parse_request(start.encode("latin-1"))
    except (HttpSyntaxError, UnicodeEncodeError):
        report.mark("BAD", "malformed request line: 'GET /path HTTP/1.1' expected "
                    "(RFC 7230 §3.1.1)")
    else:
        problems = []
        if request.method != "GET":
            problems.append(f"the method must be GET, not {request.method} (§4.1 item 2)")
        if request.version < (1, 1):
            problems.append("the HTTP version must be at least 1.1 (§4.1 item 2)")
        if not request.target.startswith("/"):
            problems.append("the target must be the /resource name/, an absolute path (§3, "
                            "§4.1 item 3)")
        if problems:
            report.mark("BAD", "; ".join(problems))
        else:
            report.mark("OK", f"GET {request.target} over HTTP/{request.version[0]}."
                        f"{request.version[1]} (§4.1 item 2, §4.2.1 item 1)")
    headers = _header_fields(lines[1:], report, _REQUEST_HEADERS, _judge_request_field)
    for name, where in (("Host", "§4.1 item 4"), ("Upgrade", "§4.1 item 5"),
                        ("Connection", "§4.1 item 6"), ("Sec-WebSocket-Key", "§4.1 item 7"),
                        ("Sec-WebSocket-Version", "§4.1 item 9")):
        if name not in headers:
            report.lines.append(f"  (no {name} header)")
            report.mark("BAD", f"missing: a request must have it ({where}, §4.2.1)")
    head = "\r\n".join(lines).encode("latin-1", "replace")
    key = None
    try:
        request = read_request(head)
        if not is_upgrade_request(request):
            report.lines.append("  (without 'Upgrade: websocket' this is a plain HTTP request)")
        offer = check_upgrade_request(request)
    except InvalidRequest as exc:
        report.ok = False
        extra = " with Sec-WebSocket-Version: 13 (§4.4)" if exc.status == 426 else ""
        report.lines.append(f"Verdict: a server refuses it: {exc.status} {_phrase(exc.status)}"
                            f"{extra}: {exc.reason}")
        return report, None, None
    key = offer.key
    names = [name for name, _ in offer.extensions]
    if report.ok:
        report.lines.append(
            f"Verdict: a server accepts it (§4.2.2): HTTP/1.1 101 Switching Protocols, "
            f"Upgrade: websocket, Connection: Upgrade, Sec-WebSocket-Accept: {accept_key(key)}")
        report.lines.append("  (it may still refuse it for its own reasons: 403 for an origin "
                            "it does not trust, 404 for an unknown path, §4.2.2 item 4)")
    else:
        report.lines.append("Verdict: wsframe's server would accept it, but the lines marked BAD "
                            "break the RFC")
    return report, key, (offer.subprotocols, names)


def _judge_request_field(name: str, value: str, headers: Headers) -> tuple[str, str]:
    once = headers.count(name) > 1 and name in (
        "host", "sec-websocket-key", "sec-websocket-version")
    if once:
        return "BAD", "sent more than once: a server answers 400 (RFC 7230 §5.4, §4.2.1)"
    if name == "upgrade":
        tokens = _tokens(value)
        if tokens is None or "websocket" not in tokens:
            return "BAD", "must include 'websocket' (§4.2.1 item 3): a server answers 400"
        return "OK", ""
    if name == "connection":
        tokens = _tokens(value)
        if tokens is None or "upgrade" not in tokens:
            return "BAD", "must include 'Upgrade' (§4.2.1 item 4): a server answers 400"
        return "OK", ""
    if name == "sec-websocket-key":
        if _key_bytes(value) is None:
            return "BAD", "not base64 of 16 bytes (§4.1 item 7): a server answers 400"
        return "OK", f"the server will answer Sec-WebSocket-Accept: {accept_key(value)}"
    if name == "sec-websocket-version":
        if value != "13":
            return "BAD", ("not 13: a server answers 426 Upgrade Required with "
                           "Sec-WebSocket-Version: 13 (§4.4)")
        return "OK", ""
    if name == "sec-websocket-protocol":
        try:
            offered = parse_token_list(value)
        except HttpSyntaxError as exc:
            return "BAD", f"not a list of tokens ({exc}, §4.1 item 10)"
        return "OK", f"offered: {', '.join(offered)}"
    if name == "sec-websocket-extensions":
        return _judge_extensions(value, offer=True)
    if name == "sec-websocket-accept":
        return "NOTE", "a response header: meaningless in a request"
    return "OK", ""


def _judge_extensions(value: str, *, offer: bool,
                      offered: Optional[list[str]] = None) -> tuple[str, str]:
    try:
        items = parse_parameterized_list(value)
    except HttpSyntaxError as exc:
        return "BAD", f"malformed ({exc}; grammar of §9.1)"
    notes = []
    for name, params in items:
        if offered is not None and name not in offered:
            return "BAD", f"{name} was not offered: the client fails the connection (§4.1 item 5)"
        if name != "permessage-deflate":
            notes.append(f"{name}: unknown to wsframe" + (", a server ignores it (§9.1)"
                                                          if offer else ""))
            continue
        try:
            found = parse_params(params, offer=offer)
        except NegotiationError as exc:
            if offer:
                notes.append(f"permessage-deflate offer a server declines: {exc} (RFC 7692 §5.1)")
                continue
            return "BAD", (f"permessage-deflate: {exc}: the client fails the connection "
                           "(RFC 7692 §5.1)")
        described = ", ".join(f"{k}={v}" if v is not True else k for k, v in found.items())
        notes.append("permessage-deflate (RFC 7692 §7)" + (f" with {described}" if described
                                                             else ", default parameters"))
    return "OK", "; ".join(notes)


def _explain_response(lines: list[str], key: Optional[str],
                      offered: Optional[tuple[list[str], list[str]]]) -> _HeadReport:
    """Annotate a response head (§4.2.2) and say what a client makes of it (§4.1)."""
    report = _HeadReport()
    report.lines.append("Response head: the server's answer (RFC 6455 §4.2.2; the client's "
                        "checks: §4.1)")
    start = lines[0]
    report.lines.append(f"  {start}")
    try:
        status_line = parse_response(start.encode("latin-1"))
    except (HttpSyntaxError, UnicodeEncodeError):
        report.mark("BAD", "malformed status line: 'HTTP/1.1 101 Switching Protocols' expected "
                    "(RFC 7230 §3.1.2)")
        report.lines.append("Verdict: a client fails the connection: the response is not HTTP")
        return report
    status = status_line.status
    if status == 101:
        report.mark("OK", "101 Switching Protocols: the server accepts the upgrade "
                    "(§4.2.2 item 5.1)")
    else:
        report.mark("BAD", f"not 101: the handshake failed, the client handles the response as "
                    f"plain HTTP (§4.1){_status_hint(status)}")

    def judge(name: str, value: str, headers: Headers) -> tuple[str, str]:
        return _judge_response_field(name, value, headers, key, offered, status)
    headers = _header_fields(lines[1:], report, _RESPONSE_HEADERS, judge)
    if status != 101:
        report.ok = False
        report.lines.append(f"Verdict: the server refused the upgrade ({status} "
                            f"{status_line.reason}): no WebSocket is opened (§4.1)")
        return report
    for name, where in (("Upgrade", "§4.1 item 2"), ("Connection", "§4.1 item 3"),
                        ("Sec-WebSocket-Accept", "§4.1 item 4")):
        if name not in headers:
            report.lines.append(f"  (no {name} header)")
            report.mark("BAD", f"missing: the client fails the connection ({where})")
    report.lines.append(_response_verdict(lines, headers, key, offered))
    if report.lines[-1].startswith("Verdict: a client fails"):
        report.ok = False
    return report


def _judge_response_field(name: str, value: str, headers: Headers, key: Optional[str],
                          offered, status: int) -> tuple[str, str]:
    if status != 101:
        return "OK", ""
    if name == "upgrade":
        if _tokens(value) != ["websocket"]:
            return "BAD", "not 'websocket': the client fails the connection (§4.1 item 2)"
        return "OK", ""
    if name == "connection":
        tokens = _tokens(value)
        if tokens is None or "upgrade" not in tokens:
            return "BAD", "lacks 'Upgrade': the client fails the connection (§4.1 item 3)"
        return "OK", ""
    if name == "sec-websocket-accept":
        if headers.count(name) > 1:
            return "BAD", "sent more than once: the client fails the connection (§4.1 item 4)"
        if key is not None:
            expected = accept_key(key)
            if value != expected:
                return "BAD", f"does not match the key: expected {expected} (§4.1 item 4)"
            return "OK", f"matches base64(SHA-1({key} + GUID))"
        try:
            digest = base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            digest = b""
        if len(digest) != 20:
            return "BAD", "not base64 of a 20-byte SHA-1 digest: it cannot match any key"
        return "NOTE", ("cannot be verified without the request's Sec-WebSocket-Key "
                        "(see: wsframe explain --handshake KEY)")
    if name == "sec-websocket-protocol":
        tokens = _tokens(value)
        if tokens is None or len(tokens) != 1 or headers.count(name) > 1:
            return "BAD", "must be exactly one subprotocol (§4.2.2 item 5.5, §4.1 item 6)"
        if offered is not None and value not in offered[0]:
            return "BAD", ("not one the client offered: the client fails the connection "
                           "(§4.1 item 6)")
        return "OK", "" if offered is not None else "(it must be one the client offered)"
    if name == "sec-websocket-extensions":
        return _judge_extensions(value, offer=False,
                                 offered=offered[1] if offered is not None else None)
    return "OK", ""


def _response_verdict(lines: list[str], headers: Headers, key: Optional[str], offered) -> str:
    """What a client concludes (§4.1), by running wsframe's own client checks."""
    head = "\r\n".join(lines).encode("latin-1", "replace")
    try:
        response = read_response(head)
    except InvalidResponse as exc:
        return f"Verdict: a client fails the connection: {exc.reason}"
    unverified = key is None
    if unverified:  # check everything else: stand in a key that matches
        key = "AAAAAAAAAAAAAAAAAAAAAA=="
        fields = [(n, accept_key(key) if n.lower() == "sec-websocket-accept" else v)
                  for n, v in headers]
        response = Response(response.version, response.status, response.reason, Headers(fields))
    if offered is None:  # what the request offered is unknown: assume what was accepted
        protocols = headers.get_all("Sec-WebSocket-Protocol")
        try:
            names = [n for n, _ in parse_parameterized_list(
                headers.get("Sec-WebSocket-Extensions", ""))]
        except HttpSyntaxError:
            names = []
        offered = (protocols, names)
    try:
        check_response(response, key, subprotocols=offered[0], extensions=offered[1])
    except InvalidResponse as exc:
        return f"Verdict: a client fails the connection (§4.1): {exc.reason}"
    if unverified:
        return ("Verdict: a client accepts it if Sec-WebSocket-Accept matches its key; the "
                "request's key is unknown here, so that cannot be verified (§4.1 item 4)")
    return "Verdict: a client accepts it: the WebSocket is open, frames follow (§4.1, §4.2.2)"


def _status_hint(status: int) -> str:
    hints = {400: "; 400: the server found the request invalid (§4.2.1)",
             403: "; 403: the server refused this client, e.g. its Origin (§10.2)",
             404: "; 404: no WebSocket endpoint at that path",
             426: "; 426: the server wants another version, see its Sec-WebSocket-Version (§4.4)"}
    return hints.get(status, "")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


# --- the command line -------------------------------------------------------------------

_EXAMPLES = """examples:
  wsframe explain 81 05 48 65 6c 6c 6f          an unmasked text frame "Hello" (§5.7)
  wsframe explain 818537fa213d7f9f4d5158       the same, masked, as a client sends it
  wsframe explain --inflate c107f248cdc9c90700  a compressed "Hello" (RFC 7692 §7.2.3.1)
  wsframe explain --handshake dGhlIHNhbXBsZSBub25jZQ==
  wsframe explain --head --file request.txt
  printf '810548656c6c6f' | wsframe explain
"""


def add_explain_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``explain`` subcommand to ``subparsers`` (from ``add_subparsers()``)."""
    parser = subparsers.add_parser(
        "explain", help="decode frames or a handshake field by field, with RFC sections",
        description="Decode WebSocket frames (or an opening handshake) and explain every field "
                    "with its RFC 6455 / RFC 7692 section. Exit status 0: all valid; 1: "
                    "something is wrong; 2: unusable input.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("hex", nargs="*", metavar="HEX",
                        help="frame bytes in hex; spaces, colons and 0x allowed, all joined")
    parser.add_argument("--file", metavar="PATH",
                        help="read raw frame bytes (with --head: a head) from PATH")
    parser.add_argument("--hex-file", action="store_true",
                        help="the --file holds hex text, not raw bytes")
    parser.add_argument("--handshake", metavar="KEY",
                        help="the Sec-WebSocket-Accept computation for this Sec-WebSocket-Key "
                             "(with --head: the key to check a response against)")
    parser.add_argument("--head", action="store_true",
                        help="validate an HTTP request or response head (from --file or stdin)")
    parser.add_argument("--role", choices=("client", "server"),
                        help="who sent the frames (default: guessed from each MASK bit)")
    parser.add_argument("--inflate", action="store_true",
                        help="permessage-deflate was negotiated: inflate RSV1 messages")
    parser.add_argument("--window-bits", type=int, default=15, choices=range(8, 16),
                        metavar="N", help="with --inflate: the sender's window, 8-15 (default 15)")
    parser.add_argument("--no-context-takeover", action="store_true",
                        help="with --inflate: every message was compressed with an empty window")
    return parser


def explain_main(args: argparse.Namespace) -> int:
    """Run ``wsframe explain``: 0 when everything decoded was valid, 1 if not, 2 on bad input."""
    try:
        reports, ok = _run(args)
    except (OSError, ValueError) as exc:
        print(f"wsframe explain: {exc}", file=sys.stderr)
        return 2
    print("\n\n".join(reports))
    return 0 if ok else 1


def _run(args: argparse.Namespace) -> tuple[list[str], bool]:
    given = getattr(args, "hex", None) or []
    hex_args = " ".join(given)
    if given and args.file:
        raise ValueError("give HEX or --file, not both")
    if args.hex_file and not args.file:
        raise ValueError("--hex-file needs --file")
    reports: list[str] = []
    ok = True
    if args.handshake is not None:
        text, good = _explain_accept_key(args.handshake)
        reports.append(text)
        ok = good
    if args.head:
        if given:
            raise ValueError("--head reads the head from --file or stdin, not from HEX")
        text = _read_text(args.file)
        report, good = _explain_head(text, args.handshake)
        return reports + [report], ok and good
    if given or args.file or args.handshake is None:
        if given:
            data = parse_hex(hex_args)
        elif args.file and not args.hex_file:
            with open(args.file, "rb") as f:
                data = f.read()
        else:
            data = parse_hex(_read_text(args.file))
        if not data:
            raise ValueError("no bytes to explain")
        inflate = ({"window_bits": args.window_bits,
                    "no_context_takeover": args.no_context_takeover} if args.inflate else None)
        report, problems = _explain_frames(data, inflate, args.role)
        reports.append(report)
        ok = ok and not problems
    return reports, ok


def _read_text(path: Optional[str]) -> str:
    if path is None:
        return sys.stdin.read()
    with open(path, "rb") as f:
        return f.read().decode("latin-1")

