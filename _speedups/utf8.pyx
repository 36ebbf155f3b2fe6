# cython: language_level=3
"""Compiled incremental UTF-8 validation (RFC 6455 §8.1); twin of wsframe/utf8.py."""
from cpython.buffer cimport PyBUF_SIMPLE, PyObject_GetBuffer, PyBuffer_Release

from kernels cimport wsf_utf8_feed


cdef class Utf8Validator:
    """Validates one text message fed in any number of pieces (see wsframe.utf8)."""

    cdef int _state

    def feed(self, data):
        """-1 while still valid, else the index in ``data`` of the byte that broke it."""
        cdef Py_buffer view
        cdef Py_ssize_t bad
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        bad = wsf_utf8_feed(&self._state, <const unsigned char *>view.buf, view.len)
        PyBuffer_Release(&view)
        return bad

    def finish(self):
        """True when no multi-byte character is left unfinished."""
        return self._state == 0

    def reset(self):
        self._state = 0


def validate_utf8(data):
    """One-shot check of a complete text payload."""
    cdef Py_buffer view
    cdef int state = 0
    cdef Py_ssize_t bad
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    bad = wsf_utf8_feed(&state, <const unsigned char *>view.buf, view.len)
    PyBuffer_Release(&view)
    return bad < 0 and state == 0
