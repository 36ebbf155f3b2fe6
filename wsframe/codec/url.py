"""WebSocket URIs (RFC 6455 §3): ``ws://host[:port]/path?query``, ``wss://`` for TLS."""
from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = ["WebSocketURL", "parse_url"]


class WebSocketURL(NamedTuple):
    secure: bool
    host: str
    port: int
    target: str  # path and query

    @property
    def host_header(self) -> str:
        default = 443 if self.secure else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: str) -> WebSocketURL:
    """Split a ``ws://`` or ``wss://`` URL (§3)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"not a WebSocket URL (ws:// or wss://): {url!r}")
    if parts.fragment:
        raise ValueError("a WebSocket URL has no fragment (§3)")
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    secure = parts.scheme == "wss"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebSocketURL(secure, parts.hostname, parts.port or (443 if secure else 80), target)
