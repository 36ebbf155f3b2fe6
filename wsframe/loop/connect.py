"""Outgoing TCP on the loop: backoff between attempts, a non-blocking connect, name lookup
off the loop. Shared by the reconnecting WebSocket client and the Redis backplane."""
from __future__ import annotations

import ipaddress
import os
import random
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional

__all__ = ["Backoff", "open_tcp", "connect_error", "resolver", "is_ip_address"]


@dataclass(frozen=True)
class Backoff:
    """Reconnection delays: exponential, capped, with full jitter."""

    initial: float = 0.5        # first retry within half a second
    factor: float = 2.0         # doubling per consecutive failure
    max_delay: float = 30.0     # never wait longer than this
    reset_after: float = 60.0   # a connection open this long clears the failure count
    max_attempts: Optional[int] = None  # consecutive failures before giving up (None: never)

    def delay(self, attempt: int, rng: Callable[[float, float], float] = random.uniform) -> float:
        """The wait before retry number ``attempt`` (0-based)."""
        ceiling = min(self.max_delay, self.initial * self.factor ** min(attempt, 64))
        return rng(0.0, ceiling)


def open_tcp(address_info: tuple) -> int:
    """A non-blocking socket connecting to ``address_info`` (a getaddrinfo() entry), as a
    raw fd: the connect completes (or fails) when the fd becomes writable."""
    family, kind, proto, _, address = address_info
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    if family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    err = sock.connect_ex(address)
    if err not in (0, 115, 36):  # EINPROGRESS (Linux / BSD)
        sock.close()
        raise OSError(err, os.strerror(err))
    return sock.detach()


def connect_error(fd: int) -> int:
    """The outcome of a non-blocking connect once its fd is writable: 0, or an errno."""
    sock = socket.socket(fileno=fd)
    try:
        return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    finally:
        sock.detach()


_resolver_pool: Optional[ThreadPoolExecutor] = None


def resolver() -> ThreadPoolExecutor:
    """The threads that run getaddrinfo() for every client (made on first use): DNS may
    take seconds, the loop must not wait for it."""
    global _resolver_pool
    if _resolver_pool is None:
        _resolver_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="wsframe-dns")
    return _resolver_pool


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
