"""The event loop: epoll, raw file descriptors, one receive buffer, corked writes.

Built for many mostly idle connections:

* **epoll on raw fds.** A connection is an ``int`` fd plus its protocol
  object; no ``socket.socket`` wrapper (88 bytes and a GC entry each) and no
  ``selectors.SelectorKey`` (a namedtuple and a dict entry each) per
  connection. Where ``select.epoll`` is missing, :class:`selectors.DefaultSelector`
  takes its place behind the same two calls.
* **One receive buffer per loop.** ``os.readv`` reads into a 256 KiB
  ``bytearray`` shared by all connections; the protocol keeps only the bytes
  of an unfinished frame, so an idle connection owns no buffer.
* **Corked writes.** Bytes written while the loop handles events are
  gathered per connection and flushed with one ``write``/``writev`` at the
  end of the turn: the echoes of 16 pipelined messages leave in one
  syscall. Only what the kernel does not take stays queued, and only then
  is the fd registered for ``EPOLLOUT``.
* **Ticks, not per-connection timers.** A tick callback runs once per
  ``tick_interval`` seconds and may sweep every connection (heartbeats, timeouts):
  O(1) per connection per tick and no heap entry per connection.
  ``call_later`` keeps a small heap for the few loop-wide timers.

Stream objects (see :class:`FdStream`) implement ``_on_readable`` /
``_on_writable`` and own the fd; the loop never parses anything.
"""
from __future__ import annotations

import errno
import heapq
import logging
import os
import select
import selectors
import signal
import socket
import time
from collections import deque
from typing import Callable, Optional

from wsframe.loop.backpressure import Policy, SendStatus

__all__ = ["Loop", "FdStream", "TimerHandle", "fd_limits", "raise_fd_limit", "tune_malloc"]

log = logging.getLogger("wsframe.loop")

EPOLLIN = getattr(select, "EPOLLIN", 1)
EPOLLOUT = getattr(select, "EPOLLOUT", 4)
EPOLLERR = getattr(select, "EPOLLERR", 8)
EPOLLHUP = getattr(select, "EPOLLHUP", 16)
READ_EVENTS = EPOLLIN | EPOLLERR | EPOLLHUP

RECEIVE_BUFFER = 256 * 1024   # one per loop: large reads, few syscalls
MAX_IOVECS = 64               # writev beyond this joins first (IOV_MAX is 1024)
CORK_LIMIT = 64 * 1024        # write a turn's output once it reaches this: bounded memory, few syscalls


def fd_limits() -> tuple[int, int]:
    """The (soft, hard) RLIMIT_NOFILE of this process; (-1, -1) where there is none."""
    try:
        import resource
    except ImportError:  # not POSIX
        return (-1, -1)
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return (soft, hard)."""
    try:
        import resource
    except ImportError:  # not POSIX
        return (-1, -1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft, hard


def tune_malloc(mmap_threshold: int = 1 << 20, trim_threshold: int = 32 << 20) -> bool:
    """Keep glibc from returning (and page-faulting back) memory on every message.

    Frames of 64 KiB come and go by the thousand per second. By default glibc
    gives the top of the heap back to the kernel once 128 KiB are free there,
    and the next allocation faults those pages in again: measured at ~19 page
    faults per 64 KiB echo, 40% of the server's time. Allocations under
    ``mmap_threshold`` stay on the heap, and up to ``trim_threshold`` bytes of
    free heap are kept for reuse. Returns False where this is not glibc.
    """
    try:
        import ctypes
        import platform
        if platform.libc_ver()[0] != "glibc":
            return False
        libc = ctypes.CDLL(None)
        m_trim_threshold, m_mmap_threshold = -1, -3  # from <malloc.h>
        return bool(libc.mallopt(m_mmap_threshold, mmap_threshold)
                    and libc.mallopt(m_trim_threshold, trim_threshold))
    except (OSError, AttributeError, ImportError):
        return False


class _SelectorPoller:
    """epoll's interface on top of :mod:`selectors`, for systems without epoll."""

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()

    def register(self, fd: int, events: int) -> None:
        self._sel.register(fd, self._mask(events))

    def modify(self, fd: int, events: int) -> None:
        self._sel.modify(fd, self._mask(events))

    def unregister(self, fd: int) -> None:
        self._sel.unregister(fd)

    def poll(self, timeout: float = -1, maxevents: int = -1):
        ready = self._sel.select(None if timeout < 0 else timeout)
        return [(key.fd, (EPOLLIN if ev & selectors.EVENT_READ else 0)
                 | (EPOLLOUT if ev & selectors.EVENT_WRITE else 0)) for key, ev in ready]

    def close(self) -> None:
        self._sel.close()

    @staticmethod
    def _mask(events: int) -> int:
        return ((selectors.EVENT_READ if events & EPOLLIN else 0)
                | (selectors.EVENT_WRITE if events & EPOLLOUT else 0))


class TimerHandle:
    """A pending ``call_later``; :meth:`cancel` stops it."""

    __slots__ = ("when", "callback", "args", "cancelled")

    def __init__(self, when: float, callback: Callable, args: tuple) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: "TimerHandle") -> bool:
        return self.when < other.when


class Loop:
    """A single-threaded readiness loop. Not thread-safe, except
    :meth:`call_soon_threadsafe` and :meth:`stop`."""

    def __init__(self, *, tick_interval: float = 1.0, receive_buffer: int = RECEIVE_BUFFER) -> None:
        self._poller = select.epoll() if hasattr(select, "epoll") else _SelectorPoller()
        self.streams: dict[int, "FdStream"] = {}       # fd -> stream
        self._handlers: dict[int, Callable[[int], None]] = {}  # fd -> callback (listeners...)
        self._writing: set[int] = set()                # fds registered for EPOLLOUT
        self._not_reading: set[int] = set()            # fds whose input is paused (backpressure)
        self._dirty: list["FdStream"] = []             # streams with corked output
        self._turn_end: list[Callable[[], None]] = []  # run by flush(), before the streams
        self._rbuf = bytearray(receive_buffer)
        self.rview = memoryview(self._rbuf)
        self.rbufs = [self._rbuf]
        self._timers: list[TimerHandle] = []
        self._ready: deque = deque()
        self._tick_callbacks: list[Callable[[], None]] = []
        self.tick_interval = tick_interval             # seconds between ticks
        self.tick = 0                                  # whole ticks since start
        self.turn = 0                                  # run_once() calls so far
        self.now = time.monotonic()
        self._next_tick = self.now + tick_interval
        self._running = False
        self._stop_requested = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.add_reader(self._wake_r, self._drain_wakeups)
        self._thread_calls: deque = deque()

    # ---- registration ------------------------------------------------------------

    def add_stream(self, stream: "FdStream") -> None:
        """Watch a stream's fd for input."""
        self.streams[stream.fd] = stream
        self._poller.register(stream.fd, READ_EVENTS)

    def remove_stream(self, stream: "FdStream") -> None:
        fd = stream.fd
        if self.streams.pop(fd, None) is not None:
            self._writing.discard(fd)
            self._not_reading.discard(fd)
            try:
                self._poller.unregister(fd)
            except (OSError, KeyError, ValueError):
                pass

    def want_write(self, fd: int, on: bool) -> None:
        """Ask for (or stop asking for) EPOLLOUT on a stream's fd."""
        if on == (fd in self._writing):
            return
        if on:
            self._writing.add(fd)
        else:
            self._writing.discard(fd)
        self._modify(fd)

    def want_read(self, fd: int, on: bool) -> None:
        """Resume (or pause) reading a stream's fd: input backpressure."""
        if on != (fd in self._not_reading):
            return
        if on:
            self._not_reading.discard(fd)
        else:
            self._not_reading.add(fd)
        self._modify(fd)

    def _modify(self, fd: int) -> None:
        events = (0 if fd in self._not_reading else READ_EVENTS) | (
            EPOLLOUT if fd in self._writing else 0)
        self._poller.modify(fd, events)

    def add_reader(self, fd: int, callback: Callable[[int], None]) -> None:
        """Call ``callback(fd)`` when ``fd`` is readable (listeners, pipes)."""
        self._handlers[fd] = callback
        self._poller.register(fd, READ_EVENTS)

    def remove_reader(self, fd: int) -> None:
        if self._handlers.pop(fd, None) is not None:
            try:
                self._poller.unregister(fd)
            except (OSError, KeyError, ValueError):
                pass

    # ---- callbacks and timers ------------------------------------------------------

    def call_soon(self, callback: Callable, *args) -> None:
        self._ready.append((callback, args))

    def call_soon_threadsafe(self, callback: Callable, *args) -> None:
        """Schedule from any thread; wakes the loop. RuntimeError once the loop is closed."""
        if self._wake_w < 0:
            raise RuntimeError("the loop is closed")
        self._thread_calls.append((callback, args))
        self._wake()

    def call_later(self, delay: float, callback: Callable, *args) -> TimerHandle:
        handle = TimerHandle(time.monotonic() + delay, callback, args)
        heapq.heappush(self._timers, handle)
        return handle

    def on_tick(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once per tick (sweeps over connections)."""
        self._tick_callbacks.append(callback)

    def add_signal_handler(self, signum: int, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the loop when ``signum`` arrives (main thread only)."""
        def handler(_signum, _frame):
            self.call_soon_threadsafe(callback)
        signal.signal(signum, handler)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the loop is awake anyway

    def _drain_wakeups(self, fd: int) -> None:
        try:
            while os.read(fd, 4096):
                pass
        except BlockingIOError:
            pass

    # ---- running -----------------------------------------------------------------

    def stop(self) -> None:
        """Make :meth:`run` return after the current turn (any thread)."""
        self._stop_requested = True
        self._wake()

    def run(self, until: Optional[Callable[[], bool]] = None) -> None:
        """Run turns until :meth:`stop` (or until ``until()`` is true)."""
        self._running = True
        self._stop_requested = False
        try:
            while not self._stop_requested and not (until is not None and until()):
                self.run_once()
        finally:
            self._running = False

    def run_once(self, timeout: Optional[float] = None) -> None:
        """One turn: wait for events (or the next timer/tick), handle them, flush."""
        if timeout is None:
            timeout = self._next_tick - time.monotonic()
            if self._timers:
                timeout = min(timeout, self._timers[0].when - time.monotonic())
            if self._ready or self._thread_calls:
                timeout = 0
        events = self._poller.poll(max(timeout, 0), 4096)
        self.turn += 1
        self.now = now = time.monotonic()
        streams = self.streams
        for fd, mask in events:
            stream = streams.get(fd)
            try:
                if stream is None:
                    handler = self._handlers.get(fd)
                    if handler is not None:
                        handler(fd)
                    continue
                if mask & EPOLLOUT:
                    stream._on_writable()
                if mask & READ_EVENTS and stream.fd in streams:
                    stream._on_readable()
            except Exception:  # a bug must cost one connection, not the server
                log.exception("unexpected error handling fd %d; closing it", fd)
                if stream is not None:
                    stream._abort()
        self.flush()
        if now >= self._next_tick:
            self._run_tick(now)
        self._run_timers(now)
        self._run_ready()
        self.flush()

    def _run_tick(self, now: float) -> None:
        self.tick += 1
        self._next_tick = max(self._next_tick + self.tick_interval, now)
        for callback in list(self._tick_callbacks):
            try:
                callback()
            except Exception:
                log.exception("tick callback %r failed", callback)

    def _run_timers(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0].when <= now:
            handle = heapq.heappop(timers)
            if not handle.cancelled:
                self._call(handle.callback, handle.args)

    def _run_ready(self) -> None:
        while self._thread_calls:
            self._ready.append(self._thread_calls.popleft())
        for _ in range(len(self._ready)):
            callback, args = self._ready.popleft()
            self._call(callback, args)

    @staticmethod
    def _call(callback: Callable, args: tuple) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("callback %r failed", callback)

    def at_turn_end(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once, when this turn's output is flushed (before the
        streams' own): a room writes the broadcasts it batched during the turn."""
        self._turn_end.append(callback)

    def flush(self) -> None:
        """Write every stream's corked output (one syscall per stream)."""
        while self._turn_end:
            callbacks, self._turn_end = self._turn_end, []
            for callback in callbacks:
                try:
                    callback()
                except Exception:
                    log.exception("turn-end callback %r failed", callback)
        dirty = self._dirty
        while dirty:
            self._dirty = []
            for stream in dirty:
                try:
                    stream._flush()
                except Exception:  # a bug must cost one connection, not the server
                    log.exception("flushing fd %d failed; closing it", stream.fd)
                    stream._close_fd()
            dirty = self._dirty

    def close(self) -> None:
        """Close the poller and the wake-up pipe (streams are closed by their owners)."""
        if self._wake_w < 0:
            return
        self.remove_reader(self._wake_r)
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._wake_r = self._wake_w = -1  # never write to a number the OS may reuse
        self._poller.close()


# FdStream._io flags
IO_EOF = 1          # the peer closed its side
IO_FIN = 2          # we half-closed ours (shutdown(SHUT_WR))
IO_AFTER_FLUSH = 4  # close TCP once the queued output is written
IO_WANT_DRAIN = 8   # someone waits for the queue to empty (see _on_drain)
IO_NOT_READING = 16  # input paused: the peer's output queue is over its high-water mark
IO_PONG_DUE = 32    # a Ping arrived while over the mark: answer it once drained (§5.5.2)

#: Output queued for a peer beyond which its input is no longer read (see FdStream).
HIGH_WATER = 1 << 20


class FdStream:
    """Mixin: non-blocking I/O on a raw fd for a protocol object.

    The class that mixes it in provides the slots ``fd``, ``loop``, ``_out``
    (``None`` or a list of pending bytes), ``_out_size``, ``_seen``, ``_mark``,
    ``_io`` and ``_pong``, and the protocol's ``receive_data`` / ``receive_eof`` /
    ``close_tcp`` / ``_answer_ping`` (it comes before the protocol class). Closing TCP follows RFC 6455 §7.1.1: write what is
    pending, half-close (FIN), read until the peer's FIN (or a timeout, see
    the owner's sweep), then close the fd.
    """

    __slots__ = ()

    #: True when bytes may go to the fd as they are (no subclass transforms or watches
    #: ``_write``: TLS and the tracer do), which lets a broadcast write them directly.
    _direct_writes = True

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._direct_writes = cls._write is FdStream._write

    def _on_readable(self) -> None:
        loop = self.loop
        try:  # _read(), inlined: this runs once per received segment
            n = os.readv(self.fd, loop.rbufs)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            n = 0
        if n:
            self._seen = loop.tick
            self.receive_data(loop.rview[:n])
            if self.close_tcp:
                self._finish()
            elif self._out_size > self._high_water():
                self._pause_reading()
        else:
            self._eof()

    def _high_water(self) -> int:
        """Queued output beyond which this peer's input waits (hook: a server's max_queue)."""
        return HIGH_WATER

    def _pause_reading(self) -> None:
        """Input backpressure: a peer that does not read what it causes us to send (Pongs
        to a Ping flood, echoes) is not read either until its queue drains, so it cannot
        make us buffer without bound. Its heartbeat still runs: a peer that never reads
        again is dropped by the heartbeat timeout."""
        if not self._io & IO_NOT_READING and self.fd >= 0:
            self._io |= IO_NOT_READING
            self.loop.want_read(self.fd, False)

    def _answer_ping(self, payload: bytes) -> None:
        """RFC 6455 §5.5.2 lets an endpoint answer only the most recent Ping: over the
        high-water mark, remember the latest and answer it once the queue has drained."""
        if self._out_size > self._high_water():
            self._pong = bytes(payload)
            self._io |= IO_PONG_DUE
            return
        super()._answer_ping(payload)

    def _read(self) -> int:
        """Read into the loop's shared buffer: the byte count, 0 at EOF, -1 if nothing yet."""
        try:
            return os.readv(self.fd, self.loop.rbufs)
        except (BlockingIOError, InterruptedError):
            return -1
        except OSError:
            return 0  # ECONNRESET and friends: the peer is gone

    def _eof(self) -> None:
        self._io |= IO_EOF
        self.receive_eof()
        self._finish()

    def _plaintext_sent(self, data: bytes) -> None:
        """Hook: ``data`` is about to be encrypted by a TLS layer (the tracer reads it)."""

    def _write(self, data: bytes) -> None:
        """Protocol hook: cork ``data`` until the end of the loop's turn."""
        out = self._out
        if out is None:
            self._out = [data]
            self._out_size = len(data)
            if self.fd not in self.loop._writing:
                self.loop._dirty.append(self)
        else:
            out.append(data)
            self._out_size += len(data)
            if self._out_size > CORK_LIMIT and self.fd not in self.loop._writing:
                self._flush()  # a burst in one turn (a flooded room): write it as it grows

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the peer (corked until the end of the turn), no questions asked."""
        self._write(data)

    def offer(self, data: bytes, policy: Policy, max_queue: int) -> SendStatus:
        """Queue ``data`` unless that takes the queue past ``max_queue``; then ``policy``
        decides (see :mod:`~wsframe.loop.backpressure`). An empty queue takes any size."""
        queued = self._out_size
        if queued and queued + len(data) > max_queue:
            return self._over_limit(policy, queued)
        self._write(data)
        return SendStatus.OK

    @property
    def buffered(self) -> int:
        """Bytes queued for the peer in user space."""
        return self._out_size

    def _over_limit(self, policy: Policy, queued: int) -> SendStatus:
        """A send would pass the queue limit (hook: a protocol adds its Close frame)."""
        if policy is Policy.DROP:
            return SendStatus.DROPPED
        if policy is Policy.WAIT:
            self._io |= IO_WANT_DRAIN
            return SendStatus.BLOCKED
        self._abandon()
        return SendStatus.CLOSED

    def _abandon(self) -> None:
        """Give up on a peer that does not read: close TCP without writing what is queued."""
        self._out = None
        self._out_size = 0
        self._close_fd()

    def _queue_rest(self, data: bytes, sent: int) -> None:
        """``data`` went out directly and the kernel took only ``sent`` bytes: queue the rest."""
        self._out = [memoryview(data)[sent:]]
        self._out_size = len(data) - sent
        self.loop.want_write(self.fd, True)

    def _flush(self) -> None:
        """Write what is corked; queue what the kernel does not take."""
        out = self._out
        if not out or self.fd < 0:
            return
        try:
            if len(out) == 1:
                sent = os.write(self.fd, out[0])
            else:
                if len(out) > MAX_IOVECS:
                    out[:] = [b"".join(out)]
                sent = os.writev(self.fd, out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return self._broken()
        if sent == self._out_size:
            self._out = None
            self._out_size = 0
            if self.fd in self.loop._writing:
                self.loop.want_write(self.fd, False)
            if self._io:
                self._drained()
            return
        self._out_size -= sent
        while sent:
            head = out[0]
            if sent >= len(head):
                sent -= len(head)
                del out[0]
            else:
                out[0] = memoryview(head)[sent:]  # no copy of a large frame's tail
                sent = 0
        self.loop.want_write(self.fd, True)

    def _on_writable(self) -> None:
        self._flush()

    def _drained(self) -> None:
        io = self._io
        if io & IO_PONG_DUE:
            self._io &= ~IO_PONG_DUE
            pong, self._pong = self._pong, None
            super()._answer_ping(pong)
            if self._out:  # it did not all go out at once: this runs again when it does
                return
        if io & IO_NOT_READING:
            self._io &= ~IO_NOT_READING
            self.loop.want_read(self.fd, True)
        if io & IO_AFTER_FLUSH:
            self._io = io & ~IO_AFTER_FLUSH
            self._finish()
        if io & IO_WANT_DRAIN:
            self._io &= ~IO_WANT_DRAIN
            self._on_drain()

    def _on_drain(self) -> None:
        """The output queue emptied after a refused send (hook)."""

    def _finish(self) -> None:
        """Close TCP: after the pending output; half-close first unless the peer is gone."""
        if self.fd < 0:
            return
        if self._out:
            self._io |= IO_AFTER_FLUSH
            return
        if self._io & IO_EOF:
            return self._close_fd()
        if not self._io & IO_FIN:
            self._io |= IO_FIN
            self._mark = self.loop.tick
            half_close(self.fd)

    def _broken(self) -> None:
        """Writing failed: the peer is gone."""
        self._out = None
        self._out_size = 0
        self._io |= IO_EOF
        self._close_fd()

    def _abort(self) -> None:
        """Write what is pending now (best effort) and close the fd without waiting."""
        self._flush()
        self._close_fd()

    def _close_fd(self) -> None:
        fd = self.fd
        if fd < 0:
            return
        self.receive_eof()  # no-op if the protocol is already CLOSED, else 1006
        self.loop.remove_stream(self)
        self.fd = -1
        self._out = None
        self._out_size = 0
        try:
            os.close(fd)
        except OSError:
            pass
        self._transport_closed()

    def _transport_closed(self) -> None:
        """The fd is closed (hook)."""

    def _tls_ready(self) -> None:
        """A TLS handshake on this stream completed (hook, see wsframe.loop.tls)."""


def half_close(fd: int) -> None:
    """Send FIN after the pending data (shutdown(SHUT_WR)) on a raw fd."""
    sock = socket.socket(fileno=fd)
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        sock.detach()


def is_fd_exhausted(exc: OSError) -> bool:
    return exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

