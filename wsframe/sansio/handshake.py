"""The opening handshake (RFC 6455 §4), once per role, for every server and client.

The codec (:mod:`wsframe.codec.handshake`) holds the rules as functions;
this module holds the two *conversations* built from them, so that each
rule is applied in one place whoever drives the bytes: the sans-IO
:class:`~wsframe.sansio.roles.ServerProtocol` and
:class:`~wsframe.sansio.roles.ClientProtocol`, the epoll server's
connections and the reconnecting client all use these classes.

* :class:`ServerHandshake` reads a request head as it arrives and refuses,
  with the HTTP status that fits, what cannot become a WebSocket (400 for
  bytes that cannot start a request, 431 for a head over the size limit);
  :func:`accept_upgrade` builds the 101 answer and negotiates
  permessage-deflate.
* :class:`ClientHandshake` builds the request and judges the response.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple, Optional, Sequence

from wsframe.codec.handshake import (
    Accepted, Offer, accept_response, check_response, client_request, generate_key, read_request,
    read_response,
)
from wsframe.codec.http import DEFAULT_MAX_HEAD_SIZE, HeadReader, HeadTooLarge, Request, Response
from wsframe.codec.permessage_deflate import (
    Agreement, DeflateSettings, client_accept, client_offer, server_negotiate,
)
from wsframe.errors import InvalidHandshake, InvalidRequest

__all__ = ["ServerHandshake", "accept_upgrade", "ClientHandshake", "ClientAccepted"]


class ServerHandshake(HeadReader):
    """The request head of one connection, read as it arrives (§4.2.1).

    :meth:`read` returns the :class:`~wsframe.codec.http.Request` once its
    head is complete (``rest`` then holds the bytes that followed it: a
    client may send its first frames right away), ``None`` while more is
    needed, and raises :class:`~wsframe.errors.InvalidRequest` with the
    status to answer: 400 as soon as the first bytes cannot begin an HTTP
    request (a TLS hello on a plain port), or when the head is malformed;
    431 when it grows past ``max_size`` (RFC 6585 §5).
    """

    __slots__ = ()

    def __init__(self, max_size: int = DEFAULT_MAX_HEAD_SIZE) -> None:
        super().__init__(max_size)

    def read(self, data) -> Optional[Request]:
        try:
            head = self.feed(data)
        except HeadTooLarge as exc:
            raise InvalidRequest(431, str(exc)) from None
        if head is None:
            why = self.bad_start()
            if why is not None:
                raise InvalidRequest(400, why)
            return None
        return read_request(head)


def accept_upgrade(offer: Offer, *, subprotocol: Optional[str] = None,
                   compression: Optional[DeflateSettings] = None,
                   headers: Iterable[tuple[str, str]] = ()) -> tuple[bytes, Optional[Agreement]]:
    """The 101 response to a valid offer (§4.2.2), and the permessage-deflate
    agreement it announces (RFC 7692 §5), if compression is on and offered."""
    extensions = agreement = None
    if compression is not None:
        negotiated = server_negotiate(offer.extensions, compression)
        if negotiated is not None:
            extensions, agreement = negotiated
    return (accept_response(offer.key, subprotocol=subprotocol, extensions=extensions,
                            headers=headers), agreement)


class ClientAccepted(NamedTuple):
    """What the server agreed to, as the client sees it."""

    response: Response
    subprotocol: Optional[str]
    agreement: Optional[Agreement]   # permessage-deflate, or None
    extensions: str                  # the Sec-WebSocket-Extensions value, as sent
    rest: bytes                      # bytes after the response head (first frames)


class ClientHandshake:
    """The client's half (§4.1): the request to send, then the verdict on the response.

    :meth:`read` returns a :class:`ClientAccepted` once the response head is
    complete and valid, ``None`` while more is needed; a refusal or an
    invalid response raises :class:`~wsframe.errors.InvalidResponse` (with
    the status, if there was one), an oversized head
    :class:`~wsframe.errors.InvalidHandshake`.
    """

    __slots__ = ("request", "_reader", "_key", "_subprotocols", "_compression")

    def __init__(self, host: str, target: str = "/", *, subprotocols: Sequence[str] = (),
                 origin: Optional[str] = None, headers: Iterable[tuple[str, str]] = (),
                 compression: Optional[DeflateSettings] = None,
                 max_head_size: int = DEFAULT_MAX_HEAD_SIZE) -> None:
        self._reader = HeadReader(max_head_size)
        self._key = generate_key()
        self._subprotocols = tuple(subprotocols)
        self._compression = compression
        offer = client_offer(compression) if compression is not None else None
        #: The upgrade request, to be written first (§4.1).
        self.request: bytes = client_request(host, target, self._key, subprotocols=subprotocols,
                                             extensions=offer, origin=origin, headers=headers)

    def read(self, data) -> Optional[ClientAccepted]:
        try:
            head = self._reader.feed(data)
        except HeadTooLarge as exc:
            raise InvalidHandshake(f"response head too large: {exc}") from None
        if head is None:
            return None
        response = read_response(head)
        accepted: Accepted = check_response(
            response, self._key, subprotocols=self._subprotocols,
            extensions=["permessage-deflate"] if self._compression is not None else [])
        agreement = (client_accept(accepted.extensions, self._compression)
                     if self._compression is not None else None)
        return ClientAccepted(response, accepted.subprotocol, agreement,
                              response.headers.get("Sec-WebSocket-Extensions", ""),
                              self._reader.rest)
