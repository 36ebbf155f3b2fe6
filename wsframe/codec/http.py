"""The HTTP/1.1 that the opening handshake needs (RFC 7230), nothing more.

* :class:`HeadReader` collects a request or response head (up to the blank
  line) from bytes arriving in pieces, with a size cap.
* :func:`parse_request` / :func:`parse_response` split a head into a start
  line and :class:`Headers`, rejecting what RFC 7230 §3 forbids.
* :func:`parse_token_list`, :func:`parse_parameterized_list`: the ``#rule``
  lists of §7 and the ``token`` / ``quoted-string`` grammar of §3.2.6, as used
  by ``Connection``, ``Upgrade``, ``Sec-WebSocket-Protocol`` and
  ``Sec-WebSocket-Extensions``.
* :func:`build_response`: a complete plain HTTP response.

Errors raise :class:`HttpSyntaxError` with a short reason; the handshake
layer turns it into a 400 (server) or an InvalidResponse (client).
"""
from __future__ import annotations

import re
from http import HTTPStatus
from typing import Iterable, Iterator, NamedTuple, Optional
from urllib.parse import unquote

__all__ = [
    "HttpSyntaxError", "HeadTooLarge", "Headers", "HeadReader", "Request", "Response",
    "parse_request", "parse_response", "parse_token_list", "parse_parameterized_list",
    "is_token", "build_response", "DEFAULT_MAX_HEAD_SIZE",
]

#: Largest request or response head accepted: 16 KiB bounds what an
#: unauthenticated peer can make us buffer before the handshake is judged.
DEFAULT_MAX_HEAD_SIZE = 16 * 1024
_MAX_HEADERS = 128  # more fields than any browser sends; bounds parsing work

# RFC 7230 §3.2.6: token = 1*tchar
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN_STR = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# field-value: VCHAR, obs-text, SP and HTAB; no other control characters.
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP/(\d)\.(\d)")
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: ([\t\x20-\x7e\x80-\xff]*))?")


class HttpSyntaxError(ValueError):
    """The bytes are not a well-formed HTTP/1.1 head."""


class HeadTooLarge(HttpSyntaxError):
    """The head grew past the configured cap without ending."""


class Headers:
    """Header fields in arrival order; names compare case-insensitively (§3.2)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields = list(fields)

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The value of ``name``; several fields are joined with ", " (§3.2.2)."""
        values = self.get_all(name)
        return ", ".join(values) if values else default

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self._fields if k.lower() == name]

    def count(self, name: str) -> int:
        return len(self.get_all(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.count(name) > 0

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._fields == other._fields


class Request(NamedTuple):
    """A parsed request head."""

    method: str
    target: str         # as sent: "/track/42?token=abc"
    version: tuple[int, int]
    headers: Headers

    @property
    def path(self) -> str:
        """The percent-decoded path of the target ("/track/42")."""
        return unquote(self.target.partition("?")[0])

    @property
    def query(self) -> str:
        """The raw query string after "?" ("" when absent)."""
        return self.target.partition("?")[2]


class Response(NamedTuple):
    """A parsed response head."""

    version: tuple[int, int]
    status: int
    reason: str
    headers: Headers


class HeadReader:
    """Collects a head from bytes arriving in pieces.

    ``feed(data)`` returns the head (start line and fields, without the final
    blank line) once the blank line has arrived, else ``None``; ``rest`` then
    holds the bytes after the head (a client may pipeline its first frame).
    Raises :class:`HeadTooLarge` once more than ``max_size`` bytes arrive
    without a blank line.
    """

    __slots__ = ("max_size", "_buf", "rest")

    def __init__(self, max_size: int = DEFAULT_MAX_HEAD_SIZE) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self.rest = b""

    def feed(self, data) -> Optional[bytes]:
        scan_from = max(0, len(self._buf) - 3)
        self._buf += data
        if not scan_from and self._buf[:1] in (b"\r", b"\n"):
            # RFC 7230 §3.5: empty lines before the start line are ignored.
            del self._buf[:len(self._buf) - len(self._buf.lstrip(b"\r\n"))]
        end, sep = _find_blank_line(self._buf, scan_from)
        if end + sep > self.max_size or (end < 0 and len(self._buf) > self.max_size):
            raise HeadTooLarge(f"head larger than {self.max_size} bytes")
        return None if end < 0 else self._split(end, sep)

    def bad_start(self) -> Optional[str]:
        """Why the bytes so far cannot begin a request, or None while they still may.

        RFC 7230 §3.1.1: a request line starts with its method, a token, then
        SP (empty lines before it are dropped by :meth:`feed`). Checking this as the
        first bytes arrive refuses a TLS handshake sent to a plain port, or
        any other binary garbage, at once instead of at the head timeout.
        """
        start = self._buf[:32]
        if not start:
            return None
        if start[0] == 0x16:  # a TLS record of type handshake (RFC 8446 §5.1)
            return "a TLS handshake on a plain-text port (use ws://, or the wss:// port)"
        space = start.find(b" ")
        method = start if space < 0 else start[:space]
        if not method or not _TOKEN.fullmatch(method):
            return "not an HTTP request: a request line starts with a method token (RFC 7230 §3.1.1)"
        return None

    def _split(self, end: int, sep: int) -> bytes:
        head = bytes(self._buf[:end])
        self.rest = bytes(self._buf[end + sep:])
        self._buf = bytearray()
        return head


def _find_blank_line(buf: bytearray, start: int) -> tuple[int, int]:
    """Where the head ends: CRLF CRLF, or LF LF (§3.5: a bare LF MAY be accepted)."""
    crlf = buf.find(b"\r\n\r\n", start)
    lf = buf.find(b"\n\n", start)
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf, 2
    return (crlf, 4) if crlf >= 0 else (-1, 0)


def _split_head(head: bytes) -> tuple[bytes, Headers]:
    lines = head.split(b"\n")
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    if len(lines) - 1 > _MAX_HEADERS:
        raise HttpSyntaxError(f"more than {_MAX_HEADERS} header fields")
    fields = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            # §3.2.4: obsolete line folding => reject with 400.
            raise HttpSyntaxError("obsolete line folding in header")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            # §3.2.4: no whitespace between field-name and colon.
            raise HttpSyntaxError(f"malformed header line {line[:40]!r}")
        value = value.strip(b" \t")  # OWS around the value
        if not _FIELD_VALUE.fullmatch(value):
            raise HttpSyntaxError(f"control character in header {name.decode()}")
        fields.append((name.decode("ascii"), value.decode("latin-1")))
    return lines[0], Headers(fields)


def parse_request(head: bytes) -> Request:
    """Parse a request head (§3.1.1 request-line, §3.2 header fields)."""
    start, headers = _split_head(head)
    match = _REQUEST_LINE.fullmatch(start)
    if not match:
        raise HttpSyntaxError(f"malformed request line {start[:60]!r}")
    method, target, major, minor = match.groups()
    return Request(method.decode(), target.decode("latin-1"), (int(major), int(minor)), headers)


def parse_response(head: bytes) -> Response:
    """Parse a response head (§3.1.2 status-line, §3.2 header fields)."""
    start, headers = _split_head(head)
    match = _STATUS_LINE.fullmatch(start)
    if not match:
        raise HttpSyntaxError(f"malformed status line {start[:60]!r}")
    major, minor, status, reason = match.groups()
    return Response((int(major), int(minor)), int(status), (reason or b"").decode("latin-1"), headers)


def is_token(text: str) -> bool:
    """``token`` of §3.2.6."""
    return bool(_TOKEN_STR.fullmatch(text))


def parse_token_list(value: str, *, lowercase: bool = False) -> list[str]:
    """A ``1#token`` list (§7): "a, b ,,c" -> ["a", "b", "c"].

    Elements may carry a "/version" suffix as in ``Upgrade`` (§6.7).
    Raises :class:`HttpSyntaxError` for an element that is not a token.
    """
    items = []
    for element in value.split(","):
        element = element.strip(" \t")
        if not element:
            continue  # §7: empty list elements are allowed and ignored
        name, slash, version = element.partition("/")
        if not is_token(name) or (slash and not is_token(version)):
            raise HttpSyntaxError(f"not a token: {element!r}")
        items.append(element.lower() if lowercase else element)
    return items


class _Scanner:
    """A cursor over a header value for the parameterized-list grammar."""

    __slots__ = ("text", "pos")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_ows(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def token(self) -> str:
        match = _TOKEN_STR.match(self.text, self.pos)
        if not match:
            raise HttpSyntaxError(f"expected a token at {self.text[self.pos:self.pos + 20]!r}")
        self.pos = match.end()
        return match.group()

    def quoted_string(self) -> str:
        """§3.2.6: DQUOTE *( qdtext / quoted-pair ) DQUOTE, unescaped."""
        self.pos += 1  # opening quote
        out = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                return "".join(out)
            if char == "\\":
                if self.pos >= len(self.text):
                    break
                char = self.text[self.pos]
                self.pos += 1
            if char < " " and char != "\t" or char == "\x7f":
                raise HttpSyntaxError("control character in quoted-string")
            out.append(char)
        raise HttpSyntaxError("unterminated quoted-string")


def parse_parameterized_list(value: str) -> list[tuple[str, list[tuple[str, Optional[str]]]]]:
    """Parse ``1#( token *( OWS ";" OWS token [ "=" ( token / quoted-string ) ] ) )``.

    This is the ``Sec-WebSocket-Extensions`` grammar of RFC 6455 §9.1:
    ``"permessage-deflate; client_max_window_bits, x-foo"`` becomes
    ``[("permessage-deflate", [("client_max_window_bits", None)]), ("x-foo", [])]``.
    A quoted value must itself be a token after unescaping (§9.1).
    """
    scan = _Scanner(value)
    items: list[tuple[str, list[tuple[str, Optional[str]]]]] = []
    while True:
        scan.skip_ows()
        if scan.peek() == ",":  # §7: empty elements are ignored
            scan.pos += 1
            continue
        if not scan.peek():
            break
        name = scan.token()
        params: list[tuple[str, Optional[str]]] = []
        scan.skip_ows()
        while scan.peek() == ";":
            scan.pos += 1
            scan.skip_ows()
            param = scan.token()
            scan.skip_ows()
            arg: Optional[str] = None
            if scan.peek() == "=":
                scan.pos += 1
                scan.skip_ows()
                if scan.peek() == '"':
                    arg = scan.quoted_string()
                    if not is_token(arg):
                        raise HttpSyntaxError(f"quoted value {arg!r} is not a token (§9.1)")
                else:
                    arg = scan.token()
                scan.skip_ows()
            params.append((param, arg))
        items.append((name, params))
        if scan.peek() == ",":
            scan.pos += 1
        elif scan.peek():
            raise HttpSyntaxError(f"unexpected {scan.peek()!r} in {value!r}")
    if not items:
        raise HttpSyntaxError("empty list")
    return items


def build_response(status: int, headers: Iterable[tuple[str, str]] = (),
                   body: bytes = b"", *, reason: Optional[str] = None) -> bytes:
    """A complete HTTP/1.1 response; ``Content-Length`` is added when there is a body
    or the status allows one."""
    phrase = reason if reason is not None else _phrase(status)
    lines = [f"HTTP/1.1 {status} {phrase}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if status != 101 and status != 204 and status >= 200:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
