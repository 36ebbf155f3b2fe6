"""Negotiating permessage-deflate (RFC 7692 §5, §7.1), both roles.

The four parameters (§7.1):

* ``server_no_context_takeover`` / ``client_no_context_takeover``: that side
  compresses every message with an empty window (§7.1.1);
* ``server_max_window_bits`` / ``client_max_window_bits``: the largest LZ77
  window (2**8 to 2**15 bytes) that side may use when compressing (§7.1.2).

:class:`DeflateSettings` is what an endpoint wants; negotiation turns an
offer and a response into an :class:`Agreement`, the parameters both sides
now follow. Agreements are interned: ten thousand connections that agreed
on the same thing share one object.

Memory is the reason the defaults differ from zlib's: a compressor with a
15-bit window and memLevel 8 costs about 256 KiB and a decompressor about
40 KiB *per connection* when context is kept. wsframe's server asks for
``server_no_context_takeover`` and ``client_no_context_takeover`` by default
(§7.1.1.1 and §7.1.1.2 let it, even when the client did not offer them): one
process-wide compressor serves every connection, a broadcast is compressed
once, and a decompressor lives only while a compressed message is arriving.
An idle connection then owns no zlib state at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from wsframe.errors import InvalidResponse
from wsframe.codec.handshake import ExtensionList

__all__ = ["EXTENSION_NAME", "DeflateSettings", "Agreement", "NegotiationError",
           "parse_params", "server_negotiate", "client_offer", "client_accept"]

EXTENSION_NAME = "permessage-deflate"
_NAMES = ("server_no_context_takeover", "client_no_context_takeover",
          "server_max_window_bits", "client_max_window_bits")


class NegotiationError(ValueError):
    """An offer or response breaks the rules of RFC 7692 §7.1."""


@dataclass(frozen=True)
class DeflateSettings:
    """What this endpoint asks for and accepts (both roles).

    As a **server**: ``server_no_context_takeover`` puts that parameter in
    every response (shared compressor); ``client_no_context_takeover``
    requires the client not to keep context either (its decompressor is then
    freed after each message); ``server_max_window_bits`` caps the window we
    compress with; ``client_max_window_bits`` asks the client to cap its
    window, when the client's offer allows it (§7.1.2.2).

    As a **client**: the same names are what we put in our offer.
    """

    server_no_context_takeover: bool = True   # one shared compressor per process (server)
    client_no_context_takeover: bool = True   # idle connections keep no decompressor (server)
    server_max_window_bits: Optional[int] = None  # None: 15, zlib's largest
    client_max_window_bits: Optional[int] = None  # None: whatever the peer uses
    level: int = 6           # zlib's default trade-off of speed and ratio
    mem_level: int = 8       # zlib's default; 1-9, lower saves memory per compressor
    threshold: int = 128     # shorter messages go uncompressed: deflate would not pay

    def __post_init__(self) -> None:
        for bits in (self.server_max_window_bits, self.client_max_window_bits):
            if bits is not None and not 8 <= bits <= 15:
                raise ValueError("window bits must be 8-15 (RFC 7692 §7.1.2)")
        if not 1 <= self.mem_level <= 9 or not -1 <= self.level <= 9 or self.threshold < 0:
            raise ValueError("mem_level 1-9, level -1-9, threshold >= 0")


@dataclass(frozen=True)
class Agreement:
    """The parameters both sides follow on one connection (interned; compare with ``is``)."""

    server_no_context_takeover: bool
    client_no_context_takeover: bool
    server_max_window_bits: int   # 8-15; 15 when not negotiated
    client_max_window_bits: int   # 8-15; 15 when not negotiated
    level: int
    mem_level: int
    threshold: int

    def response_value(self, *, server_bits_in_response: bool,
                       client_bits_in_response: bool) -> str:
        """The ``Sec-WebSocket-Extensions`` value a server answers with."""
        parts = [EXTENSION_NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if server_bits_in_response or self.server_max_window_bits != 15:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if client_bits_in_response:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)

    def sending(self, is_client: bool) -> tuple[int, bool]:
        """(window bits, no context takeover) for what this side compresses."""
        if is_client:
            return self.client_max_window_bits, self.client_no_context_takeover
        return self.server_max_window_bits, self.server_no_context_takeover

    def receiving(self, is_client: bool) -> tuple[int, bool]:
        """(window bits, no context takeover) for what this side inflates."""
        return self.sending(not is_client)


_interned: dict[Agreement, Agreement] = {}


def _intern(agreement: Agreement) -> Agreement:
    return _interned.setdefault(agreement, agreement)


def parse_params(params: list[tuple[str, Optional[str]]], *, offer: bool) -> dict:
    """Validate an offer's or a response's parameters (§7.1); return them by name.

    Window bits values are parsed to ints; ``client_max_window_bits`` without
    a value (allowed in an offer only) becomes ``True``.
    """
    found: dict = {}
    for name, value in params:
        if name not in _NAMES:
            raise NegotiationError(f"unknown parameter {name!r} (§7.1)")
        if name in found:
            raise NegotiationError(f"duplicate parameter {name!r} (§7.1)")
        if name.endswith("no_context_takeover"):
            if value is not None:
                raise NegotiationError(f"{name} takes no value (§7.1.1)")
            found[name] = True
        elif value is None:
            if not (offer and name == "client_max_window_bits"):
                raise NegotiationError(f"{name} needs a value (§7.1.2)")
            found[name] = True
        else:
            # §7.1.2: 1*DIGIT, no leading zero, 8 to 15.
            if not value.isdigit() or value.startswith("0") or not 8 <= int(value) <= 15:
                raise NegotiationError(f"{name}={value!r} is not 8-15 (§7.1.2)")
            found[name] = int(value)
    return found


def server_negotiate(offers: ExtensionList,
                     settings: DeflateSettings) -> Optional[tuple[str, Agreement]]:
    """Accept the first acceptable permessage-deflate offer (§5.1).

    Returns ``(response header value, agreement)``, or ``None`` when no offer
    is acceptable. A malformed offer is declined, not an error (§5.1: "A
    server MUST decline an extension negotiation offer ... if ...").
    """
    for name, params in offers:
        if name != EXTENSION_NAME:
            continue
        try:
            offer = parse_params(params, offer=True)
        except NegotiationError:
            continue
        server_bits = min(settings.server_max_window_bits or 15,
                          offer.get("server_max_window_bits", 15))
        client_bits_in_response = False
        client_bits = 15
        client_offer_bits = offer.get("client_max_window_bits")
        if client_offer_bits is not None:
            # §7.1.2.2: only when offered may the response carry client_max_window_bits.
            limit = 15 if client_offer_bits is True else client_offer_bits
            client_bits = min(settings.client_max_window_bits or limit, limit)
            client_bits_in_response = client_bits != 15 or client_offer_bits is not True
        agreement = _intern(Agreement(
            server_no_context_takeover=bool(settings.server_no_context_takeover
                                            or offer.get("server_no_context_takeover")),
            client_no_context_takeover=bool(settings.client_no_context_takeover
                                            or offer.get("client_no_context_takeover")),
            server_max_window_bits=server_bits,
            client_max_window_bits=client_bits,
            level=settings.level, mem_level=settings.mem_level, threshold=settings.threshold))
        # §7.1.2.1: an offered server_max_window_bits is accepted by echoing a value <= it.
        value = agreement.response_value(
            server_bits_in_response="server_max_window_bits" in offer,
            client_bits_in_response=client_bits_in_response)
        return value, agreement
    return None


def client_offer(settings: DeflateSettings) -> str:
    """The ``Sec-WebSocket-Extensions`` offer a client sends (§5.1)."""
    parts = [EXTENSION_NAME]
    if settings.server_no_context_takeover:
        parts.append("server_no_context_takeover")
    if settings.client_no_context_takeover:
        parts.append("client_no_context_takeover")
    if settings.server_max_window_bits is not None:
        parts.append(f"server_max_window_bits={settings.server_max_window_bits}")
    # We can compress under any window the server asks for (8 included, see
    # wsframe.codec.deflate), so always allow the server to choose ours.
    if settings.client_max_window_bits is not None:
        parts.append(f"client_max_window_bits={settings.client_max_window_bits}")
    else:
        parts.append("client_max_window_bits")
    return "; ".join(parts)


def client_accept(accepted: ExtensionList, settings: DeflateSettings) -> Optional[Agreement]:
    """Check the server's answer to :func:`client_offer` (§5.1, §7.1).

    Raises :class:`InvalidResponse` if the server accepted something we did
    not offer; returns ``None`` when the server declined compression.
    """
    mine = [params for name, params in accepted if name == EXTENSION_NAME]
    if not mine:
        return None
    if len(mine) > 1:
        raise InvalidResponse("permessage-deflate accepted twice (RFC 7692 §5.1)")
    try:
        answer = parse_params(mine[0], offer=False)
    except NegotiationError as exc:
        raise InvalidResponse(f"bad permessage-deflate response: {exc}") from None
    if settings.server_no_context_takeover and not answer.get("server_no_context_takeover"):
        raise InvalidResponse("server ignored server_no_context_takeover (RFC 7692 §7.1.1.1)")
    server_bits = answer.get("server_max_window_bits", 15)
    if settings.server_max_window_bits is not None:
        if "server_max_window_bits" not in answer or server_bits > settings.server_max_window_bits:
            raise InvalidResponse("server_max_window_bits above what we asked (RFC 7692 §7.1.2.1)")
    client_bits = answer.get("client_max_window_bits", settings.client_max_window_bits or 15)
    if settings.client_max_window_bits is not None and client_bits > settings.client_max_window_bits:
        raise InvalidResponse("client_max_window_bits above what we offered (RFC 7692 §7.1.2.2)")
    return _intern(Agreement(
        server_no_context_takeover=bool(answer.get("server_no_context_takeover")),
        client_no_context_takeover=bool(settings.client_no_context_takeover
                                        or answer.get("client_no_context_takeover")),
        server_max_window_bits=server_bits, client_max_window_bits=client_bits,
        level=settings.level, mem_level=settings.mem_level, threshold=settings.threshold))
