# cython: language_level=3
"""Compiled masking (RFC 6455 §5.3); twin of wsframe/masking.py."""
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyObject_GetBuffer, PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize

from kernels cimport wsf_mask


cdef inline bytes _key(object mask):
    if type(mask) is not bytes:
        mask = bytes(mask)
    if len(<bytes>mask) != 4:
        raise ValueError("the masking key is 4 bytes (§5.3)")
    return <bytes>mask


def apply_mask(data, mask):
    """Mask (or unmask) ``data`` with the 4-byte ``mask``; returns new bytes."""
    cdef bytes k = _key(mask)
    cdef const unsigned char *key = <const unsigned char *>PyBytes_AS_STRING(k)
    cdef Py_buffer view
    cdef bytes out
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        out = PyBytes_FromStringAndSize(NULL, view.len)
        wsf_mask(<const unsigned char *>view.buf,
                 <unsigned char *>PyBytes_AS_STRING(out), view.len, key)
    finally:
        PyBuffer_Release(&view)
    return out


def mask_inplace(buffer, mask):
    """Mask (or unmask) a writable buffer (bytearray, writable memoryview) in place."""
    cdef bytes k = _key(mask)
    cdef const unsigned char *key = <const unsigned char *>PyBytes_AS_STRING(k)
    cdef Py_buffer view
    PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE | PyBUF_WRITABLE)
    try:
        wsf_mask(<const unsigned char *>view.buf, <unsigned char *>view.buf, view.len, key)
    finally:
        PyBuffer_Release(&view)
