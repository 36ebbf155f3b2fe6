# cython: language_level=3
"""Compiled permessage-deflate frame path (RFC 7692 §7.2); twin of wsframe/deflate.py.

Calls zlib's C API directly: raw deflate, Z_SYNC_FLUSH, the 00 00 ff ff tail
removed on send and restored on receive, and the inflate output limit
enforced inside the inflate loop, so a decompression bomb never allocates
past the limit. The output is byte for byte what the reference produces
with Python's zlib module (same library, same calls, same flush points).
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyObject_GetBuffer, PyBuffer_Release
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdlib cimport free, realloc
from libc.string cimport memcmp, memset

from wsframe.errors import ExtensionError, MessageTooBig

cdef extern from "zlib.h":
    ctypedef struct z_stream:
        unsigned char *next_in
        unsigned int avail_in
        unsigned char *next_out
        unsigned int avail_out
        const char *msg
    int Z_OK, Z_STREAM_END, Z_BUF_ERROR, Z_NO_FLUSH, Z_SYNC_FLUSH, Z_DEFLATED
    int Z_RLE, Z_DEFAULT_STRATEGY
    int deflateInit2(z_stream *strm, int level, int method, int windowBits, int memLevel,
                     int strategy)
    int deflate(z_stream *strm, int flush)
    int deflateReset(z_stream *strm)
    int deflateEnd(z_stream *strm)
    int inflateInit2(z_stream *strm, int windowBits)
    int inflate(z_stream *strm, int flush)
    int inflateEnd(z_stream *strm)

cdef const unsigned char *TAIL = b"\x00\x00\xff\xff"
cdef size_t CHUNK_CAP = 0x40000000  # zlib counts in unsigned int: at most 1 GiB per call


# One output buffer per thread, grown on demand and released again when a large
# message has used it. Thread-local (C11), not process-wide: two threads (two loops,
# or free-threaded Python) never share it.
cdef extern from *:
    """
    static _Thread_local unsigned char *wsframe_deflate_out = NULL;
    static _Thread_local size_t wsframe_deflate_out_cap = 0;
    """
    unsigned char *_out "wsframe_deflate_out"
    size_t _out_cap "wsframe_deflate_out_cap"

cdef size_t KEEP_CAP = 1 << 20


cdef int _reserve(size_t needed) except -1:
    global _out, _out_cap
    cdef unsigned char *grown
    if needed <= _out_cap:
        return 0
    grown = <unsigned char *>realloc(_out, needed)
    if grown == NULL:
        raise MemoryError()
    _out = grown
    _out_cap = needed
    return 0


cdef void _trim() noexcept:
    global _out, _out_cap
    if _out_cap > KEEP_CAP:
        free(_out)
        _out = NULL
        _out_cap = 0


cdef class Deflater:
    """Compresses messages (see wsframe.deflate.Deflater)."""

    cdef z_stream _zs
    cdef bint _ready
    cdef readonly int window_bits, mem_level, level

    def __cinit__(self, int window_bits=15, int mem_level=8, int level=6):
        if not 8 <= window_bits <= 15 or not 1 <= mem_level <= 9 or not -1 <= level <= 9:
            raise ValueError("window_bits 8-15, mem_level 1-9, level -1-9")
        self.window_bits = window_bits
        self.mem_level = mem_level
        self.level = level

    def __dealloc__(self):
        if self._ready:
            deflateEnd(&self._zs)

    cdef int _start(self) except -1:
        memset(&self._zs, 0, sizeof(z_stream))
        # An 8-bit window is refused by zlib's raw deflate: Z_RLE output is valid under it.
        if self.window_bits == 8:
            rc = deflateInit2(&self._zs, self.level, Z_DEFLATED, -9, self.mem_level, Z_RLE)
        else:
            rc = deflateInit2(&self._zs, self.level, Z_DEFLATED, -self.window_bits,
                              self.mem_level, Z_DEFAULT_STRATEGY)
        if rc != Z_OK:
            raise MemoryError("deflateInit2 failed")
        self._ready = True
        return 0

    def compress(self, data, bint reset=False):
        """The compressed payload of one message, tail removed (§7.2.1)."""
        cdef Py_buffer view
        cdef size_t produced = 0
        cdef int flush = Z_NO_FLUSH
        if not self._ready:
            self._start()
        elif reset:
            deflateReset(&self._zs)
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            if <size_t>view.len > CHUNK_CAP:
                raise ValueError("message too large to compress in one call")
            self._zs.next_in = <unsigned char *>view.buf
            self._zs.avail_in = <unsigned int>view.len
            _reserve(<size_t>view.len + (<size_t>view.len >> 3) + 64)
            # Z_NO_FLUSH over the input, then one Z_SYNC_FLUSH: the calls the
            # reference makes (compress() then flush()), hence the same bytes.
            while True:
                if produced == _out_cap:
                    _reserve(_out_cap * 2)
                self._zs.next_out = _out + produced
                self._zs.avail_out = <unsigned int>min(_out_cap - produced, CHUNK_CAP)
                deflate(&self._zs, flush)
                produced = self._zs.next_out - _out
                if self._zs.avail_in:
                    continue
                if flush == Z_NO_FLUSH:
                    flush = Z_SYNC_FLUSH
                    continue
                if self._zs.avail_out:  # the flush completed
                    break
        finally:
            PyBuffer_Release(&view)
        # §7.2.1: remove the 00 00 ff ff that ends the flushed data.
        if produced >= 4 and memcmp(_out + produced - 4, TAIL, 4) == 0:
            produced -= 4
        result = PyBytes_FromStringAndSize(<char *>_out, produced)
        _trim()
        return result

    def close(self):
        """Free the zlib state now (it is recreated if used again)."""
        if self._ready:
            deflateEnd(&self._zs)
            self._ready = False


cdef class Inflater:
    """Decompresses messages with an output limit (see wsframe.deflate.Inflater)."""

    cdef z_stream _zs
    cdef bint _ready
    cdef readonly int window_bits

    def __cinit__(self, int window_bits=15):
        if not 8 <= window_bits <= 15:
            raise ValueError("window_bits 8-15")
        self.window_bits = max(window_bits, 9)

    def __dealloc__(self):
        if self._ready:
            inflateEnd(&self._zs)

    cdef _drop(self):
        if self._ready:
            inflateEnd(&self._zs)
            self._ready = False

    def decompress(self, data, Py_ssize_t limit):
        """Inflate one piece of a compressed message; past ``limit`` raise MessageTooBig."""
        cdef Py_buffer view
        cdef size_t produced = 0, cap, ceiling = <size_t>limit + 1
        cdef int rc = Z_OK
        if not self._ready:
            memset(&self._zs, 0, sizeof(z_stream))
            if inflateInit2(&self._zs, -self.window_bits) != Z_OK:
                raise MemoryError("inflateInit2 failed")
            self._ready = True
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            if <size_t>view.len > CHUNK_CAP:
                raise ValueError("compressed piece too large")
            self._zs.next_in = <unsigned char *>view.buf
            self._zs.avail_in = <unsigned int>view.len
            cap = min(max(<size_t>view.len * 4, <size_t>1024), ceiling)
            _reserve(cap)
            while self._zs.avail_in or produced == cap:
                if produced == cap:
                    if cap == ceiling:
                        break  # the limit is reached: stop inflating (a bomb ends here)
                    cap = min(max(cap * 2, _out_cap), ceiling)
                    _reserve(cap)
                self._zs.next_out = _out + produced
                self._zs.avail_out = <unsigned int>min(cap - produced, CHUNK_CAP)
                rc = inflate(&self._zs, Z_SYNC_FLUSH)
                produced = self._zs.next_out - _out
                if rc == Z_STREAM_END or (rc == Z_BUF_ERROR and produced < cap):
                    break
                if rc != Z_OK and rc != Z_BUF_ERROR:
                    reason = (<bytes>self._zs.msg).decode("ascii", "replace") if self._zs.msg else ""
                    self._drop()
                    raise ExtensionError(
                        f"invalid compressed data: Error {rc} while decompressing data: {reason}"
                        " (RFC 7692 §8)")
        finally:
            PyBuffer_Release(&view)
        if produced > <size_t>limit:
            self._drop()
            _trim()
            raise MessageTooBig("message exceeds the size limit once decompressed")
        if rc == Z_STREAM_END:  # the peer ended the stream (BFINAL): start afresh next time
            self._drop()
        result = PyBytes_FromStringAndSize(<char *>_out, produced)
        _trim()
        return result

    def finish(self, Py_ssize_t limit, bint reset=False):
        """End a message: inflate the restored tail (§7.2.2); ``reset`` forgets the window."""
        out = self.decompress(TAIL[:4], limit) if self._ready else b""
        if reset:
            self._drop()
        return out

    def close(self):
        self._drop()
