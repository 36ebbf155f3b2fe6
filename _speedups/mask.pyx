# cython: language_level=3
"""Compiled masking (RFC 6455 §5.3); twin of wsframe/masking.py."""
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyObject_GetBuffer, PyBuffer_Release
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE

from kernels cimport wsf_mask


cdef inline bytes _key(object mask):
    if type(mask) is not bytes:
        mask = bytes(mask)
    if PyBytes_GET_SIZE(mask) != 4:
        raise ValueError("the masking key is 4 bytes (§5.3)")
    return <bytes>mask


def apply_mask(data, mask):
    """Mask (or unmask) ``data`` with the 4-byte ``mask``; returns new bytes."""
    cdef bytes k = _key(mask)
    cdef const unsigned char *key = <const unsigned char *>PyBytes_AS_STRING(k)
    cdef Py_buffer view
    cdef bytes out
    cdef Py_ssize_t n
    if type(data) is bytes:  # the common case, without the buffer protocol
        n = PyBytes_GET_SIZE(data)
        out = PyBytes_FromStringAndSize(NULL, n)
        wsf_mask(<const unsigned char *>PyBytes_AS_STRING(data),
                 <unsigned char *>PyBytes_AS_STRING(out), n, key)
        return out
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    out = PyBytes_FromStringAndSize(NULL, view.len)
    wsf_mask(<const unsigned char *>view.buf, <unsigned char *>PyBytes_AS_STRING(out),
             view.len, key)
    PyBuffer_Release(&view)
    return out


def mask_inplace(buffer, mask):
    """Mask (or unmask) a writable buffer (bytearray, writable memoryview) in place."""
    cdef bytes k = _key(mask)
    cdef const unsigned char *key = <const unsigned char *>PyBytes_AS_STRING(k)
    cdef Py_buffer view
    cdef unsigned char *p
    if type(buffer) is bytearray:
        p = <unsigned char *>PyByteArray_AS_STRING(buffer)
        wsf_mask(p, p, PyByteArray_GET_SIZE(buffer), key)
        return
    PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE | PyBUF_WRITABLE)
    wsf_mask(<const unsigned char *>view.buf, <unsigned char *>view.buf, view.len, key)
    PyBuffer_Release(&view)
