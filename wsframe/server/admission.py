"""Who may open a WebSocket: origins, connection caps, and decisions that take time.

Checked in this order, before any application code runs for a request:

* **Origin** (RFC 6455 §10.2, §4.2.2 item 4): with an allow-list set, a
  browser's cross-site request -- or one without ``Origin`` -- gets 403, so a
  page on another site cannot ride a user's cookies into the server
  (cross-site WebSocket hijacking).
* **Capacity**: a server-wide maximum of open WebSocket connections and a
  maximum per client address, answered with 503 and ``Retry-After``
  (RFC 9110 §15.6.4, §10.2.3) before the upgrade.

Then the endpoint's ``on_upgrade`` runs. It may decide at once (return, or
raise :class:`~wsframe.errors.InvalidRequest`) or hand back a future -- any
object with ``add_done_callback`` and ``result``, such as what
``ThreadPoolExecutor.submit`` returns for an auth lookup -- and the
decision comes later: the loop keeps serving everyone else meanwhile, the
connection's input waits in the kernel, and a decision that takes longer
than ``upgrade_timeout`` is answered 503.
"""
from __future__ import annotations

from typing import Iterable, Optional

from wsframe.errors import InvalidRequest

__all__ = ["Admission", "PendingUpgrade", "normalize_origin"]

RETRY_AFTER = (("Retry-After", "5"),)


def normalize_origin(origin: str) -> str:
    """RFC 6454 §6.1: scheme and host compare case-insensitively; no trailing slash."""
    return origin.strip().rstrip("/").lower()


class PendingUpgrade:
    """What an upgrade needs once its deferred decision arrives."""

    __slots__ = ("endpoint", "params", "request", "offer", "rest", "timer")

    def __init__(self, endpoint, params: dict, request, offer, rest: bytes) -> None:
        self.endpoint = endpoint
        self.params = params
        self.request = request
        self.offer = offer
        self.rest = rest
        self.timer = None


class Admission:
    """The checks of one server, and the per-address counts they need."""

    def __init__(self, *, origins: Optional[Iterable[str]], max_connections: Optional[int],
                 max_connections_per_address: Optional[int]) -> None:
        self.origins = (frozenset(normalize_origin(o) for o in origins)
                        if origins is not None else None)
        self.max_connections = max_connections
        self.max_per_address = max_connections_per_address
        self._per_address: dict[str, int] = {}
        self._address_of: dict[object, str] = {}   # only while a per-address cap is set

    def check_origin(self, origin: Optional[str]) -> None:
        if self.origins is None:
            return
        if origin is None:
            raise InvalidRequest(403, "an Origin header is required here")
        if normalize_origin(origin) not in self.origins:
            raise InvalidRequest(403, f"origin {origin} is not allowed")

    def check_capacity(self, open_connections: int, address: Optional[str]) -> None:
        if self.max_connections is not None and open_connections >= self.max_connections:
            raise InvalidRequest(503, f"server full: {open_connections} connections open",
                                 RETRY_AFTER)
        if self.max_per_address is not None and address is not None:
            count = self._per_address.get(address, 0)
            if count >= self.max_per_address:
                raise InvalidRequest(503, f"{count} connections from {address} already",
                                     RETRY_AFTER)

    @property
    def counts_addresses(self) -> bool:
        return self.max_per_address is not None

    def opened(self, conn: object, address: Optional[str]) -> None:
        if self.max_per_address is not None and address is not None:
            self._address_of[conn] = address
            self._per_address[address] = self._per_address.get(address, 0) + 1

    def closed(self, conn: object) -> None:
        address = self._address_of.pop(conn, None)
        if address is not None:
            left = self._per_address[address] - 1
            if left:
                self._per_address[address] = left
            else:
                del self._per_address[address]
