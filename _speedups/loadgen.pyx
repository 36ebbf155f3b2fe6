# cython: language_level=3
"""A WebSocket load generator in C (see _speedups/wsload.h), for benchmarks.

One call opens ``connections`` client connections on one epoll loop, drives
them for ``warmup + duration`` seconds with the GIL released, closes them,
and returns counters and a latency histogram::

    from wsframe._compiled.loadgen import run_load
    result = run_load(port=8765, mode="echo", connections=100, inflight=16,
                      size=32, duration=5.0)
    result["messages_received"] / result["elapsed"], result["latency_us"]["p99"]

Run several calls in threads (or processes) to combine modes, e.g. a
``subscribe`` call on ``/room/x`` while a ``publish`` call sends to it.
"""
import errno as _errno
import os as _os
import socket as _socket

from libc.stdint cimport int64_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyObject_GetBuffer, PyBuffer_Release

cdef extern from "wsload.h" nogil:
    int WSL_ECHO, WSL_HOLD, WSL_SUBSCRIBE, WSL_PUBLISH
    int WSL_ERRNO_MAX, WSL_F_HANDSHAKE_TIMEOUT, WSL_F_BAD_HANDSHAKE, WSL_F_EOF, WSL_F_PROTOCOL
    int WSL_NFAIL, WSL_NBUCKETS

    ctypedef struct wsl_config:
        uint32_t host
        uint16_t port
        const char *path
        long path_cycle, path_offset
        int mode
        long connections
        int inflight
        size_t size
        int text
        double duration, warmup, ramp_rate, rate, handshake_timeout, close_timeout
        const uint32_t *sources
        int nsources
        int stop_fd
        int64_t *progress
        long room_size
        size_t room_off
    int WSL_PROGRESS

    ctypedef struct wsl_result:
        int64_t attempted, connected, survivors, closed_by_server, dropped, peak_open
        int64_t messages_sent, messages_received, bytes_received, pings_answered
        double elapsed, connect_seconds, cpu_user, cpu_system, cpu_measured
        uint64_t lat_count, lat_sum_ns, lat_max_ns
        uint64_t failed[1]
        uint64_t hist[1]

    int wsl_run(const wsl_config *cfg, wsl_result *res)
    void wsl_bucket_range(const wsl_result *r, int i, double *lower, double *upper)
    double wsl_percentile(const wsl_result *r, double q)

__all__ = ["run_load", "MODES"]

MODES = {"echo": WSL_ECHO, "hold": WSL_HOLD, "subscribe": WSL_SUBSCRIBE,
         "publish": WSL_PUBLISH}

_REASONS = {WSL_F_HANDSHAKE_TIMEOUT: "handshake_timeout", WSL_F_BAD_HANDSHAKE: "bad_handshake",
            WSL_F_EOF: "eof", WSL_F_PROTOCOL: "protocol_error",
            _errno.ECONNRESET: "reset", _errno.EPIPE: "reset"}


cdef uint32_t _ipv4(str address, str what) except? 0:
    """An IPv4 literal as the 32-bit value in network byte order."""
    cdef bytes packed
    cdef uint32_t value
    try:
        packed = _socket.inet_pton(_socket.AF_INET, address)
    except (OSError, TypeError):
        raise ValueError(f"{what} must be an IPv4 literal, not {address!r}") from None
    memcpy(&value, <const char *>packed, 4)
    return value


cdef bytes _request_target(str path):
    """The path as ASCII request-target bytes (RFC 7230 §5.3): no spaces, no controls."""
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', not {path!r}")
    if not path.isascii() or any(ch <= " " or ch == "\x7f" for ch in path):
        raise ValueError(f"path must be printable ASCII without spaces: {path!r}")
    if len(path) > 8192:
        raise ValueError("path longer than 8192 characters")
    return path.encode("ascii")


cdef dict _to_dict(const wsl_result *res):
    cdef int i
    cdef double lower, upper
    failed = {}
    for i in range(WSL_NFAIL):
        if res.failed[i]:
            if i in _REASONS:
                name = _REASONS[i]
            elif i < WSL_ERRNO_MAX:
                name = _errno.errorcode.get(i, f"errno{i}")
            else:
                name = f"reason{i}"
            failed[name] = failed.get(name, 0) + <long long>res.failed[i]
    histogram = []
    for i in range(WSL_NBUCKETS):
        if res.hist[i]:
            wsl_bucket_range(res, i, &lower, &upper)
            histogram.append([int(upper), <long long>res.hist[i]])
    latency = {}
    if res.lat_count:
        latency = {
            "p50": wsl_percentile(res, 0.50),
            "p90": wsl_percentile(res, 0.90),
            "p99": wsl_percentile(res, 0.99),
            "p999": wsl_percentile(res, 0.999),
            "max": res.lat_max_ns / 1000.0,
            "mean": res.lat_sum_ns / 1000.0 / res.lat_count,
            "count": <long long>res.lat_count,
        }
    return {
        "attempted": res.attempted,
        "connected": res.connected,
        "failed": failed,
        "survivors": res.survivors,
        "peak_open": res.peak_open,
        "closed_by_server": res.closed_by_server,
        "dropped": res.dropped,
        "messages_sent": res.messages_sent,
        "messages_received": res.messages_received,
        "bytes_received": res.bytes_received,
        "elapsed": res.elapsed,
        "latency_us": latency,
        "histogram": histogram,
        "pings_answered": res.pings_answered,
        "connect_seconds": res.connect_seconds,
        "cpu_user": res.cpu_user,
        "cpu_system": res.cpu_system,
        "cpu_measured": res.cpu_measured,
    }


def run_load(str host="127.0.0.1", int port=8765, str path="/", *, str mode="echo",
             long connections=100, int inflight=1, Py_ssize_t size=32, bint text=True,
             double duration=10.0, double warmup=1.0, double ramp_rate=5000.0,
             source_addresses=("127.0.0.1",), double rate=0.0,
             double handshake_timeout=10.0, double close_timeout=2.0, int stop_fd=-1,
             progress=None, long room_size=0, long path_cycle=0, long path_offset=0):
    """Drive a WebSocket server with ``connections`` clients; returns a dict of results.

    Modes: ``"echo"`` keeps ``inflight`` messages outstanding per connection
    (every message received triggers one send) and measures round trips;
    ``"hold"`` only holds the connections open (answering Pings: capacity);
    ``"subscribe"`` only receives and measures delivery latency from the
    timestamp a publisher put in each message; ``"publish"`` sends ``rate``
    messages per second in total (0: as fast as the sockets take them).

    The run: connections open at ``ramp_rate`` per second, then ``warmup``
    seconds are not measured, then ``duration`` seconds are (``elapsed``),
    then every connection gets a Close frame and at most ``close_timeout``
    seconds to see the server's FIN. It stops early when ``stop_fd``
    becomes readable (e.g. a pipe or an eventfd; it is not read) or when no
    connection is left. ``progress``, a writable buffer of at least 5 int64
    (e.g. a ``multiprocessing.Array("q", 5)``), receives live counters as the
    run goes: attempted, open, failed, received, sent (the last two count the
    measured window only). Counters of messages and bytes and the latency
    samples cover the measured window only; ``failed`` maps a reason (an
    errno name, ``"reset"``, ``"eof"``, ``"handshake_timeout"``,
    ``"bad_handshake"``, ``"protocol_error"``) to a count and includes the
    ``dropped`` connections that were open when they ended abnormally.

    ``room_size`` > 0: ``{room}`` in ``path`` becomes 8 hex digits, the
    connection's index divided by ``room_size`` (``/room/a-{room}``: rooms of
    ``room_size`` members each, one path per room).

    ``path_cycle`` > 0 gives each connection its own path: connection ``k``
    (0-based, in the order they open) asks for ``path`` followed by the
    decimal ``(path_offset + k) % path_cycle``, e.g. ``path="/room/r"``,
    ``path_cycle=5000`` spreads the connections over rooms r0-r4999 (a
    worker of a fleet passes the index of its first connection as
    ``path_offset``). The path must then have no query.
    """
    cdef wsl_config cfg
    cdef wsl_result *res
    cdef uint32_t *sources = NULL
    cdef int err, i
    cdef Py_ssize_t room_at = path.find("{room}") if room_size > 0 else -1
    if room_at >= 0:
        path = path[:room_at] + "00000000" + path[room_at + 6:]
    cdef bytes target = _request_target(path)

    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, not {mode!r}")
    if not 0 < port < 65536:
        raise ValueError("port must be 1-65535")
    if connections < 0:
        raise ValueError("connections must be >= 0")
    if inflight < 1:
        raise ValueError("inflight must be >= 1")
    if size < 24:
        raise ValueError("size must be >= 24 (a 16-digit timestamp and an 8-digit sender id)")
    if path_cycle < 0 or path_offset < 0:
        raise ValueError("path_cycle and path_offset must not be negative")
    if path_cycle and "?" in path:
        raise ValueError("path_cycle appends a number to the path: give a path without a query")
    if duration < 0 or warmup < 0 or handshake_timeout <= 0 or close_timeout < 0 or rate < 0:
        raise ValueError("durations, timeouts and rate must not be negative")
    addresses = [] if source_addresses is None else list(source_addresses)

    cfg.host = _ipv4(host, "host")
    cfg.port = <uint16_t>port
    cfg.path = target
    cfg.path_cycle = path_cycle
    cfg.path_offset = path_offset
    cfg.mode = MODES[mode]
    cfg.connections = connections
    cfg.inflight = inflight
    cfg.size = <size_t>size
    cfg.text = text
    cfg.duration = duration
    cfg.warmup = warmup
    cfg.ramp_rate = ramp_rate
    cfg.rate = rate
    cfg.handshake_timeout = handshake_timeout
    cfg.close_timeout = close_timeout
    cfg.stop_fd = stop_fd
    cfg.room_size = room_size if room_at >= 0 else 0
    cfg.room_off = <size_t>room_at if room_at >= 0 else 0
    cfg.progress = NULL
    cdef Py_buffer view
    cdef bint have_view = False
    if progress is not None:
        PyObject_GetBuffer(progress, &view, PyBUF_WRITABLE | PyBUF_SIMPLE)
        have_view = True
        if view.len < WSL_PROGRESS * 8:
            PyBuffer_Release(&view)
            raise ValueError("progress needs room for 5 int64 counters")
        cfg.progress = <int64_t *>view.buf
    cfg.nsources = len(addresses)
    res = <wsl_result *>malloc(sizeof(wsl_result))
    if cfg.nsources:
        sources = <uint32_t *>malloc(cfg.nsources * sizeof(uint32_t))
    if res == NULL or (cfg.nsources and sources == NULL):
        free(res)
        free(sources)
        raise MemoryError()
    try:
        for i in range(cfg.nsources):
            sources[i] = _ipv4(addresses[i], "source address")
        cfg.sources = sources
        with nogil:
            err = wsl_run(&cfg, res)
        if err:
            raise OSError(err, f"run_load could not start: {_os.strerror(err)}")
        return _to_dict(res)
    finally:
        free(res)
        free(sources)
        if have_view:
            PyBuffer_Release(&view)
