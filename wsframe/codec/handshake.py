"""The opening handshake, both roles (RFC 6455 §4).

Server side::

    reader = HeadReader()                      # per new connection
    head = reader.feed(received)               # None until the blank line
    request = read_request(head)               # InvalidRequest(400) if malformed
    offer = check_upgrade_request(request)     # InvalidRequest(400/426) if not a valid upgrade
    sock.send(accept_response(offer.key, subprotocol="chat"))
    # or, to refuse: sock.send(reject_response(403, "origin not allowed"))

Client side::

    key = generate_key()
    sock.send(client_request("example.com", "/chat", key, subprotocols=["chat"]))
    response = read_response(reader.feed(received))
    result = check_response(response, key, subprotocols=["chat"])

Every rejection is an exception that says what was wrong: the server's
:class:`InvalidRequest` carries the HTTP status (and headers) to answer with,
the client's :class:`InvalidResponse` what the server did wrong.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import Iterable, NamedTuple, Optional, Sequence

from wsframe.errors import InvalidRequest, InvalidResponse
from wsframe.codec.http import (
    Headers, HttpSyntaxError, Request, Response, build_response,
    parse_parameterized_list, parse_request, parse_response, parse_token_list,
)

__all__ = [
    "GUID", "accept_key", "generate_key",
    "Offer", "read_request", "check_upgrade_request", "is_upgrade_request",
    "accept_response", "reject_response",
    "client_request", "read_response", "check_response", "Accepted",
    "ExtensionList",
]

#: §1.3: the GUID appended to the key before hashing.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: An extension header parsed: [(name, [(param, value or None), ...]), ...]
ExtensionList = list[tuple[str, list[tuple[str, Optional[str]]]]]


def accept_key(key: str) -> str:
    """§1.3 / §4.2.2: base64( SHA-1( key + GUID ) )."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def generate_key() -> str:
    """§4.1: a nonce of 16 random bytes, base64-encoded (24 characters)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


# --- server side ----------------------------------------------------------


class Offer(NamedTuple):
    """What a valid upgrade request asks for."""

    key: str
    subprotocols: list[str]         # in the client's order of preference
    extensions: ExtensionList       # in the client's order of preference
    origin: Optional[str]


def read_request(head: bytes) -> Request:
    """Parse a request head; a malformed one raises :class:`InvalidRequest` (400)."""
    try:
        return parse_request(head)
    except HttpSyntaxError as exc:
        raise InvalidRequest(400, str(exc)) from None


def _tokens(headers: Headers, name: str, status: int = 400) -> list[str]:
    try:
        return parse_token_list(headers.get(name, ""), lowercase=True)
    except HttpSyntaxError as exc:
        raise InvalidRequest(status, f"bad {name} header: {exc}") from None


def is_upgrade_request(request: Request) -> bool:
    """Does the request ask for a WebSocket (``Upgrade: websocket``, §4.2.1 item 3)?

    Requests without it are plain HTTP, for the server to answer as such.
    """
    try:
        return "websocket" in parse_token_list(request.headers.get("Upgrade", ""), lowercase=True)
    except HttpSyntaxError:
        return False


def check_upgrade_request(request: Request) -> Offer:
    """Apply the rules of §4.2.1 to a request; return what it offers.

    Raises :class:`InvalidRequest` with status 400 for a malformed or
    incomplete request and 426 (with ``Sec-WebSocket-Version: 13``) for a
    version other than 13 (§4.4).
    """
    headers = request.headers
    # §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
    if request.method != "GET":
        raise InvalidRequest(400, f"a WebSocket upgrade must use GET, not {request.method}")
    if request.version < (1, 1):
        raise InvalidRequest(400, "a WebSocket upgrade needs HTTP/1.1 or higher")
    if not request.target.startswith("/"):
        raise InvalidRequest(400, "request target must be an absolute path (§3.1.1)")
    # §4.2.1 item 2: a |Host| header field (RFC 7230 §5.4: exactly one).
    if headers.count("Host") != 1:
        raise InvalidRequest(400, "exactly one Host header is required")
    # §4.2.1 item 3: |Upgrade| includes "websocket" (case-insensitive).
    if "websocket" not in _tokens(headers, "Upgrade"):
        raise InvalidRequest(400, "Upgrade header must include 'websocket'")
    # §4.2.1 item 4: |Connection| includes the token "Upgrade".
    if "upgrade" not in _tokens(headers, "Connection"):
        raise InvalidRequest(400, "Connection header must include 'Upgrade'")
    # §4.2.1 item 6: |Sec-WebSocket-Version| must be 13, else 426 + the versions we speak (§4.4).
    if headers.get_all("Sec-WebSocket-Version") != ["13"]:
        raise InvalidRequest(426, "unsupported WebSocket version (need 13)",
                             (("Sec-WebSocket-Version", "13"),))
    key = _check_key(headers)
    try:
        subprotocols = parse_token_list(headers.get("Sec-WebSocket-Protocol", ""))
        extensions = (parse_parameterized_list(headers.get("Sec-WebSocket-Extensions", ""))
                      if "Sec-WebSocket-Extensions" in headers else [])
    except HttpSyntaxError as exc:
        raise InvalidRequest(400, f"bad Sec-WebSocket-Protocol/Extensions: {exc}") from None
    return Offer(key, subprotocols, extensions, headers.get("Origin"))


def _check_key(headers: Headers) -> str:
    """§4.2.1 item 5: |Sec-WebSocket-Key|, base64 of a 16-byte value."""
    keys = headers.get_all("Sec-WebSocket-Key")
    if len(keys) != 1:
        raise InvalidRequest(400, "exactly one Sec-WebSocket-Key header is required")
    key = keys[0]
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raw = b""
    if len(raw) != 16:
        raise InvalidRequest(400, "Sec-WebSocket-Key must be base64 of 16 bytes")
    return key


def accept_response(key: str, *, subprotocol: Optional[str] = None,
                    extensions: Optional[str] = None,
                    headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """The 101 response that completes the handshake (§4.2.2 item 5).

    ``extensions`` is the ``Sec-WebSocket-Extensions`` value agreed on.
    """
    fields = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
              ("Sec-WebSocket-Accept", accept_key(key))]
    if subprotocol is not None:
        fields.append(("Sec-WebSocket-Protocol", subprotocol))
    if extensions:
        fields.append(("Sec-WebSocket-Extensions", extensions))
    fields += headers
    return build_response(101, fields)


def reject_response(status: int, reason: str,
                    headers: Iterable[tuple[str, str]] = (),
                    body: Optional[bytes] = None) -> bytes:
    """An error response with a short plain-text body saying why (§4.2.1, §4.4).

    ``body`` replaces the default body (the reason); a ``Content-Type`` or
    ``Connection`` field in ``headers`` replaces the default one.
    """
    headers = list(headers)
    given = {name.lower() for name, _ in headers}
    given.discard("content-length")  # always computed from the body
    headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
    fields = [(n, v) for n, v in (("Content-Type", "text/plain; charset=utf-8"),
                                  ("Connection", "close")) if n.lower() not in given]
    if status == 426 and "upgrade" not in given:
        fields.append(("Upgrade", "websocket"))
    fields += headers
    if body is None:
        body = (reason + "\n").encode("utf-8")
    return build_response(status, fields, body)


# --- client side ------------------------------------------------------------


def client_request(host: str, target: str, key: str, *,
                   subprotocols: Sequence[str] = (), extensions: Optional[str] = None,
                   origin: Optional[str] = None,
                   headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """The client's upgrade request (§4.1): GET, Host, Upgrade, Connection, key, version."""
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if subprotocols:
        lines.append("Sec-WebSocket-Protocol: " + ", ".join(subprotocols))
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    if origin is not None:
        lines.append(f"Origin: {origin}")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Accepted(NamedTuple):
    """What the server agreed to."""

    subprotocol: Optional[str]
    extensions: ExtensionList
    headers: Headers


def read_response(head: bytes) -> Response:
    """Parse a response head; a malformed one raises :class:`InvalidResponse`."""
    try:
        return parse_response(head)
    except HttpSyntaxError as exc:
        raise InvalidResponse(f"malformed handshake response: {exc}") from None


def check_response(response: Response, key: str, *, subprotocols: Sequence[str] = (),
                   extensions: Sequence[str] = ()) -> Accepted:
    """Apply the client's checks of §4.1 (items 1-6 after sending) to a response.

    ``subprotocols`` and ``extensions`` are what the client offered (extension
    names); the server may pick only from those.
    """
    status, headers = response.status, response.headers
    if status != 101:
        # §4.1: any status other than 101 means the handshake has not completed.
        raise InvalidResponse(f"expected 101 Switching Protocols, got {status} {response.reason}",
                              status)
    try:
        upgrade = parse_token_list(headers.get("Upgrade", ""), lowercase=True)
        connection = parse_token_list(headers.get("Connection", ""), lowercase=True)
        protocols = parse_token_list(headers.get("Sec-WebSocket-Protocol", ""))
        agreed = (parse_parameterized_list(headers.get("Sec-WebSocket-Extensions", ""))
                  if "Sec-WebSocket-Extensions" in headers else [])
    except Exception as exc:
        raise InvalidResponse(f"malformed header in response: {exc}", status) from None
    if upgrade != ["websocket"]:
        raise InvalidResponse("Upgrade header is not 'websocket' (§4.1 item 2)", status)
    if "upgrade" not in connection:
        raise InvalidResponse("Connection header lacks 'Upgrade' (§4.1 item 3)", status)
    if headers.get_all("Sec-WebSocket-Accept") != [accept_key(key)]:
        raise InvalidResponse("wrong Sec-WebSocket-Accept (§4.1 item 4)", status)
    if len(protocols) > 1 or (protocols and protocols[0] not in subprotocols):
        raise InvalidResponse(f"server chose subprotocol {protocols} not offered (§4.1 item 6)",
                              status)
    offered = set(extensions)
    for name, _ in agreed:
        if name not in offered:
            raise InvalidResponse(f"server accepted extension {name!r} not offered (§4.1 item 5)",
                                  status)
    return Accepted(protocols[0] if protocols else None, agreed, headers)
