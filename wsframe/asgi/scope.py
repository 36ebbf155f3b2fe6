"""ASGI pieces that need no connection: the scope, denial responses, errors.

The scope follows the ASGI WebSocket spec (version 2.4): path is
percent-decoded, raw_path and query_string are the bytes as sent, header
names are lower-cased bytes (values ISO-8859-1, RFC 7230 §3.2.4).
"""
from __future__ import annotations

from http import HTTPStatus
from typing import Any, Iterable, Optional
from urllib.parse import unquote

from wsframe.codec.http import build_response

__all__ = ["Disconnected", "build_scope", "response_head", "chunk", "server_error"]


class Disconnected(OSError):
    """``send()`` after the client went away (the ASGI spec asks for an ``IOError``)."""


def build_scope(request, subprotocols: Iterable[str], *, scheme: str,
                server: Optional[tuple], client: Optional[tuple], root_path: str = "",
                asgi_version: str = "3.0", state: Optional[dict] = None) -> dict[str, Any]:
    """The ``websocket`` connection scope for an upgrade request."""
    raw_target = request.target
    raw_path, _, query = raw_target.partition("?")
    return {
        "type": "websocket",
        "asgi": {"version": asgi_version, "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": scheme,
        "server": server,
        "client": client,
        "root_path": root_path,
        "path": root_path + unquote(raw_path),
        "raw_path": root_path.encode("latin-1") + raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "headers": [(name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in request.headers],
        "subprotocols": list(subprotocols),
        "state": dict(state) if state else {},
        "extensions": {"websocket.http.response": {}},
    }


def decode_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """ASGI header pairs (bytes) as strings; refuses CR/LF (response splitting)."""
    out = []
    for name, value in headers:
        name_s = name.decode("latin-1") if isinstance(name, (bytes, bytearray)) else str(name)
        value_s = value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)
        if any(c in name_s + value_s for c in "\r\n\0") or not name_s:
            raise RuntimeError(f"invalid response header {name_s!r}")
        out.append((name_s, value_s))
    return out


def response_head(status: int, headers: list[tuple[str, str]], *,
                  length: Optional[int]) -> bytes:
    """A denial response's head (ASGI ``websocket.http.response.start``).

    ``length``: the body's size when known; ``None`` keeps the app's
    Content-Length if it gave one, else the body is sent chunked
    (RFC 7230 §4.1). The connection closes after the response.
    """
    names = {name.lower() for name, _ in headers}
    fields = list(headers)
    if length is not None and "content-length" not in names:
        fields.append(("Content-Length", str(length)))
    elif length is None and "content-length" not in names:
        fields.append(("Transfer-Encoding", "chunked"))
    if "content-type" not in names:
        fields.append(("Content-Type", "text/plain; charset=utf-8"))
    if "connection" not in names:
        fields.append(("Connection", "close"))
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    lines = [f"HTTP/1.1 {status} {phrase}"] + [f"{name}: {value}" for name, value in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes, last: bool) -> bytes:
    """One piece of a chunked body (RFC 7230 §4.1); ``last`` adds the final empty chunk."""
    out = b"%x\r\n%s\r\n" % (len(data), data) if data else b""
    return out + (b"0\r\n\r\n" if last else b"")


def server_error() -> bytes:
    """The 500 sent when the application fails before the handshake ended."""
    return build_response(500, [("Content-Type", "text/plain; charset=utf-8"),
                                ("Connection", "close")], b"Internal Server Error")
