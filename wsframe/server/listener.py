"""Listening sockets: accept in batches, pause on fd exhaustion instead of spinning."""
from __future__ import annotations

import errno
import logging
import os
import socket
import ssl as ssl_module
from typing import Callable, Iterator, Optional

from wsframe.loop.eventloop import is_fd_exhausted

__all__ = ["Listener", "accepted_fds"]

log = logging.getLogger("wsframe.server")


def accepted_fds(sock: socket.socket, batch: int,
                 on_exhausted: Callable[[OSError], None]) -> Iterator[int]:
    """Up to ``batch`` connections accepted from a listening socket, as non-blocking fds.

    Out of file descriptors (EMFILE, ENFILE ...): ``on_exhausted(error)`` and
    stop; a connection that died in the backlog is skipped quietly.
    """
    accept = sock._accept
    for _ in range(batch):
        try:
            fd, _addr = accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if is_fd_exhausted(exc):
                on_exhausted(exc)
            elif exc.errno not in (errno.ECONNABORTED, errno.EPROTO):
                log.warning("accept failed: %s", exc)
            return
        os.set_blocking(fd, False)
        yield fd


class Listener:
    """A listening socket accepting in batches; pauses on EMFILE instead of spinning."""

    def __init__(self, server, sock: socket.socket,
                 ssl: Optional[ssl_module.SSLContext]) -> None:
        self.server = server
        self.sock = sock
        self.ssl = ssl              # TLS for the connections of this listener, or None
        self.paused = False
        server.loop.add_reader(sock.fileno(), self._on_accept)

    def _on_accept(self, _fd: int) -> None:
        server = self.server
        for fd in accepted_fds(self.sock, server.settings.accept_batch, self._pause):
            server.adopt(fd, ssl=self.ssl)

    def _pause(self, exc: OSError) -> None:
        """Out of file descriptors: keep serving, stop accepting for one tick."""
        stats = self.server.stats
        if not stats.accept_paused:
            log.warning("accept: %s (%d connections open); pausing accept, "
                        "existing connections keep being served", exc.strerror, stats.open)
        stats.accept_paused += 1
        self.paused = True
        self.server.loop.remove_reader(self.sock.fileno())
        self.server.loop.call_later(self.server.loop.tick_interval, self._resume)

    def _resume(self) -> None:
        if self.paused and self.sock.fileno() >= 0:
            self.paused = False
            self.server.loop.add_reader(self.sock.fileno(), self._on_accept)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            if not self.paused:
                self.server.loop.remove_reader(self.sock.fileno())
            self.sock.close()
