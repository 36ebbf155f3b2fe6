"""What a room's (or a gateway's) Redis channel carries: a message as is, or an envelope.

The convention is meant to be typed by hand (``redis-cli``) and written by
a backend in any language with nothing but a Redis client:

* **A payload as is** is a *text* message for the room's members:
  ``PUBLISH wsframe:room:order:42 '{"lat":52.5,"lon":13.4}'``. A WebSocket
  text frame must be UTF-8 (RFC 6455 §5.6, §8.1); a payload that is not is
  sent as a *binary* message instead (a client would otherwise have to fail
  the connection with 1007), and counted.
* **An envelope** starts with one NUL byte, then a header of ``key=value``
  pairs separated by ``;`` (ASCII, no newline), then ``\\n``, then the
  message::

      \\x00type=binary\\n<the bytes>
      \\x00origin=9f3c0a1b2c3d4e5f;type=text\\n{"lat":52.5}

  Keys: ``type`` (``text``, the default, or ``binary``); ``origin`` (the id
  of the wsframe process that published it: that process has delivered it to
  its own members already and skips it). Unknown keys are ignored, so later
  versions can add some. From a shell, ``redis-cli -x`` takes the last
  argument from stdin, bytes as they are:
  ``printf '\\0type=binary\\n\\1\\2' | redis-cli -x PUBLISH wsframe:room:order:42``
  (inside redis-cli's prompt, ``"\\x00type=binary\\n\\x01"`` in double quotes works too).
  A text message that itself starts with a NUL byte needs an envelope
  (``"\\x00\\n"`` and then the text).
* **To one connection** (gateway mode, :mod:`wsframe.server.gateway`): each
  gateway process subscribes to one channel of its own,
  ``wsframe:conn:<origin>``, not one per connection. A connection's id is
  ``<origin>.<serial>`` (as the gateway writes it into every stream entry),
  so its channel is ``wsframe:conn:`` plus the id up to its last dot, and an
  envelope there names the connection with ``conn=<id>``::

      \\x00conn=9f3c0a1b2c3d4e5f.17\\n{"ok":true}
      \\x00conn=9f3c0a1b2c3d4e5f.17;type=binary\\n<the bytes>
      \\x00conn=9f3c0a1b2c3d4e5f.17;close=4001\\nnot allowed

  ``close=<code>`` closes that connection with the code (1000, or 3000-4999
  for an application's own, RFC 6455 §7.4.1-§7.4.2) and the message, at most
  123 bytes of UTF-8, as the reason (§5.5.1). From a shell:
  ``printf '\\0conn=9f3c0a1b2c3d4e5f.17\\nhello' | redis-cli -x PUBLISH wsframe:conn:9f3c0a1b2c3d4e5f``.
  A message for a connection that is not (or no longer) there is counted and
  dropped; so is one without ``conn``.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

__all__ = ["Message", "encode", "decode", "BadEnvelope"]

MARK = 0  # the first byte of an envelope


class BadEnvelope(ValueError):
    """An envelope without the newline that ends its header, or with a bad ``type``."""


class Message(NamedTuple):
    """One room message read from a channel."""

    payload: bytes
    text: bool
    origin: Optional[str]   # the publishing wsframe process, if it said so
    conn: Optional[str] = None    # the one connection it is for (gateway mode)
    close: Optional[int] = None   # close that connection with this code (gateway mode)


def encode(payload: bytes, *, text: bool, origin: Optional[str] = None,
           conn: Optional[str] = None) -> bytes:
    """The channel payload for a message; ``origin`` (hex, no ``;``) names the sender,
    ``conn`` (a gateway connection id) the one connection it is for."""
    kind = b"type=text" if text else b"type=binary"
    if conn is not None:
        kind = b"conn=" + conn.encode("ascii") + b";" + kind
    if origin is None:
        return b"\x00" + kind + b"\n" + payload
    return b"\x00origin=" + origin.encode("ascii") + b";" + kind + b"\n" + payload


def decode(data: bytes) -> Message:
    """A channel payload read back (``BadEnvelope`` for a malformed envelope)."""
    if not data or data[0] != MARK:
        return Message(data, _is_utf8(data), None)
    end = data.find(b"\n", 1)
    if end < 0:
        raise BadEnvelope("an envelope's header ends with a newline")
    text, origin, conn, close = True, None, None, None
    for pair in data[1:end].split(b";"):
        key, _, value = pair.partition(b"=")
        if key == b"type":
            if value not in (b"text", b"binary"):
                raise BadEnvelope(f"type is text or binary, not {value!r}")
            text = value == b"text"
        elif key == b"origin":
            origin = value.decode("ascii", "replace")
        elif key == b"conn":
            conn = value.decode("ascii", "replace")
        elif key == b"close":
            if not value.isdigit() or len(value) > 4:
                raise BadEnvelope(f"close is a close code, not {value!r}")
            close = int(value)
    payload = data[end + 1:]
    if text and not _is_utf8(payload):
        text = False  # RFC 6455 §8.1: a text frame carries UTF-8 only
    return Message(payload, text, origin, conn, close)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
