# cython: language_level=3
"""Compiled fan-out: write one frame to many sockets; twin of wsframe.loop.write_each.

A broadcast to a room writes the same bytes to every member. The syscalls
dominate, but a Python loop adds about a microsecond per member before the
last one is written; this loop adds almost nothing.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyObject_GetBuffer, PyBuffer_Release
from libc.errno cimport EINTR, errno
from libc.stdlib cimport free, malloc
from posix.unistd cimport write


def write_each(list fds, data):
    """``write(fd, data)`` for every fd in order; return ``[(index, result)]`` for the
    fds not written in full: ``result`` is the bytes written, or ``-errno``."""
    cdef Py_buffer view
    cdef Py_ssize_t i, n = len(fds)
    cdef ssize_t r
    cdef int *c_fds = <int *>malloc(max(n, 1) * sizeof(int))
    cdef ssize_t *results = <ssize_t *>malloc(max(n, 1) * sizeof(ssize_t))
    if c_fds == NULL or results == NULL:
        free(c_fds)
        free(results)
        raise MemoryError()
    misses = []
    try:
        for i in range(n):
            c_fds[i] = fds[i]
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            with nogil:
                for i in range(n):
                    while True:
                        r = write(c_fds[i], view.buf, view.len)
                        if r >= 0 or errno != EINTR:
                            break
                    results[i] = r if r >= 0 else -errno
        finally:
            PyBuffer_Release(&view)
        for i in range(n):
            if results[i] != view.len:
                misses.append((i, results[i]))
    finally:
        free(c_fds)
        free(results)
    return misses
