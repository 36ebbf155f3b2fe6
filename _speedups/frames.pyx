# cython: language_level=3
"""Compiled frame parser and serializer; twin of wsframe/frames.py.

Same API, same chunks, same errors: where a header (or, fail fast, the part
of one that has arrived) breaks a rule, the pure ``check_header`` (or
``check_header_prefix``) is called to raise the canonical exception, so both
paths report violations with one voice.
"""
import os

from cpython.buffer cimport PyBUF_SIMPLE, PyObject_GetBuffer, PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcpy

from kernels cimport wsf_mask

from wsframe.codec.frames import DEFAULT_MAX_FRAME_SIZE, FrameHeader, check_header
from wsframe.codec.frames import check_header_prefix
from wsframe.codec.frames import build_frame as _reference_build_frame

cdef unsigned int _DATA_AND_CONTROL_OPCODES = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 8) | (1 << 9) | (1 << 10)


cdef class FrameParser:
    """Incremental frame parser (see wsframe.frames.FrameParser for the contract)."""

    cdef public bint require_mask
    cdef public int allowed_rsv
    cdef public unsigned long long max_frame_size
    cdef object _data        # bytes, or the caller's buffer until next_chunk() returns None
    cdef Py_ssize_t _pos
    cdef unsigned long long _remaining
    cdef int _opcode
    cdef int _rsv
    cdef bint _fin
    cdef bint _masked
    cdef unsigned char _mask[4]

    def __cinit__(self, *, bint require_mask, int allowed_rsv=0,
                  unsigned long long max_frame_size=DEFAULT_MAX_FRAME_SIZE):
        self.require_mask = require_mask
        self.allowed_rsv = allowed_rsv
        self.max_frame_size = max_frame_size
        self._data = b""

    def feed(self, data):
        """Add received bytes (any bytes-like object, read in place until drained)."""
        if self._pos < len(self._data):  # not drained: keep the rest, in our own bytes
            self._data = bytes(self._data[self._pos:]) + bytes(data)
        else:
            self._data = data
        self._pos = 0

    def next_chunk(self):
        """The next chunk ``(opcode, fin, rsv, payload, remaining)``, or ``None``."""
        cdef Py_buffer view
        data = self._data
        if type(data) is bytes:
            return self._next(<const unsigned char *>PyBytes_AS_STRING(data),
                              PyBytes_GET_SIZE(data))
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            return self._next(<const unsigned char *>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    cdef _next(self, const unsigned char *p, Py_ssize_t n):
        cdef Py_ssize_t pos = self._pos
        cdef Py_ssize_t avail = n - pos
        cdef Py_ssize_t size = 2, k
        cdef unsigned long long length
        cdef int bits = 7, b0, b1, opcode, rsv
        cdef bint fin, masked
        cdef bytes payload
        if self._remaining:
            if avail == 0:
                return self._wait(p, n)
            return self._payload_chunk(p + pos, avail)
        if avail < 2:
            if avail:
                self._check_prefix(p + pos, avail)
            return self._wait(p, n)
        b0 = p[pos]
        b1 = p[pos + 1]
        length = b1 & 0x7F
        if length == 126:
            size, bits = 4, 16
        elif length == 127:
            size, bits = 10, 64
        masked = (b1 & 0x80) != 0
        if masked:
            size += 4
        if avail < size:
            self._check_prefix(p + pos, avail)
            return self._wait(p, n)
        if bits == 16:
            length = (<unsigned long long>p[pos + 2] << 8) | p[pos + 3]
        elif bits == 64:
            length = 0
            for k in range(8):
                length = (length << 8) | p[pos + 2 + k]
        fin = (b0 & 0x80) != 0
        rsv = b0 & 0x70
        opcode = b0 & 0x0F
        if ((rsv & ~self.allowed_rsv)
                or not ((1u << opcode) & _DATA_AND_CONTROL_OPCODES)
                or masked != self.require_mask
                or (opcode >= 8 and (not fin or bits != 7))
                or (bits == 64 and (length >> 63))
                or length > self.max_frame_size):
            self._reject(fin, rsv, opcode, masked, length, bits, p + pos + size - 4, size)
        if opcode >= 8:
            # Control frames are short (§5.5) and handed out whole.
            if <unsigned long long>avail < size + length:
                return self._wait(p, n)
            payload = PyBytes_FromStringAndSize(NULL, length)
            if masked:
                wsf_mask(p + pos + size, <unsigned char *>PyBytes_AS_STRING(payload),
                         length, p + pos + size - 4)
            else:
                memcpy(PyBytes_AS_STRING(payload), p + pos + size, length)
            self._pos = pos + size + length
            return (opcode, True, rsv, payload, 0)
        self._pos = pos + size
        self._opcode = opcode
        self._fin = fin
        self._rsv = rsv
        self._masked = masked
        if masked:
            memcpy(self._mask, p + pos + size - 4, 4)
        self._remaining = length
        # a data frame's first chunk comes out as soon as its header is complete
        return self._payload_chunk(p + self._pos, avail - size)

    cdef _payload_chunk(self, const unsigned char *src, Py_ssize_t avail):
        cdef Py_ssize_t take = avail
        cdef unsigned char rotated[4]
        cdef int shift, i
        if <unsigned long long>take > self._remaining:
            take = <Py_ssize_t>self._remaining
        payload = PyBytes_FromStringAndSize(NULL, take)
        if self._masked:
            wsf_mask(src, <unsigned char *>PyBytes_AS_STRING(payload), take, self._mask)
            shift = take & 3  # the next payload byte meets key byte (offset mod 4)
            if shift:
                for i in range(4):
                    rotated[i] = self._mask[(i + shift) & 3]
                memcpy(self._mask, rotated, 4)
        else:
            memcpy(PyBytes_AS_STRING(payload), src, take)
        self._pos += take
        self._remaining -= take
        return (self._opcode, self._fin, self._rsv, payload, self._remaining)

    cdef _check_prefix(self, const unsigned char *head, Py_ssize_t avail):
        """Fail fast (§5.2, §5.5): judge the bytes of an incomplete header that are in.

        The test is in C; a violation goes to the reference ``check_header_prefix``
        so both paths raise the same error at the same byte.
        """
        cdef int b0 = head[0], opcode = b0 & 0x0F, b1, ext = 0, known = 0, k
        cdef unsigned long long least = 0
        cdef bint bad = ((b0 & 0x70 & ~self.allowed_rsv)
                         or not ((1u << opcode) & _DATA_AND_CONTROL_OPCODES)
                         or (opcode >= 8 and not (b0 & 0x80)))
        if not bad and avail >= 2:
            b1 = head[1]
            if (b1 & 0x7F) == 126:
                ext = 2
            elif (b1 & 0x7F) == 127:
                ext = 8
            known = min(<int>avail - 2, ext)
            bad = ((b1 & 0x80) != 0) != self.require_mask or (opcode >= 8 and ext)
            if not bad and known:
                bad = ext == 8 and (head[2] & 0x80)
                if not bad:
                    for k in range(known):
                        least = (least << 8) | head[2 + k]
                    least <<= 8 * (ext - known)  # top bit clear: fits in 64 bits
                    bad = least > self.max_frame_size
        if bad:
            check_header_prefix((<const char *>head)[:avail], require_mask=self.require_mask,
                                allowed_rsv=self.allowed_rsv, max_frame_size=self.max_frame_size)
            raise AssertionError("compiled and reference parsers disagree on a header prefix")

    cdef _wait(self, const unsigned char *p, Py_ssize_t n):
        """Out of input: keep a private copy of the unparsed tail (at most 139 bytes)."""
        if self._pos < n:
            self._data = PyBytes_FromStringAndSize(<const char *>p + self._pos, n - self._pos)
        else:
            self._data = b""
        self._pos = 0
        return None

    cdef _reject(self, bint fin, int rsv, int opcode, bint masked,
                 unsigned long long length, int bits, const unsigned char *key, Py_ssize_t size):
        header = FrameHeader(fin, rsv, opcode, masked, length, bits,
                             (<const char *>key)[:4] if masked else None, size)
        check_header(header, require_mask=self.require_mask, allowed_rsv=self.allowed_rsv,
                     max_frame_size=self.max_frame_size)
        raise AssertionError(f"compiled and reference parsers disagree on {header}")


def build_frame(int opcode, payload=b"", *, bint fin=True, int rsv=0, mask=None):
    """Serialize one frame; ``mask`` (4 bytes) makes it a client frame (§5.3)."""
    cdef Py_buffer view
    cdef Py_ssize_t n, head
    cdef unsigned char *out
    cdef bytes frame, key
    cdef int k
    if (opcode < 0 or opcode > 15 or not ((1u << opcode) & _DATA_AND_CONTROL_OPCODES)
            or rsv & ~0x70 or (opcode >= 8 and (len(payload) > 125 or not fin))):
        return _reference_build_frame(opcode, payload, fin=fin, rsv=rsv, mask=mask)  # raises
    if mask is not None:
        key = mask if type(mask) is bytes else bytes(mask)
        if len(key) != 4:
            raise ValueError("the masking key is 4 bytes (§5.3)")
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        n = view.len
        head = 2 if n < 126 else (4 if n < 65536 else 10)
        frame = PyBytes_FromStringAndSize(NULL, head + (4 if mask is not None else 0) + n)
        out = <unsigned char *>PyBytes_AS_STRING(frame)
        out[0] = (0x80 if fin else 0) | rsv | opcode
        out[1] = 0x80 if mask is not None else 0
        if n < 126:             # §5.2: the minimal length encoding
            out[1] |= n
        elif n < 65536:
            out[1] |= 126
            out[2] = (n >> 8) & 0xFF
            out[3] = n & 0xFF
        else:
            out[1] |= 127
            for k in range(8):
                out[2 + k] = (<unsigned long long>n >> (56 - 8 * k)) & 0xFF
        if mask is None:
            memcpy(out + head, view.buf, n)
        else:
            memcpy(out + head, PyBytes_AS_STRING(key), 4)
            wsf_mask(<const unsigned char *>view.buf, out + head + 4, n,
                     <const unsigned char *>PyBytes_AS_STRING(key))
    finally:
        PyBuffer_Release(&view)
    return frame


def server_frame(int opcode, payload=b"", *, bint fin=True, int rsv=0):
    """An unmasked frame, as a server sends it (§5.1); build once, send to many."""
    return build_frame(opcode, payload, fin=fin, rsv=rsv)


def client_frame(int opcode, payload=b"", *, bint fin=True, int rsv=0):
    """A frame masked with a fresh key from os.urandom, as a client must send it (§5.3)."""
    return build_frame(opcode, payload, fin=fin, rsv=rsv, mask=os.urandom(4))
