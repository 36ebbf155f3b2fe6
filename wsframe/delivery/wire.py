"""The ``wsframe.v1`` message protocol: JSON objects in text frames (see docs/protocol.md).

Client to server::

    {"op":"hello","session":null|"<id>","rooms":{"<room>":{"epoch":"<e>","offset":<n>}}}
    {"id":"msg_123", ...application fields...}      a message the server acknowledges
    {...application fields...}                      a message without an id: no ack
    {"op":"ping"}                                   keepalive (the browser cannot send Pings)

Server to client::

    {"op":"welcome","session":"<id>","resumed":true|false,"keepalive":<s>,"node":"<who>"}
    {"ack":"msg_123"}                               (with "duplicate":true for a repeat)
    {"op":"pub","room":"<room>","epoch":"<e>","offset":<n>,"data":<JSON>}
    {"op":"joined","room":"<room>","epoch":"<e>","offset":<n>}    live from after <n>
    {"op":"recovered","room":"<room>","epoch":"<e>","offset":<n>,"replayed":<k>}
    {"op":"discontinuity","room":"<room>","epoch":"<e>","offset":<n>,"reason":"epoch"|"trimmed"}
    {"op":"msg","data":<JSON>}                      a direct message to this connection
    {"op":"pong"}
"""
from __future__ import annotations

import json
from typing import Any

__all__ = ["SUBPROTOCOL", "SESSION_TAKEN", "BadFrame", "parse", "dumps", "MAX_ID_LENGTH"]

SUBPROTOCOL = "wsframe.v1"   # offered in Sec-WebSocket-Protocol (RFC 6455 §1.9, §4.1)
MAX_ID_LENGTH = 128          # characters of a message id
#: The close code of a connection whose session a newer hello resumed (docs/protocol.md §4.5;
#: 4000-4999 are for applications, RFC 6455 §7.4.2). Its client starts a new session.
SESSION_TAKEN = 4409
CLIENT_OPS = ("hello", "ping")


class BadFrame(ValueError):
    """A frame that does not follow wsframe.v1 (the connection is closed with 1008)."""


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 as is (the frame is text: RFC 6455 §5.6)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse(text: str) -> dict:
    """A client frame as a dict, checked; ``BadFrame`` says what is wrong."""
    try:
        frame = json.loads(text)
    except ValueError as exc:
        raise BadFrame(f"not JSON: {exc}") from None
    if not isinstance(frame, dict):
        raise BadFrame("a frame is a JSON object")
    op = frame.get("op")
    if op is not None and op not in CLIENT_OPS:
        raise BadFrame(f"unknown op {op!r}")
    if "id" in frame and op is None:
        ident = frame["id"]
        if not isinstance(ident, str) or not 0 < len(ident) <= MAX_ID_LENGTH:
            raise BadFrame(f"an id is a string of 1 to {MAX_ID_LENGTH} characters")
    if op == "hello":
        session = frame.get("session")
        if session is not None and (not isinstance(session, str) or len(session) > 64):
            raise BadFrame("session is null or a string of at most 64 characters")
        rooms = frame.get("rooms", {})
        if not isinstance(rooms, dict) or len(rooms) > 1024:
            raise BadFrame("rooms is an object of at most 1024 rooms")
        for position in rooms.values():
            if not (isinstance(position, dict) and isinstance(position.get("epoch"), str)
                    and isinstance(position.get("offset"), int) and position["offset"] >= 0):
                raise BadFrame('each room is {"epoch": string, "offset": integer >= 0}')
    return frame


def pub(room: str, epoch: str, offset: int, data_json: str) -> str:
    return (f'{{"op":"pub","room":{dumps(room)},"epoch":"{epoch}","offset":{offset},'
            f'"data":{data_json}}}')
